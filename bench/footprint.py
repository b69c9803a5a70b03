"""Scenario 6, footprint: the memory of every process at rest and after a surge, and the cold
start of the embedded mode.

Memory: the resident set (VmRSS from /proc) of each process of the distributed suite; for a
web process, its gunicorn master and workers summed (production configuration: 2 workers of 4
threads). Read right after the suite started (at rest), then after a surge: the surge scenario
if it ran before in the same ``python -m bench`` run, else a small one run here (with its
correctness checks).

Cold start: ``portail dev`` on a fresh data dir (SQLite files created, migrated, demo data
seeded) until the gateway answers ``/api/accounts/healthz`` and the portal's ``/``. Baselines
in the same run: ``python -c pass`` and a bare Flask app answering its first request.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

from bench import stack, surge
from bench.report import Goal, Result, log
from tests.e2e.topology import PORTAIL, ROOT, free_port

LIMIT_MB = 150.0

BARE_FLASK = """
from flask import Flask
app = Flask("bare")
app.add_url_rule("/", "home", lambda: "ok")
app.run(port=int(__import__("sys").argv[1]))
"""


def _clean_env(data_dir: Path) -> dict[str, str]:
    """The environment of a newcomer's shell: nothing of the topology's or the tests'."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "VIRTUAL_ENV")
    return {**{k: v for k, v in os.environ.items() if k in keep},
            "PORTAIL_DATA_DIR": str(data_dir)}


def _until_answered(urls: list[str], proc: subprocess.Popen, timeout: float) -> float | None:
    """Seconds from now until every URL answered 200; None if the process died or timed out."""
    start = time.perf_counter()
    pending = list(urls)
    while pending:
        if proc.poll() is not None or time.perf_counter() - start > timeout:
            return None
        try:
            if requests.get(pending[0], timeout=2).status_code == 200:
                pending.pop(0)
                continue
        except requests.RequestException:
            pass
        time.sleep(0.05)
    return time.perf_counter() - start


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def cold_start() -> tuple[float | None, float, str]:
    """(seconds until both answer, RSS MB once answered, log tail) of ``portail dev``."""
    data_dir = Path(tempfile.mkdtemp(prefix="portail-cold-"))
    port = free_port()
    log_path = data_dir.parent / f"{data_dir.name}.log"
    started = time.perf_counter()
    with open(log_path, "wb") as out:
        proc = subprocess.Popen([PORTAIL, "dev", "--port", str(port), "--data-dir",
                                 str(data_dir), "--fresh"], cwd=ROOT, stdout=out,
                                stderr=subprocess.STDOUT, env=_clean_env(data_dir))
    try:
        base = f"http://127.0.0.1:{port}"
        waited = _until_answered([f"{base}/api/accounts/healthz", f"{base}/"], proc, 120)
        seconds = None if waited is None else time.perf_counter() - started
        memory = stack.tree_memory(proc.pid).rss
    finally:
        _stop(proc)
        tail = log_path.read_text(errors="replace")[-1500:]
        shutil.rmtree(data_dir, ignore_errors=True)
        log_path.unlink(missing_ok=True)
    return seconds, memory, tail


def python_pass() -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    return time.perf_counter() - started


def bare_flask() -> float | None:
    port = free_port()
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", BARE_FLASK, str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        waited = _until_answered([f"http://127.0.0.1:{port}/"], proc, 60)
        return None if waited is None else time.perf_counter() - started
    finally:
        _stop(proc)


SMALL_SURGE = {True: surge.Params(households=20, window=1.0, burst=10, capacity=4,
                                  waiting_list=2, drain_timeout=60.0),
               False: surge.Params(households=300, window=10.0, burst=60, capacity=30,
                                   waiting_list=5, drain_timeout=120.0)}


def run(quick: bool) -> Result:
    result = Result("footprint", "resident memory of each process at rest and after a surge; "
                                 "cold start of the embedded mode")
    topology = stack.shared()
    rest = stack.memory_at_rest()
    if surge.surges_run():
        after_what = "after the surge scenario run before in this run"
    else:
        params = SMALL_SURGE[quick]
        log(f"footprint: petite vague ({params.households} + {params.burst} foyers)")
        _, _, violations, _, _ = surge.exercise(topology, params)
        result.violations += violations
        after_what = (f"after a surge of {params.households} households over "
                      f"{params.window:.0f} s and {params.burst} at once")
    after = stack.process_memory(topology)
    result.params = {"memory after": after_what, **stack.PRODUCTION}
    rows = ["| process | processes | RSS at rest (MB) | RSS after (MB) | PSS after (MB) | "
            "largest single process after (MB) | goal < 150 MB |", "|---|---|---|---|---|---|---|"]
    worst_web = worst_single = 0.0
    for name in sorted(rest):
        before = rest[name]
        now = after.get(name)
        if now is None:
            result.violations.append(f"{name} s'est arrêté")
            continue
        web = name.startswith("serve-")
        if web:
            worst_web = max(worst_web, before.rss, now.rss)
            worst_single = max(worst_single, before.largest, now.largest)
        goal = ("yes" if max(before.rss, now.rss) < LIMIT_MB else "**no**") if web else "—"
        rows.append(f"| {name} | {now.processes} | {before.rss:.0f} | {now.rss:.0f} | "
                    f"{now.pss:.0f} | {now.largest:.0f} | {goal} |")
        result.figures[f"{name}: RSS after (MB)"] = now.rss
    result.tables.append("\n".join(rows))
    web_names = [n for n in rest if n.startswith("serve-")]
    result.figures["web processes: largest RSS, master + workers (MB)"] = worst_web
    result.figures["web processes: largest single process RSS (MB)"] = worst_single
    result.figures["whole suite RSS after (MB)"] = sum(m.rss for m in after.values())
    result.figures["whole suite PSS after (MB)"] = sum(m.pss for m in after.values())

    log("footprint: démarrage à froid du mode embarqué")
    passes = [python_pass() for _ in range(3)]
    flask_start = bare_flask()
    seconds, memory, tail = cold_start()
    if seconds is None:
        result.violations.append(f"portail dev n'a pas répondu : {tail}")
    result.figures["cold start of portail dev, fresh data dir (s)"] = seconds or float("nan")
    result.figures["portail dev RSS once answered (MB)"] = memory
    result.baselines["python -c pass (s, median of 3)"] = sorted(passes)[1]
    result.baselines["bare Flask app until its first answer (s)"] = flask_start or float("nan")
    if seconds and flask_start:
        result.ratios["cold start ÷ bare Flask start"] = seconds / flask_start
    result.goals += [
        Goal("RSS of each web process (gunicorn master + 2 workers)", f"< {LIMIT_MB:.0f} MB",
             f"largest {worst_web:.0f} MB ({len(web_names)} web processes)",
             None if quick else worst_web < LIMIT_MB),
        Goal("RSS of each single OS process (one gunicorn worker)", f"< {LIMIT_MB:.0f} MB",
             f"largest {worst_single:.0f} MB", None if quick else worst_single < LIMIT_MB),
        Goal("cold start of the embedded mode", "< 10 s",
             f"{seconds:.1f} s" if seconds else "no answer",
             None if quick else bool(seconds and seconds < 10)),
    ]
    result.notes.append("RSS counts shared pages once per process (copy-on-write libraries "
                        "are counted in each worker), so the sums are an upper bound.")
    return result
