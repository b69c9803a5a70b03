"""Dependency audit for `make test`: pip-audit on the virtualenv, strict about what it skipped.

pip-audit alone prints "No known vulnerabilities found" and exits 0 when it could audit
nothing (every package "not found on PyPI" because the vulnerability service did not answer):
an audit that did not happen must not look like a clean one. So:

- a known vulnerability: the list, exit 1 (always);
- packages pip-audit could not check: their names, and "AUDIT NON EFFECTUÉ". With
  ``PORTAIL_REQUIRE_AUDIT=1`` that fails (exit 2): a CI runner that can reach the
  vulnerability database sets it, so an outage of that database cannot let a build pass
  unaudited. Without it (a laptop offline, or the offline runner `.ci/run` serves today,
  which reaches no vulnerability database) a loud warning and exit 0: an unreachable
  third-party service must not block every build of a machine that never reaches it.

The PyPI vulnerability service is asked first, then OSV (api.osv.dev). Run by hand:
``.venv/bin/python .ci/audit.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent


def run(service: str) -> dict | None:
    """pip-audit's JSON report with that vulnerability service; None when it did not answer."""
    command = [str(BIN / "pip-audit"), "--format", "json", "--progress-spinner", "off",
               "--skip-editable", "--vulnerability-service", service]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    try:
        return json.loads(done.stdout)
    except ValueError:
        last = (done.stderr.strip().splitlines() or ["(rien)"])[-1]
        print(f"audit: le service {service} n'a pas répondu : {last[:300]}")
        return None


def main() -> int:
    required = os.environ.get("PORTAIL_REQUIRE_AUDIT", "") == "1"
    report = None
    skipped: list[str] = []
    for service in ("pypi", "osv"):
        answer = run(service)
        if answer is None:
            continue
        missed = [d["name"] for d in answer["dependencies"] if "skip_reason" in d]
        if report is None or len(missed) < len(skipped):
            report, skipped = answer, missed  # the service that checked the most
        if not missed:
            break
    vulnerable = [d for d in (report or {}).get("dependencies", []) if d.get("vulns")]
    for dep in vulnerable:
        for vuln in dep["vulns"]:
            fixes = ", ".join(vuln.get("fix_versions") or []) or "aucune"
            print(f"audit: VULNÉRABILITÉ {dep['name']} {dep['version']} : {vuln['id']} "
                  f"(corrigée en : {fixes})")
    if vulnerable:
        print(f"audit: ÉCHEC, {len(vulnerable)} paquet(s) vulnérable(s) : mettre à jour les "
              "versions minimales dans pyproject.toml")
        return 1
    audited = len((report or {}).get("dependencies", [])) - len(skipped)
    if report is None or skipped:
        names = ", ".join(skipped[:10]) + (" …" if len(skipped) > 10 else "")
        print("audit: AUDIT NON EFFECTUÉ : la base de vulnérabilités (PyPI, OSV) est "
              f"injoignable ou ne connaît pas ces paquets ({audited} audité(s), "
              f"{len(skipped)} non audité(s) : {names or 'tous'})")
        if required:
            print("audit: ÉCHEC (PORTAIL_REQUIRE_AUDIT=1 : un audit effectif est exigé)")
            return 2
        print("audit: poursuite SANS audit ; PORTAIL_REQUIRE_AUDIT=1 en ferait un échec")
        return 0
    print(f"audit: aucune vulnérabilité connue dans les {audited} paquets installés")
    return 0


if __name__ == "__main__":
    sys.exit(main())
