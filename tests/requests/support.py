"""A requests app on its own SQLite file (or a PostgreSQL database) with the demo categories,
the demo communes and households fed through its handlers as accounts' events would, tokens
minted as the gateway would, sample files, and the outbox read back as the events it will
publish."""

from __future__ import annotations

import copy
import io
import struct
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from PIL import Image
from sqlalchemy import select

from services.common import catalogue
from services.common.auth import Principal, Signer, ensure_dev_keys
from services.common.config import Settings
from services.common.events import Event
from services.common.migrate import upgrade
from services.common.outbox import OUTBOX
from services.requests.app import build_runtime, create_app
from services.requests.events import HANDLERS
from services.requests.seed import demo_id, seed
from tests.test_catalogue import EXAMPLES

JOLIEVILLE = demo_id("commune", "jolieville")
DAMMARTIN = demo_id("commune", "dammartin")
FAMILY = demo_id("family", "CASSEREAU")
OTHER_FAMILY = "f0000000-0000-4000-8000-0000000000aa"
LEA = "c0000000-0000-4000-8000-000000000001"
HUGO = "c0000000-0000-4000-8000-000000000002"
OTHER_CHILD = "c0000000-0000-4000-8000-0000000000aa"
PICKUP = demo_id("category", "jolieville:pickup_authorisation")
ADDRESS = demo_id("category", "jolieville:address_change")
ALLERGY = demo_id("category", "jolieville:food_allergy")
ABSENCE = demo_id("category", "jolieville:absence")
DAMMARTIN_PICKUP = demo_id("category", "dammartin:pickup_authorisation")

_JV = {"id": JOLIEVILLE, "name": "JolieVille Test"}
_DM = {"id": DAMMARTIN, "name": "Dammartin-sur-Tigeaux"}
PARENT = Principal(account_id=demo_id("account", "parent@famille.test"),
                   email="parent@famille.test", family_id=FAMILY,
                   communes={"jolieville": {**_JV, "roles": ["parent"]},
                             "dammartin": {**_DM, "roles": ["parent"]}})
OTHER_PARENT = Principal(account_id="acc00000-0000-4000-8000-0000000000aa",
                         email="autre@famille.test", family_id=OTHER_FAMILY,
                         communes={"jolieville": {**_JV, "roles": ["parent"]}})
AGENT = Principal(account_id=demo_id("account", "agent@jolieville.test"),
                  email="agent@jolieville.test",
                  communes={"jolieville": {**_JV, "roles": ["agent", "agent-admin"]}})
COLLEAGUE = Principal(account_id="8a1e3c52-6f1e-4c55-9d8e-0b7c4f1a2d33",
                      email="agent2@jolieville.test",
                      communes={"jolieville": {**_JV, "roles": ["agent"]}})
DAMMARTIN_AGENT = Principal(account_id=demo_id("account", "agent@dammartin.test"),
                            email="agent@dammartin.test",
                            communes={"dammartin": {**_DM, "roles": ["agent"]}})
ADMIN = Principal(account_id=demo_id("account", "admin@portail.test"),
                  email="admin@portail.test", platform_admin=True)
RECIPIENTS = ["parent@famille.test", "paul.cassereau@famille.test"]


def base(slug: str = "jolieville") -> str:
    return f"/api/requests/communes/{slug}"


# Sample files ------------------------------------------------------------------------------
def png(width: int = 8, height: int = 6, color=(200, 30, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), color).save(out, format="PNG")
    return out.getvalue()


def jpeg(width: int = 8, height: int = 6) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (10, 120, 200)).save(out, format="JPEG")
    return out.getvalue()


def pdf(text: str = "Carte d'identité", pages: int = 1) -> bytes:
    from fpdf import FPDF

    document = FPDF()
    document.set_creation_date(datetime(2026, 9, 1, tzinfo=UTC))  # the same bytes every time
    for _ in range(pages):
        document.add_page()
        document.set_font("helvetica", size=12)
        document.cell(text=text.encode("latin-1", "replace").decode("latin-1"))
    return bytes(document.output())


def png_header_only(width: int, height: int) -> bytes:
    """A PNG announcing ``width`` x ``height`` with a few compressed bytes of pixels: what an
    image bomb looks like to a reader of headers (it would only blow up when decoded)."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return (struct.pack(">I", len(payload)) + kind + payload
                + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00" * 4096, 9)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", pixels)
            + chunk(b"IEND", b""))


def heic(width: int = 4032, height: int = 3024, brand: bytes = b"heic") -> bytes:
    """The first boxes of an iPhone photo: ftyp, then a meta box with an ispe property."""
    ftyp = struct.pack(">I", 24) + b"ftyp" + brand + b"\x00\x00\x00\x00" + b"mif1heic"
    ispe = struct.pack(">I", 20) + b"ispe" + b"\x00\x00\x00\x00" + struct.pack(">II", width,
                                                                                height)
    meta = struct.pack(">I", 12 + len(ispe)) + b"meta" + b"\x00\x00\x00\x00" + ispe
    return ftyp + meta + b"\x00" * 64


HTML = b"<!doctype html><html><body><script>alert(1)</script></body></html>"


def encrypted_pdf() -> bytes:
    return (b"%PDF-1.6\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
            b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
            b"3 0 obj<</Type/Page/Parent 2 0 R>>endobj\n"
            b"4 0 obj<</Filter/Standard/V 2/R 3/O<00>/U<00>/P -4>>endobj\n"
            b"trailer<</Root 1 0 R/Encrypt 4 0 R>>\n%%EOF\n")


def file_part(data: bytes, filename: str, content_type: str = "application/octet-stream"):
    return (io.BytesIO(data), filename, content_type)


# The app -----------------------------------------------------------------------------------
def event_for(event_type: str, data: dict[str, Any], commune_id: str | None = None) -> Event:
    return Event.new(event_type, data, producer=event_type.split(".")[0],
                     commune_id=commune_id)


def household_snapshot(family_id: str = FAMILY, *, version: int = 3,
                       communes: tuple[str, ...] = ("jolieville", "dammartin"),
                       children: list[dict[str, Any]] | None = None,
                       guardians: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    data = copy.deepcopy(EXAMPLES["accounts.family.updated"])
    data["family_id"] = family_id
    data["version"] = version
    data["communes"] = [{"commune_id": demo_id("commune", slug), "slug": slug,
                         "family_code": f"{slug[:2].upper()}7CASSE"} for slug in communes]
    if children is not None:
        data["children"] = children
    if guardians is not None:
        data["guardians"] = guardians
    else:
        data["guardians"][0]["email"] = RECIPIENTS[0]
        data["guardians"][1]["email"] = RECIPIENTS[1]
    return data


@dataclass
class Requests:
    """The app under test, and what a test needs around it."""

    app: Any
    runtime: Any
    signer: Signer
    data_dir: Path

    @property
    def db(self):
        return self.runtime.db

    @property
    def store(self):
        return self.runtime.store

    @property
    def documents_dir(self) -> Path:
        return self.store.root

    def handle(self, event_type: str, data: dict[str, Any]) -> None:
        """Deliver an event as the consumer would: validated leniently, then handled."""
        event = event_for(event_type, data)
        loaded = catalogue.validate(event_type, 1, event.data, strict=False)
        with self.db.transaction() as session:
            HANDLERS[event_type](session, event, loaded)

    def headers(self, principal: Principal | None) -> dict[str, str]:
        if principal is None:
            return {}
        return {"Authorization": f"Bearer {self.signer.mint(principal, audience='requests')}"}

    def call(self, method: str, path: str, as_: Principal | None = None, **kwargs):
        headers = {**self.headers(as_), **kwargs.pop("headers", {})}
        return self.app.test_client().open(path, method=method, headers=headers, **kwargs)

    def get(self, path, as_=None, **kwargs):
        return self.call("GET", path, as_, **kwargs)

    def post(self, path, as_=None, **kwargs):
        return self.call("POST", path, as_, **kwargs)

    def patch(self, path, as_=None, **kwargs):
        return self.call("PATCH", path, as_, **kwargs)

    def submit(self, data: dict[str, Any], as_: Principal = PARENT, slug: str = "jolieville",
               **kwargs):
        return self.post(f"{base(slug)}/requests", as_, data=data,
                         content_type="multipart/form-data", **kwargs)

    def events(self, event_type: str | None = None) -> list[dict[str, Any]]:
        """Envelopes in the outbox, oldest first, each checked against the catalogue as the
        publisher (strict) and a consumer (lenient) would."""
        with self.db.sessions() as session:
            query = select(OUTBOX.c.envelope).order_by(OUTBOX.c.id)
            if event_type:
                query = query.where(OUTBOX.c.type == event_type)
            envelopes = list(session.scalars(query))
        for envelope in envelopes:
            catalogue.validate(envelope["type"], envelope["version"], envelope["data"],
                               strict=True)
            catalogue.validate(envelope["type"], envelope["version"], envelope["data"],
                               strict=False)
            assert envelope["producer"] == "requests"
        return envelopes

    def stored_files(self) -> list[Path]:
        return sorted(p for p in self.data_dir.rglob("*") if p.is_file()
                      and self.documents_dir in p.parents)

    def all_files(self) -> set[Path]:
        return {p for p in self.data_dir.rglob("*") if p.is_file()}


def build(tmp_path: Path, url: str, **extra: str) -> Requests:
    upgrade("services.requests", url)
    data_dir = tmp_path / "data"
    settings = Settings(service="requests", env="dev", data_dir=data_dir, database_url=url,
                        amqp_url="memory://", log_format="console", log_level="WARNING",
                        extra=extra)
    runtime = build_runtime(settings=settings)
    seed(runtime.db)
    app = create_app(runtime)
    app.config["TESTING"] = True
    built = Requests(app, runtime, Signer(ensure_dev_keys(data_dir)[0]), data_dir)
    settings_data = copy.deepcopy(EXAMPLES["accounts.commune.created"]["settings"])
    for slug, name in (("jolieville", "JolieVille Test"), ("dammartin", "Dammartin-sur-Tigeaux")):
        built.handle("accounts.commune.created", {"commune_id": demo_id("commune", slug),
                                                  "slug": slug, "name": name,
                                                  "settings": settings_data})
    built.handle("accounts.family.updated", household_snapshot(children=[
        {"id": LEA, "first_name": "Léa", "last_name": "CASSEREAU", "birth_date": "2017-03-14",
         "school": "École Jules Ferry", "class_name": "CM1", "allergies": False},
        {"id": HUGO, "first_name": "Hugo", "last_name": "CASSEREAU",
         "birth_date": "2020-09-02", "school": "École Jules Ferry", "class_name": "GS",
         "allergies": True},
    ]))
    other = household_snapshot(OTHER_FAMILY, version=1, communes=("jolieville",), children=[
        {"id": OTHER_CHILD, "first_name": "Zoé", "last_name": "MARTIN",
         "birth_date": "2018-05-02", "school": None, "class_name": None, "allergies": False}],
        guardians=[{"id": "9a000000-0000-4000-8000-0000000000aa", "first_name": "Claire",
                    "last_name": "MARTIN", "email": "autre@famille.test", "phones": [],
                    "pays": True}])
    other["family_name"] = "MARTIN"
    built.handle("accounts.family.updated", other)
    return built


def pickup_form(**changes: Any) -> dict[str, Any]:
    """A complete "Autorisation de récupération d'un enfant", with its identity document."""
    form = {
        "category": PICKUP,
        "child": LEA,
        "person_name": "Jeanne DUPONT",
        "relation": "grand-mère",
        "phone": "06 11 22 33 44",
        "from": "2026-10-05",
        "identity_document": file_part(pdf(), "carte-identite.pdf", "application/pdf"),
    }
    form.update(changes)
    return {k: v for k, v in form.items() if v is not None}


def absence_form(**changes: Any) -> dict[str, Any]:
    form = {"category": ABSENCE, "child": HUGO, "from": "2026-10-05", "to": "2026-10-07",
            "reason": "Maladie",
            "certificate": file_part(jpeg(), "certificat.jpg", "image/jpeg")}
    form.update(changes)
    return {k: v for k, v in form.items() if v is not None}


def submitted(requests: Requests, form: dict[str, Any] | None = None,
              as_: Principal = PARENT) -> dict[str, Any]:
    response = requests.submit(form or pickup_form(), as_)
    assert response.status_code == 201, response.get_json()
    return response.get_json()
