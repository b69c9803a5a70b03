"""What the browser journeys share: logging in, reading the dev mailbox, axe checks."""

from __future__ import annotations

import io
import json
import os
import re
from pathlib import Path

from axe_playwright_python.sync_playwright import Axe

from tests.common.second_factor import code_for

AXE = Axe()
REPORT: dict[str, dict] = {}


def check_accessibility(page, name: str) -> None:
    """axe on the page as it is: no serious or critical violation; results kept for the note."""
    results = AXE.run(page)
    violations = results.response["violations"]
    REPORT[name] = {"url": page.url, "violations": {v["id"]: v["impact"] for v in violations},
                    "passes": len(results.response["passes"])}
    serious = [f"{v['id']} ({v['impact']}): {v['help']}" for v in violations
               if v["impact"] in ("serious", "critical")]
    assert not serious, f"{name} : {serious}"


def write_report() -> None:
    target = os.environ.get("PORTAIL_AXE_REPORT")
    if target:
        existing = json.loads(Path(target).read_text()) if Path(target).exists() else {}
        Path(target).write_text(json.dumps({**existing, **REPORT}, indent=2,
                                           ensure_ascii=False))


def log_in(page, base: str, email: str, password: str = "portail-demo") -> None:
    page.goto(f"{base}/connexion")
    page.get_by_label("Adresse e-mail").fill(email)
    page.get_by_label("Mot de passe", exact=True).fill(password)
    page.get_by_role("button", name="Se connecter").click()
    page.wait_for_url(lambda url: url == f"{base}/" or "/connexion/verification" in url)
    if "/connexion/verification" in page.url:
        # Agents and the admin: the demo secret's code (tests/common/second_factor.py).
        page.get_by_label("Code à 6 chiffres").fill(code_for(f"{base} {email}"))
        page.get_by_role("button", name="Valider").click()
        page.wait_for_url(f"{base}/")


def mail_subjects(page, base: str) -> list[str]:
    answer = page.request.get(f"{base}/api/notifications/dev/mailbox")
    return [item["subject"] for item in answer.json()["items"]]


def wait_for_mail(page, base: str, pattern: str, *, tries: int = 100) -> str:
    """The subject of the first dev-mailbox message matching ``pattern`` (polled)."""
    for _ in range(tries):
        for subject in mail_subjects(page, base):
            if re.search(pattern, subject, re.IGNORECASE):
                return subject
        page.wait_for_timeout(200)
    raise AssertionError(f"aucun courriel « {pattern} » : {mail_subjects(page, base)}")


def png_bytes() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (64, 40), (30, 90, 160)).save(buffer, format="PNG")
    return buffer.getvalue()


def switch_commune(page, name: str) -> None:
    """Use the commune switcher of the layout."""
    select = page.get_by_label("Commune", exact=True)
    select.select_option(select.locator("option", has_text=name).first.get_attribute("value"))
    page.get_by_role("button", name="Changer de commune").click()
    page.wait_for_load_state()
    selected = page.get_by_label("Commune", exact=True).locator("option:checked").inner_text()
    assert selected == name, selected
