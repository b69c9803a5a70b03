"""What every benchmark scenario returns, and how a run is written down.

A scenario measures its figures *and* a baseline in the same run (this machine is shared and
noisy), checks correctness after the run, and returns a ``Result``. The harness
(``python -m bench``) adds the machine and versions, writes ``<scenario>.json`` and
``<scenario>.md`` under the output folder, and exits non-zero on any correctness violation.
Time is never asserted: goals are reported (met or not), violations fail.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path


@dataclass
class Goal:
    name: str  # "p99 validation latency"
    target: str  # "< 2 s"
    measured: str  # "1.42 s"
    met: bool | None  # None: not measurable at this scale (quick runs)


@dataclass
class Result:
    scenario: str
    description: str
    params: dict = field(default_factory=dict)
    figures: dict[str, float] = field(default_factory=dict)
    baselines: dict[str, float] = field(default_factory=dict)
    ratios: dict[str, float] = field(default_factory=dict)
    goals: list[Goal] = field(default_factory=list)
    # Correctness failures (lost or duplicated bookings, 5xx, capacity exceeded...): any entry
    # makes the run fail, in quick mode too.
    violations: list[str] = field(default_factory=list)
    tables: list[str] = field(default_factory=list)  # extra Markdown (EXPLAIN, growth...)
    notes: list[str] = field(default_factory=list)
    command: str = ""
    machine: dict = field(default_factory=dict)
    started_at: str = ""
    duration_s: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.violations


def percentiles(samples: list[float], points: tuple[int, ...] = (50, 95, 99)) -> dict[str, float]:
    """{'p50': ..., 'p95': ..., 'p99': ...} of the samples (same unit), nearest-rank."""
    if not samples:
        return {f"p{p}": float("nan") for p in points}
    ordered = sorted(samples)
    out = {}
    for p in points:
        rank = max(1, -(-p * len(ordered) // 100))  # ceil(p/100 * n), nearest-rank method
        out[f"p{p}"] = ordered[rank - 1]
    out["mean"] = statistics.fmean(ordered)
    return out


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _server_version(command: list[str]) -> str | None:
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


def machine() -> dict:
    meminfo = Path("/proc/meminfo")
    mem_kb = next((int(line.split()[1]) for line in meminfo.read_text().splitlines()
                   if line.startswith("MemTotal")), 0) if meminfo.exists() else 0
    try:
        git = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        git = None
    return {
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "cpu": platform.processor() or platform.machine(),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(),
        "system": platform.platform(),
        "commit": git,
        "versions": {name: _version(name) for name in (
            "flask", "sqlalchemy", "gunicorn", "kombu", "psycopg", "marshmallow", "httpx")},
        "postgresql": _server_version(["psql", "--version"]),
        "rabbitmq": _server_version(["rabbitmqctl", "version"]),
    }


def _fmt(value: float) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


def markdown(result: Result) -> str:
    lines = [f"### {result.scenario}: {result.description}", ""]
    if result.command:
        lines += [f"Command: `{result.command}`", ""]
    if result.params:
        lines += ["Parameters: " + ", ".join(f"{k}={v}" for k, v in result.params.items()), ""]
    if result.goals:
        lines += ["| goal | target | measured | met |", "|---|---|---|---|"]
        for goal in result.goals:
            met = {True: "yes", False: "**no**", None: "n/a"}[goal.met]
            lines.append(f"| {goal.name} | {goal.target} | {goal.measured} | {met} |")
        lines.append("")
    if result.figures or result.baselines or result.ratios:
        lines += ["| figure | value |", "|---|---|"]
        lines += [f"| {k} | {_fmt(v)} |" for k, v in result.figures.items()]
        lines += [f"| baseline: {k} | {_fmt(v)} |" for k, v in result.baselines.items()]
        lines += [f"| ratio: {k} | {_fmt(v)} |" for k, v in result.ratios.items()]
        lines.append("")
    for table in result.tables:
        lines += [table, ""]
    if result.violations:
        lines += ["Correctness violations:", *[f"- {v}" for v in result.violations], ""]
    else:
        lines += ["Correctness: no violation.", ""]
    lines += [f"- {note}" for note in result.notes]
    m = result.machine
    if m:
        lines += ["", f"Machine: {m.get('cores')} cores, {m.get('memory_gib')} GiB, "
                      f"load {m.get('load_average')}, Python {m.get('python')}, "
                      f"commit {m.get('commit')}, {m.get('postgresql')}, "
                      f"RabbitMQ {m.get('rabbitmq')}; run {result.started_at}, "
                      f"{result.duration_s:.1f} s."]
    return "\n".join(lines) + "\n"


def write(result: Result, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{result.scenario}.json").write_text(
        json.dumps(asdict(result), indent=2, ensure_ascii=False, default=str) + "\n")
    (out_dir / f"{result.scenario}.md").write_text(markdown(result))


def stamp(result: Result, argv: list[str], started: datetime, duration: float) -> Result:
    result.command = result.command or " ".join(["python -m bench", *argv])
    result.machine = machine()
    result.started_at = started.astimezone(UTC).isoformat(timespec="seconds")
    result.duration_s = duration
    return result


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)
