"""One entry point for every benchmark scenario.

    python -m bench SCENARIO [SCENARIO ...] [--quick] [--out DIR]
    python -m bench all --quick        # every scenario at CI scale: correctness only

Each scenario lives in its own module with ``run(quick: bool) -> report.Result``. PostgreSQL
and RabbitMQ come from ``PORTAIL_BENCH_DATABASE_URL`` / ``PORTAIL_BENCH_AMQP_URL`` (else the
tests' ``PORTAIL_TEST_*`` variables, else the local ports). Exit status 1 when any scenario
reports a correctness violation or fails; timings never fail a run.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

from bench import report

# name on the command line -> module (imported only when run, so one scenario's
# dependencies never slow or break another).
SCENARIOS = {
    "surge": "bench.surge",
    "pipeline": "bench.pipeline",
    "gateway": "bench.gateway_overhead",
    "calendar": "bench.calendar_scale",
    "invoicing": "bench.invoicing",
    "footprint": "bench.footprint",
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scenarios", nargs="+", choices=[*SCENARIOS, "all"])
    parser.add_argument("--quick", action="store_true",
                        help="small enough for CI; checks correctness only")
    parser.add_argument("--out", type=Path, default=Path("var/bench"),
                        help="folder for <scenario>.json and <scenario>.md")
    args = parser.parse_args(argv)
    names = list(SCENARIOS) if "all" in args.scenarios else args.scenarios
    failed = []
    summary = []
    for name in names:
        started, clock = datetime.now(UTC), time.perf_counter()
        report.log(f"{name}: start{' (quick)' if args.quick else ''}")
        try:
            module = importlib.import_module(SCENARIOS[name])
            result = module.run(quick=args.quick)
        except Exception:
            traceback.print_exc()
            failed.append(name)
            summary.append(f"{name}: ERROR")
            continue
        scenario_argv = [name, *(["--quick"] if args.quick else [])]
        report.stamp(result, scenario_argv, started, time.perf_counter() - clock)
        report.write(result, args.out)
        print(report.markdown(result))
        if not result.ok:
            failed.append(name)
        summary.append(f"{name}: {'ok' if result.ok else 'VIOLATIONS'} "
                       f"({result.duration_s:.1f} s)")
    report.log("; ".join(summary))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
