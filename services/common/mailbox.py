"""The dev mailbox: a Maildir that stands in for real inboxes in embedded and local modes.

The notification service writes to it directly (``SMTP_URL=maildir``) or through the local
SMTP sink (``portail smtp-sink``); the portal shows it at ``/dev/mail`` so a newcomer can click
an activation link without a mail server.
"""

from __future__ import annotations

import mailbox
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any


def mailbox_dir(data_dir: Path, environ: dict[str, str] | None = None) -> Path:
    configured = (environ or {}).get("DEV_MAILBOX_DIR")
    return Path(configured) if configured else data_dir / "mailbox"


def deliver(folder: Path, raw: bytes) -> str:
    # Maildir(create=True) makes tmp/new/cur only when the folder itself is missing; a folder
    # made by someone else (a volume, a test) would then fail on the first message.
    for sub in ("tmp", "new", "cur"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    box = mailbox.Maildir(folder, create=True)
    try:
        return box.add(raw)
    finally:
        box.close()


def _parse(raw: bytes) -> EmailMessage:
    return BytesParser(policy=policy.default).parsebytes(raw)


def _summary(key: str, message: EmailMessage, *, with_body: bool) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": key,
        "from": str(message.get("From", "")),
        "to": str(message.get("To", "")),
        "subject": str(message.get("Subject", "")),
        "date": "",
    }
    if message.get("Date"):
        try:
            item["date"] = parsedate_to_datetime(str(message["Date"])).isoformat()
        except (TypeError, ValueError):
            item["date"] = str(message["Date"])
    if with_body:
        text = message.get_body(preferencelist=("plain",))
        html = message.get_body(preferencelist=("html",))
        item["text"] = text.get_content() if text else ""
        item["html"] = html.get_content() if html else ""
    return item


def list_messages(folder: Path, *, with_body: bool = True) -> list[dict[str, Any]]:
    """Every message, newest first."""
    if not folder.exists():
        return []
    box = mailbox.Maildir(folder, create=False)
    items = []
    for key in box.iterkeys():
        raw = box.get_bytes(key)
        items.append(_summary(key, _parse(raw), with_body=with_body))
    box.close()
    return sorted(items, key=lambda item: item["date"], reverse=True)


def get_message(folder: Path, key: str) -> dict[str, Any] | None:
    if not folder.exists():
        return None
    box = mailbox.Maildir(folder, create=False)
    try:
        raw = box.get_bytes(key)
    except KeyError:
        return None
    finally:
        box.close()
    return _summary(key, _parse(raw), with_body=True)
