"""Answering the second factor of the demo agents and admin in tests (pyotp, demo secret).

Accounts refuses a code for a step it already accepted (replay protection): two logins of the
same account within 30 seconds need two different steps. ``code_for`` hands out, per account,
the current step's code, or the next step's (accepted: ±1 step), or waits for a fresh step.
"""

from __future__ import annotations

import threading
import time

import pyotp

from services.accounts.totp import DEMO_SECRET, STEP, WINDOW

_lock = threading.Lock()
_last: dict[str, int] = {}


def code_for(key: str, secret: str = DEMO_SECRET) -> str:
    """A code accounts has not accepted yet for ``key`` (one per account and suite)."""
    with _lock:
        while True:
            now = int(time.time() // STEP)
            step = max(now, _last.get(key, now - 1) + 1)
            if step <= now + WINDOW:
                _last[key] = step
                return pyotp.TOTP(secret, interval=STEP).generate_otp(step)
            time.sleep(STEP - time.time() % STEP + 0.05)
