"""``python -m tests.faults [--short] [--no-write]``: the fault suite on private PostgreSQL and
RabbitMQ servers; prints the table and, for the full run, writes it into RELIABILITY.md."""

from __future__ import annotations

import argparse
import os
import platform
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path

from tests.faults.suite import (
    SHORT_ENV,
    full_faults,
    private_infra,
    run_suite,
    short_faults,
    summary,
    table,
)

ROOT = Path(__file__).resolve().parents[2]
BEGIN, END = "<!-- section: faults -->", "<!-- /section: faults -->"


def write_section(text: str) -> None:
    path = ROOT / "RELIABILITY.md"
    content = path.read_text()
    head, _, rest = content.partition(BEGIN)
    _, _, tail = rest.partition(END)
    path.write_text(f"{head}{BEGIN}\n{text.strip()}\n{END}{tail}")


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.faults")
    parser.add_argument("--short", action="store_true", help="les pannes du test court")
    parser.add_argument("--no-write", action="store_true", help="ne pas écrire RELIABILITY.md")
    parser.add_argument("--verbose", action="store_true",
                        help="les opérations non acceptées, avec leur erreur")
    args = parser.parse_args()
    # Stopped with SIGTERM (timeout, CI): unwind, so the servers and processes started for
    # the run are stopped and their directories removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with private_infra(os.environ.get("PORTAIL_TEST_DATABASE_URL"),
                       os.environ.get("PORTAIL_TEST_AMQP_URL")) as infra:
        run = run_suite(short_faults() if args.short else full_faults(), infra=infra,
                        env=SHORT_ENV if args.short else None)
    result = table(run)
    text = summary(run)
    print(result)
    print(text)
    for problem in run.report.problems():
        print("PROBLÈME :", problem)
    if args.verbose:
        for op in run.stream.ops:
            if op.outcome != "accepted":
                print(f"{op.outcome:8} {op.kind:16} {op.finished - op.started:5.1f} s "
                      f"{op.error[:200]}")
    if not args.short and not args.no_write:
        when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        write_section(SECTION.format(
            when=when, table=result, summary=text, infra=infra.how,
            machine=f"{platform.machine()}, {os.cpu_count()} cœurs, Python "
                    f"{platform.python_version()}"))
    return 1 if run.report.problems() else 0


SECTION = """## Faults

A stream of operations through the gateway (bookings with basket and checkout, monthly and
prepaid paid in the payment simulator; payments of invoices an agent issues; requests with a
document) runs while faults are injected one after another on the distributed topology (every
process separate, `portail serve` under gunicorn, `portail worker`, the SMTP sink), on a
PostgreSQL and a RabbitMQ started for the run. After the last fault the suite drains and
reconciles: every operation the client was told succeeded exists exactly once in its final
state, nothing is left unpublished or unconsumed, the dead-letter queues are listed, every
e-mail is sent and found in the mailbox.

Run of {when} ({machine}; {infra}):

{table}

{summary}

"Fault duration" runs from the fault's start until it is over (the process started again,
the server answering again: a RabbitMQ node takes 10 to 30 s to stop and start on this
machine); "operations during" counts the operations started between the fault and its
recovery; "recovered in" runs from the fault's start until an operation started after it is
over succeeds, the events and e-mails recorded before it was over are published and sent,
and every operation accepted during it is in its final state. A kill keeps the process down
3 s; RabbitMQ and PostgreSQL stay down 5 s (PostgreSQL is stopped with `-m immediate`, as a
crash); SMTP is stopped 6 s, then answers 451 for 6 s; payments made during the
"notification never arrives" fault are taken by the simulator's bank but never notified, and
are settled by reconciliation.

Rerun:

```sh
.venv/bin/python -m tests.faults            # every fault, writes this section (~10 min)
.venv/bin/python -m tests.faults --short    # the short run of the test command
.venv/bin/python -m pytest -q tests/faults  # the short run and the timeout tests, as in CI
```

It needs `/usr/lib/postgresql/15/bin` (or `PORTAIL_FAULTS_PG_BIN`) and `rabbitmq-server`;
where one of them is missing, a TCP proxy in front of the shared server (from
`PORTAIL_TEST_DATABASE_URL` / `PORTAIL_TEST_AMQP_URL`) stands in: its "restart" closes every
connection and refuses new ones for the same time, which is what the services see of a
restart, without touching a server others use.

Bugs found while building and running the suite, each fixed with a test (the first three by
reading the code the faults exercise, the others by the suite's own runs):

- billing: a basket whose hold expired had its payment cancelled without asking the provider,
  and a cancelled payment is never reconciled: money paid at the bank whose notification never
  arrived was lost (`tests/billing/test_lost_notification.py`);
- billing: the payment simulator kept no record of what its bank decided, so a notification
  lost on the way could not be recovered by reconciliation; it now records the decision first
  and answers `poll` from it (same file);
- notifications: a batch of e-mails was leased for 10 minutes as a whole, so a notifications
  worker killed with -9 while sending left its messages untouched for 10 minutes; each message
  is now leased until it can have been tried (`tests/notifications/test_sender_leases.py`);
- bus: during a PostgreSQL restart, a consumer's retries ran out while its database was still
  away and the event went to the dead-letter queue (a booking's e-mail never sent: the first
  full run's only dead letter); a handler failing because the database is unreachable now
  puts the message back after a pause without using up a retry
  (`tests/bus/test_database_outage.py`);
- notifications: a sending round that died with the database kept its claimed messages until
  their lease ran out; they are given back at the next round (same test file as above);
- gateway: one hung service could hold every gateway thread; calls in flight to one upstream
  are now limited to half of them (`tests/gateway/test_bulkhead.py`, and with a frozen
  process in `tests/faults/test_faults.py`).

Known and accepted: an e-mail the SMTP server took just before its sender was killed (or its
database lost) is sent again with the same Message-ID (at least once, counted above as a copy
in double); a web process answers 500 (problem+json) rather than 503 while its database is
down; an agent's manual invoice has no idempotency key, so the suite never sends it twice.
"""


if __name__ == "__main__":
    sys.exit(main())
