"""A fake gateway for the portal's tests (no network), and the data it answers with.

The fake is a requests transport adapter mounted on the portal's own pooled session, so the
real client code (headers, timeouts, cookie handling) runs up to the socket.
"""

from __future__ import annotations

import html
import io
import json
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3 import HTTPResponse
from urllib3._collections import HTTPHeaderDict

from portal.app import create_app
from services.common.config import Settings

GATEWAY = "http://gw.test"
SESSION_LINE = "portail_session=s3cr3t; Path=/; HttpOnly; SameSite=Lax; Max-Age=3600"

JOLIEVILLE = {"slug": "jolieville", "name": "JolieVille Test", "roles": ["parent"]}
DAMMARTIN = {"slug": "dammartin", "name": "Dammartin-sur-Tigeaux", "roles": ["parent"]}
ME = {
    "account_id": "a1",
    "email": "parent@famille.test",
    "family_id": "f1",
    "platform_admin": False,
    "communes": [JOLIEVILLE, DAMMARTIN],
}
ME_ONE_COMMUNE = {**ME, "communes": [JOLIEVILLE]}
AGENT = {
    "account_id": "a2",
    "email": "agent@jolieville.test",
    "family_id": None,
    "platform_admin": False,
    "communes": [{"slug": "jolieville", "name": "JolieVille Test",
                  "roles": ["agent", "agent-admin"]}],
}


def commune(slug: str = "jolieville", name: str = "JolieVille Test",
            modules: tuple[str, ...] = ("reservations", "invoices", "requests")) -> dict:
    return {"id": f"id-{slug}", "slug": slug, "name": name,
            "settings": {"timezone": "Europe/Paris", "modules": list(modules),
                         "contact_email": f"mairie@{slug}.test", "phone": None,
                         "address": None}}


GUARDIANS = [
    {"id": "g1", "first_name": "Claire", "last_name": "CASSEREAU", "relation": "mère",
     "email": "parent@famille.test", "phones": ["06 12 34 56 78"], "pays": True},
    {"id": "g2", "first_name": "Marc", "last_name": "CASSEREAU", "relation": "père",
     "email": None, "phones": [], "pays": False},
]
CHILDREN = [
    {"id": "c1", "first_name": "Léa", "last_name": "CASSEREAU", "birth_date": "2018-03-14",
     "school": "École élémentaire Jean Jaurès", "class_name": "CE2", "allergies": True},
    {"id": "c2", "first_name": "Tom", "last_name": "CASSEREAU", "birth_date": "2021-09-02",
     "school": None, "class_name": None, "allergies": False},
]
FAMILY = {
    "id": "f1",
    "family_name": "CASSEREAU",
    "address": {"line1": "12 rue des Lilas", "line2": "Bâtiment B", "postal_code": "77000",
                "city": "JolieVille"},
    "guardians": GUARDIANS,
    "children": CHILDREN,
}
NEWS = {"items": [{"id": "n1", "title": "Fermeture du centre de loisirs",
                   "body": "Le centre sera fermé le 11 novembre.\n\nBonne journée.",
                   "published_at": "2026-11-02T09:00:00Z"}], "next": None}


def problem(status: int, detail: str, errors: dict | None = None, **extra: Any) -> dict:
    body = {"type": "about:blank", "title": "Erreur", "status": status, "detail": detail}
    if errors:
        body["errors"] = errors
    body.update(extra)
    return body


Reply = tuple[int, Any, dict[str, str] | list[tuple[str, str]]]


class FakeGateway(HTTPAdapter):
    """Answers ``(method, path)`` from ``routes``; records every request it saw."""

    def __init__(self) -> None:
        super().__init__()
        self.routes: dict[tuple[str, str], Callable[[requests.PreparedRequest], Reply]] = {}
        self.seen: list[requests.PreparedRequest] = []
        self.failure: Exception | None = None

    def on(self, method: str, path: str, status: int = 200, body: Any = None,
           headers: dict[str, str] | list[tuple[str, str]] | None = None) -> None:
        self.routes[(method, path)] = lambda _req: (status, body, headers or {})

    def handle(self, method: str, path: str,
               handler: Callable[[requests.PreparedRequest], Reply]) -> None:
        self.routes[(method, path)] = handler

    def send(self, request, **kwargs):
        self.seen.append(request)
        if self.failure is not None:
            raise self.failure
        path = urlsplit(request.url).path
        handler = self.routes.get((request.method, path))
        status, body, headers = handler(request) if handler else (404, {"status": 404}, {})
        raw_headers = HTTPHeaderDict()
        for name, value in (headers.items() if isinstance(headers, dict) else headers):
            raw_headers.add(name, value)
        data = b""
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            raw_headers.setdefault("Content-Type", "application/json")
        raw = HTTPResponse(body=io.BytesIO(data), headers=raw_headers, status=status,
                           preload_content=False, decode_content=False)
        return self.build_response(request, raw)

    def calls(self, method: str, path: str) -> list[requests.PreparedRequest]:
        return [r for r in self.seen if r.method == method and urlsplit(r.url).path == path]

    def last(self, path: str) -> requests.PreparedRequest:
        return [r for r in self.seen if urlsplit(r.url).path == path][-1]

    def last_json(self, method: str, path: str) -> Any:
        return json.loads(self.calls(method, path)[-1].body)

    def last_query(self, path: str) -> dict[str, list[str]]:
        return parse_qs(urlsplit(self.last(path).url).query)

    def parent(self, me: dict = ME, family: dict = FAMILY) -> None:
        """A logged-in parent, with the demo communes and household."""
        self.on("GET", "/auth/me", body=me)
        self.on("GET", "/api/accounts/communes/jolieville", body=commune())
        self.on("GET", "/api/accounts/communes/dammartin",
                body=commune("dammartin", "Dammartin-sur-Tigeaux", ("invoices",)))
        self.on("GET", "/api/accounts/communes/jolieville/news", body=NEWS)
        self.on("GET", "/api/accounts/communes/dammartin/news", body={"items": [],
                                                                     "next": None})
        self.on("GET", "/api/accounts/me/family", body=family)
        self.on("GET", "/api/accounts/me/communes", body={"items": [
            {"slug": "jolieville", "name": "JolieVille Test", "family_code": "JV-0042",
             "joined_at": "2026-09-01T08:00:00Z"},
            {"slug": "dammartin", "name": "Dammartin-sur-Tigeaux", "family_code": "DT-7",
             "joined_at": "2026-10-15T08:00:00Z"}]})

    def agent(self) -> None:
        self.on("GET", "/auth/me", body=AGENT)
        self.on("GET", "/api/accounts/communes/jolieville", body=commune())
        self.on("GET", "/api/accounts/communes/jolieville/news", body=NEWS)


def make_settings(env: str = "dev") -> Settings:
    return Settings(service="portal", env=env, secret_key="x" * 32,
                    extra={"GATEWAY_URL": GATEWAY})


def build(fake: FakeGateway, env: str = "dev"):
    app = create_app(make_settings(env))
    app.config["TESTING"] = True
    app.extensions["portal_client"].session.mount(GATEWAY, fake)
    return app


_TOKEN = (re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"'),
          re.compile(r'name="csrf_token" value="([^"]+)"'))


def csrf_token(client, path: str = "/connexion") -> str:
    page = client.get(path).get_data(as_text=True)
    match = _TOKEN[0].search(page) or _TOKEN[1].search(page)
    assert match, page
    return match.group(1)


def post_form(client, path: str, data: dict[str, Any], *, token_from: str | None = None,
              **kwargs):
    """POST ``data`` to ``path`` with the CSRF token of the page it is on."""
    return client.post(path, data={**data, "csrf_token": csrf_token(client, token_from or path)},
                       **kwargs)


def login(client, email="parent@famille.test", password="portail-demo", **kwargs):
    data = {"email": email, "password": password, "csrf_token": csrf_token(client)}
    return client.post("/connexion", data=data, **kwargs)


def field_error(page: str, field_id: str) -> str | None:
    """The error text shown next to a field (``<p id="{id}-erreur">``), or None."""
    match = re.search(rf'<p class="field__error" id="{re.escape(field_id)}-erreur">'
                      r'<span class="visually-hidden">Erreur : </span>([^<]*)</p>', page)
    return html.unescape(match.group(1)) if match else None


def text(response) -> str:
    """The page with its character references resolved, to look for French sentences."""
    return html.unescape(response.get_data(as_text=True))


def input_value(page: str, field_id: str) -> str | None:
    for tag in re.findall(r"<input[^>]*>", page):
        if f'id="{field_id}"' in tag:
            match = re.search(r'value="([^"]*)"', tag)
            return match.group(1) if match else None
    return None
