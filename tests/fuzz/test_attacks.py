"""Hostile requests through the gateway and straight to a service: malformed multipart,
upload tricks, oversized and deeply nested JSON, invalid UTF-8, huge query strings and
headers. Each gets a clear 4xx problem+json in French, and nothing is kept (rows and stored
files counted before and after).

tests/requests/test_submission.py already covers, on the requests app alone, empty and
garbage multipart bodies, PNG/HTML disguised as PDF, image bombs, encrypted PDFs, oversized
files and paths in file names; here the same families of attack go through real sockets and
the gateway, with the variants that file does not try.
"""

from __future__ import annotations

import io
import zipfile

import pytest
import requests
from sqlalchemy import func, select

from services.accounts.models import Commune
from services.billing.models import Invoice, InvoiceLine
from services.common.auth import Signer, ensure_dev_keys
from services.requests.models import Document, HistoryEntry, Message, Request
from services.reservations.models import BasketItem, Booking
from services.reservations.seed import LEA
from tests.fuzz.conftest import service_url
from tests.requests.support import AGENT, PARENT, PICKUP, pdf, png
from tests.requests.support import pickup_form as _pickup_form

KEPT = {"accounts": [Commune], "billing": [Invoice, InvoiceLine],
        "reservations": [BasketItem, Booking],
        "requests": [Request, Document, HistoryEntry, Message]}
MB = 1024 * 1024


def pickup_form(**changes) -> dict:
    """The demo household's real child (the requests tests' own ids are not the seed's)."""
    return _pickup_form(child=LEA, **changes)


# --- what is kept -------------------------------------------------------------------------------


def snapshot(suite) -> dict:
    counts = {}
    for service, models in KEPT.items():
        with suite.runtimes[service].db.sessions() as session:
            for model in models:
                counts[f"{service}.{model.__name__}"] = session.scalar(
                    select(func.count()).select_from(model))
    root = suite.data_dir
    counts["files"] = sorted(str(p.relative_to(root)) for p in root.rglob("*")
                             if p.is_file() and "documents" in p.parts and "tmp" not in p.parts)
    return counts


@pytest.fixture
def unchanged(suite):
    before = snapshot(suite)
    yield
    assert snapshot(suite) == before


# --- who sends ---------------------------------------------------------------------------------


class Target:
    """The same path asked through the gateway (a logged-in client's token) or from the
    service's own port (a token minted as the gateway would)."""

    def __init__(self, suite, tokens, route: str, service: str):
        self.suite, self.tokens, self.route, self.service = suite, tokens, route, service
        self.signer = Signer(ensure_dev_keys(suite.data_dir)[0])

    def url(self, path: str) -> str:
        base = self.suite.url if self.route == "gateway" else service_url(self.suite,
                                                                           self.service)
        return base + path

    def headers(self, who: str) -> dict[str, str]:
        if self.route == "gateway":
            return {"Authorization": f"Bearer {self.tokens[who]}"}
        principal = {"parent": PARENT, "agent": AGENT}[who]
        return {"Authorization": f"Bearer {self.signer.mint(principal, self.service)}"}

    def send(self, method: str, path: str, who: str = "parent", headers=None, **kwargs):
        return requests.request(method, self.url(path),
                                headers={**self.headers(who), **(headers or {})},
                                timeout=60, **kwargs)


ROUTES = ["gateway", "direct"]
REQUESTS = "/api/requests/communes/jolieville/requests"


def assert_french_problem(response, *statuses: int) -> dict:
    assert response.status_code in statuses, (response.status_code, response.text[:500])
    assert response.headers["Content-Type"].startswith("application/problem+json"), \
        response.text[:300]
    body = response.json()
    assert body["status"] == response.status_code
    assert body["title"] and body["detail"]
    # French, not werkzeug's or marshmallow's English
    assert not any(word in body["detail"] for word in ("The ", "request", "browser", "Invalid"))
    return body


# --- multipart ---------------------------------------------------------------------------------

FIELDS = (b'--XyZ\r\nContent-Disposition: form-data; name="category"\r\n\r\n'
          + PICKUP.encode() + b"\r\n")


def _file_part(name: bytes, body: bytes, headers: bytes = b"") -> bytes:
    return (b'--XyZ\r\nContent-Disposition: form-data; name="identity_document"; filename="'
            + name + b'"\r\n' + headers + b"Content-Type: application/pdf\r\n\r\n" + body
            + b"\r\n")


MALFORMED = {
    "no boundary parameter": ("multipart/form-data", FIELDS + b"--XyZ--\r\n"),
    "empty boundary": ("multipart/form-data; boundary=", FIELDS + b"--XyZ--\r\n"),
    "truncated in a part": ("multipart/form-data; boundary=XyZ",
                            FIELDS + _file_part(b"carte.pdf", pdf())[:-200]),
    "truncated in the headers": ("multipart/form-data; boundary=XyZ",
                                 FIELDS + b'--XyZ\r\nContent-Disposition: form-da'),
    "no closing boundary": ("multipart/form-data; boundary=XyZ",
                            FIELDS + _file_part(b"carte.pdf", pdf())),
    "huge part header": ("multipart/form-data; boundary=XyZ",
                         FIELDS + _file_part(b"carte.pdf", pdf(),
                                             b"X-Padding: " + b"a" * (600 * 1024) + b"\r\n")
                         + b"--XyZ--\r\n"),
    "thousands of part headers": ("multipart/form-data; boundary=XyZ",
                                  FIELDS + _file_part(b"carte.pdf", pdf(), b"".join(
                                      b"X-H%d: v\r\n" % i for i in range(20000)))
                                  + b"--XyZ--\r\n"),
    "boundary of 10,000 characters": ("multipart/form-data; boundary=" + "b" * 10000,
                                      b"--" + b"b" * 10000 + b"\r\n\r\n--" + b"b" * 10000
                                      + b"--\r\n"),
}


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_multipart_is_refused_and_nothing_is_kept(suite, tokens, unchanged, route,
                                                             case):
    content_type, body = MALFORMED[case]
    target = Target(suite, tokens, route, "requests")
    response = target.send("POST", REQUESTS, data=body,
                           headers={"Content-Type": content_type})
    # 413 for the part headers beyond werkzeug's bounds, 400/422 for the rest; never 5xx
    assert_french_problem(response, 400, 413, 415, 422)


# --- upload tricks -----------------------------------------------------------------------------


def zip_bomb() -> bytes:
    """A zip of 10 MB of zeros that weighs a few kilobytes."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("contenu.txt", b"\0" * (10 * MB))
    return out.getvalue()


UPLOADS = {
    "a zip bomb named .pdf": (zip_bomb(), "carte.pdf", "application/pdf"),
    "a zip bomb as application/zip": (zip_bomb(), "carte.zip", "application/zip"),
    "a zip bomb behind a PDF header": (b"%PDF-1.4\n" + zip_bomb(), "carte.pdf",
                                       "application/pdf"),
    "an HTML page declared as image/png": (b"<!doctype html><script>alert(1)</script>",
                                           "carte.png", "image/png"),
    "an SVG with a script": (b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)'
                             b"</script></svg>", "carte.svg", "image/svg+xml"),
    "an ELF executable named .pdf": (b"\x7fELF\x02\x01\x01" + b"\0" * 200, "carte.pdf",
                                     "application/pdf"),
}


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("case", list(UPLOADS))
def test_disguised_files_are_refused_and_nothing_is_kept(suite, tokens, unchanged, route,
                                                         case):
    data, name, content_type = UPLOADS[case]
    target = Target(suite, tokens, route, "requests")
    form = pickup_form(identity_document=None)
    response = target.send("POST", REQUESTS, data=form,
                           files={"identity_document": (name, data, content_type)})
    body = assert_french_problem(response, 422)
    assert "identity_document" in body["errors"]


POLYGLOTS = {
    "a PNG followed by an HTML page": (png() + b"<html><script>alert(1)</script></html>",
                                       "photo.html", "text/html", "image/png"),
    "a PDF followed by a zip": (pdf() + zip_bomb(), "carte.zip", "application/zip",
                                "application/pdf"),
}


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("case", list(POLYGLOTS))
def test_a_polyglot_is_kept_only_as_its_real_type_and_never_served_as_a_page(suite, tokens,
                                                                             route, case):
    """What the first bytes say wins over the name and the declared type; it comes back as an
    attachment of that type, never sniffed into HTML."""
    data, name, declared, real = POLYGLOTS[case]
    target = Target(suite, tokens, route, "requests")
    response = target.send("POST", REQUESTS, data=pickup_form(identity_document=None),
                           headers={"Idempotency-Key":
                                    f"polyglot-{route}-{list(POLYGLOTS).index(case)}"},
                           files={"identity_document": (name, data, declared)})
    if response.status_code not in (200, 201):  # 200: the same request already received
        assert_french_problem(response, 422)
        return
    created = response.json()
    document = created["documents"][0]
    download = target.send(
        "GET", f"{REQUESTS}/{created['id']}/documents/{document['id']}", "agent")
    assert download.status_code == 200
    assert download.headers["Content-Type"].split(";")[0] == real
    assert download.headers["Content-Disposition"].startswith("attachment")
    assert download.headers.get("X-Content-Type-Options") == "nosniff"


@pytest.mark.parametrize("route", ROUTES)
def test_file_names_with_dot_dot_and_nul_never_name_a_stored_file(suite, tokens, route):
    """Accepted (the content is a real PDF), stored under its digest only: the name is shown,
    cleaned, and never becomes a path."""
    target = Target(suite, tokens, route, "requests")
    before = snapshot(suite)["files"]
    names = ["../../../../tmp/evil.pdf", "carte\x00.exe.pdf", "..\\..\\win.pdf",
             "%2e%2e%2fetc%2fpasswd.pdf"]
    for name in names:
        content = pdf(f"{route} {name}")
        form = pickup_form(identity_document=None)
        response = target.send("POST", REQUESTS, data=form, headers={
            "Idempotency-Key": f"fuzz-{route}-{names.index(name)}"},
            files={"identity_document": (name, content, "application/pdf")})
        if response.status_code == 201:
            document = response.json()["documents"][0]
            shown = document.get("filename") or document.get("name") or ""
            assert "/" not in shown and "\\" not in shown and "\x00" not in shown
            assert ".." not in shown
        else:
            assert_french_problem(response, 400, 422)
    after = snapshot(suite)["files"]
    for path in set(after) - set(before):
        # every new file sits under documents/, named by a hex digest
        assert path.split("/")[-1].isalnum(), path
    assert not (suite.data_dir.parent / "tmp" / "evil.pdf").exists()


# --- JSON bodies -------------------------------------------------------------------------------

# A POST taking JSON per service, with who may send it: what must not be kept if refused.
JSON_TARGETS = [
    ("accounts", "/api/accounts/communes", "agent"),
    ("billing", "/api/billing/communes/jolieville/invoices", "agent"),
    ("reservations", "/api/reservations/communes/jolieville/basket/items", "parent"),
]


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


BAD_JSON = {
    "over the size limit": (b'{"label": "' + b"a" * (2 * MB) + b'"}', 413),
    "100,000 nested arrays": (nested(100_000), 400),
    "100 nested objects": (b'{"a":' * 100 + b"1" + b"}" * 100, 400),
    "invalid UTF-8": (b'{"label": "caf\xe9 \xff\xfe"}', 400),
    "truncated": (b'{"label": "abc', 400),
    "a number of 10,000 digits": (b'{"amount": ' + b"9" * 10_000 + b"}", 400),
    "NaN": (b'{"amount": NaN}', 400),
}


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("case", list(BAD_JSON))
@pytest.mark.parametrize(("service", "path", "who"), JSON_TARGETS)
def test_bad_json_bodies_get_a_french_4xx_and_nothing_is_kept(suite, tokens, unchanged, route,
                                                              case, service, path, who):
    body, status = BAD_JSON[case]
    target = Target(suite, tokens, route, service)
    response = target.send("POST", path, who, data=body,
                           headers={"Content-Type": "application/json"})
    if case == "NaN":  # Python reads NaN; the schema must refuse it, as 400 or 422
        assert_french_problem(response, 400, 422)
    else:
        assert_french_problem(response, status)


@pytest.mark.parametrize("route", ROUTES)
def test_a_chunked_json_body_over_the_limit_is_refused(suite, tokens, unchanged, route):
    target = Target(suite, tokens, route, "accounts")

    def chunks():
        yield b'{"slug": "x", "name": "'
        for _ in range(40):
            yield b"a" * 65536
        yield b'"}'

    response = target.send("POST", "/api/accounts/communes", "agent", data=chunks(),
                           headers={"Content-Type": "application/json"})
    assert_french_problem(response, 413)


# --- addresses and headers ---------------------------------------------------------------------


@pytest.mark.parametrize("route", ROUTES)
def test_a_huge_query_string_is_refused(suite, tokens, route):
    target = Target(suite, tokens, route, "billing")
    response = target.send("GET", "/api/billing/communes/jolieville/invoices?cursor="
                           + "a" * 20_000)
    assert_french_problem(response, 414)


@pytest.mark.parametrize("route", ROUTES)
def test_huge_headers_are_refused(suite, tokens, route):
    target = Target(suite, tokens, route, "billing")
    headers = {f"X-Bourrage-{i}": "b" * 4000 for i in range(12)}
    response = target.send("GET", "/api/billing/communes/jolieville/invoices",
                           headers=headers)
    # The gateway may refuse first; either way a problem in French.
    assert_french_problem(response, 431)


INVALID_UTF8 = [
    "/api/billing/communes/jolieville/invoices?period=%FF%FE",
    "/api/billing/communes/jolieville/invoices?%C0%AF=1",
    "/api/billing/communes/jolieville%FF/invoices",
    "/api/billing/invoices/%ED%A0%80",
    "/api/reservations/communes/jolieville/bookings?child_id=%00%FF",
    "/api/requests/communes/jolieville/requests?status=%E9t%E9",
]


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("path", INVALID_UTF8)
def test_invalid_utf8_in_paths_and_query_strings_is_a_4xx(suite, tokens, route, path):
    service = path.split("/")[2]
    target = Target(suite, tokens, route, service)
    response = target.send("GET", path)
    assert_french_problem(response, 400, 404, 422)
