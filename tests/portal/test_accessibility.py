"""An accessibility self-check of every page, parsed with html.parser (no browser needed).

Each page: ``lang="fr"``, a ``<title>`` ending in "— Portail Famille", one ``<h1>``, the
landmarks (header, nav, main, footer), unique ids, every form control labelled (``<label
for>`` or ``aria-label``), every ``aria-describedby``/``aria-labelledby`` and in-page link
pointing at an element that exists, and a CSRF token in every POST form. Playwright and axe
cover what needs a browser (contrast, focus) in the end-to-end suite.
"""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from .support import (
    AGENT,
    CHILDREN,
    GUARDIANS,
    ME,
    NEWS,
    FakeGateway,
    build,
    csrf_token,
    problem,
)

FAMILY_DETAIL = {"id": "f9", "family_name": "MARTIN", "family_code": "JV-0099",
                 "email": "m@x.test", "status": "invited", "invited_at": "2026-11-20T10:00:00Z",
                 "address": None, "guardians": GUARDIANS, "children": CHILDREN}
FAMILIES = {"items": [{"id": "f9", "family_name": "MARTIN", "family_code": "JV-0099",
                       "email": "m@x.test", "status": "invited", "children_count": 2}],
            "next": "c2"}


class Page(HTMLParser):
    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta",
            "source", "track", "wbr"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lang: str | None = None
        self.title = ""
        self.h1 = 0
        self.tags: list[str] = []
        self.ids: list[str] = []
        self.label_for: set[str] = set()
        self.controls: list[dict[str, str | None]] = []
        self.references: list[tuple[str, str]] = []
        self.forms: list[dict] = []
        self._in_title = False
        self._form: dict | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append(tag)
        if tag == "html":
            self.lang = a.get("lang")
        if tag == "title":
            self._in_title = True
        if tag == "h1":
            self.h1 += 1
        if a.get("id"):
            self.ids.append(a["id"])
        if tag == "label" and a.get("for"):
            self.label_for.add(a["for"])
        for attribute in ("aria-describedby", "aria-labelledby"):
            for ref in (a.get(attribute) or "").split():
                self.references.append((attribute, ref))
        if tag == "a" and (a.get("href") or "").startswith("#"):
            self.references.append(("href", a["href"][1:]))
        if tag == "form":
            self._form = {"method": (a.get("method") or "get").lower(), "csrf": False,
                          "action": a.get("action")}
            self.forms.append(self._form)
        if tag in ("input", "select", "textarea"):
            kind = (a.get("type") or "text").lower() if tag == "input" else tag
            if kind not in ("hidden", "submit", "button", "reset", "image"):
                self.controls.append({"id": a.get("id"), "aria-label": a.get("aria-label"),
                                      "name": a.get("name")})
            if a.get("name") == "csrf_token" and self._form is not None:
                self._form["csrf"] = True

    def handle_endtag(self, tag):
        if tag == "title":
            self._in_title = False
        if tag == "form":
            self._form = None

    def handle_data(self, data):
        if self._in_title:
            self.title += data


def check(html: str, where: str) -> Page:
    page = Page()
    page.feed(html)
    assert page.lang == "fr", where
    assert page.title.strip().endswith("— Portail Famille"), (where, page.title)
    assert len(page.title.strip()) > len("— Portail Famille"), where
    assert page.h1 == 1, (where, page.h1)
    for landmark in ("header", "nav", "main", "footer"):
        assert landmark in page.tags, (where, landmark)
    duplicates = {i for i in page.ids if page.ids.count(i) > 1}
    assert not duplicates, (where, duplicates)
    for control in page.controls:
        labelled = (control["id"] and control["id"] in page.label_for) or control["aria-label"]
        assert labelled, (where, "unlabelled control", control)
    for attribute, ref in page.references:
        assert ref in page.ids, (where, attribute, ref)
    for form in page.forms:
        if form["method"] == "post":
            assert form["csrf"], (where, "POST form without CSRF token", form["action"])
    return page


TOKEN = "tok"


def anonymous(fake: FakeGateway) -> None:
    fake.on("GET", f"/api/accounts/activation/{TOKEN}", body={
        "status": "valid", "email": "p@x.test", "family_name": "CASSEREAU",
        "guardians": GUARDIANS, "children": CHILDREN, "expires_at": "2026-12-01T08:00:00Z"})
    fake.on("GET", "/api/accounts/activation/vieux", 410,
            {**problem(410, "Ce lien a expiré."), "status": "expired"})
    fake.on("GET", "/api/accounts/activation/servi", 410,
            {**problem(410, "Ce lien a déjà servi."), "status": "used"})
    fake.on("GET", "/api/accounts/password-reset/r1", body={"status": "valid",
                                                          "email": "p@x.test"})
    fake.on("GET", "/api/accounts/password-reset/vieux", 410,
            {**problem(410, "Lien expiré."), "status": "expired"})
    fake.on("POST", "/api/accounts/password-reset", 202, {})
    fake.on("POST", "/api/accounts/activation/renew", 202, {})
    fake.on("POST", "/api/accounts/activation", 422, problem(
        422, "Invalide.", {"password": ["Ce mot de passe est trop courant."]}))
    fake.on("GET", "/api/notifications/dev/mailbox", body={"items": [
        {"id": "m1", "from": "a@b.c", "to": "p@x.test", "subject": "Activez votre compte",
         "date": "2026-11-20T10:00:00Z", "text": "Bonjour", "html": "<p>Bonjour</p>"}],
        "next": None})
    fake.on("GET", "/api/notifications/dev/mailbox/m1", body={
        "id": "m1", "from": "a@b.c", "to": "p@x.test", "subject": "Activez votre compte",
        "date": "2026-11-20T10:00:00Z", "text": "Bonjour", "html": "<p>Bonjour</p>"})


ANONYMOUS_GET = ["/", "/connexion", "/connexion?suivant=/profil", "/mot-de-passe/oublie",
                 f"/activation/{TOKEN}", "/activation/vieux", "/activation/servi",
                 "/mot-de-passe/reinitialiser/r1", "/mot-de-passe/reinitialiser/vieux",
                 "/activation/inconnu", "/mot-de-passe/reinitialiser/inconnu",
                 "/nulle-part", "/dev/mail", "/dev/mail/m1"]
PARENT_GET = ["/", "/profil", "/profil/responsables/g1", "/profil/mot-de-passe",
              "/profil/communes", "/agent/familles"]
AGENT_GET = ["/", "/profil", "/profil/mot-de-passe", "/agent/familles",
             "/agent/familles?q=mar&suite=c2", "/agent/familles/nouvelle",
             "/agent/familles/f9", "/agent/actualites"]


@pytest.fixture
def fake() -> FakeGateway:
    fake = FakeGateway()
    anonymous(fake)
    return fake


@pytest.mark.parametrize("path", ANONYMOUS_GET)
def test_anonymous_pages(fake, path):
    response = build(fake).test_client().get(path, headers={"Accept": "text/html"})
    assert response.status_code in (200, 404, 410)
    check(response.get_data(as_text=True), path)


@pytest.mark.parametrize("path", PARENT_GET)
def test_parent_pages(fake, path):
    fake.parent()
    client = build(fake).test_client()
    client.set_cookie("portail_session", "s")
    response = client.get(path, headers={"Accept": "text/html"})
    assert response.status_code in (200, 403)
    page = check(response.get_data(as_text=True), path)
    assert any(c["id"] == "commune-choisie" for c in page.controls)  # the switcher


@pytest.mark.parametrize("path", AGENT_GET)
def test_agent_pages(fake, path):
    fake.agent()
    fake.on("GET", "/api/accounts/communes/jolieville/families", body=FAMILIES)
    fake.on("GET", "/api/accounts/communes/jolieville/families/f9", body=FAMILY_DETAIL)
    fake.on("GET", "/api/accounts/communes/jolieville/news", body=NEWS)
    client = build(fake).test_client()
    client.set_cookie("portail_session", "s")
    response = client.get(path)
    assert response.status_code == 200
    check(response.get_data(as_text=True), path)


REFUSED = [
    # (who, path, data): forms sent back with errors must stay just as accessible.
    (None, "/connexion", {"email": "pas-une-adresse", "password": ""}),
    (None, "/mot-de-passe/oublie", {"email": ""}),
    (None, "/mot-de-passe/oublie", {"email": "a@b.fr"}),  # the confirmation page
    (None, f"/activation/{TOKEN}", {"password": "une phrase assez longue",
                                    "confirmation": "une phrase assez longue"}),
    (None, f"/activation/{TOKEN}", {"password": "court", "confirmation": "autre"}),
    (None, "/mot-de-passe/reinitialiser/r1", {"password": "x", "confirmation": "y"}),
    (ME, "/profil/responsables/g1", {"first_name": "", "email": "non"}),
    (ME, "/profil/mot-de-passe", {"current_password": "", "new_password": "court"}),
    (ME, "/profil/communes", {"commune": "Pas Un Slug", "family_code": ""}),
    (AGENT, "/agent/familles/nouvelle", {"family_name": "", "children-1-first_name": "A",
                                         "children-1-birth_date": "hier"}),
    (AGENT, "/agent/actualites", {"title": "", "body": ""}),
]


@pytest.mark.parametrize("who,path,data", REFUSED)
def test_refused_forms(fake, who, path, data):
    if who is ME:
        fake.parent()
    elif who is AGENT:
        fake.agent()
        fake.on("GET", "/api/accounts/communes/jolieville/news", body=NEWS)
    client = build(fake).test_client()
    if who is not None:
        client.set_cookie("portail_session", "s")
    token = csrf_token(client, path)
    response = client.post(path, data={**data, "csrf_token": token})
    html = response.get_data(as_text=True)
    page = check(html, f"POST {path}")
    if response.status_code == 422:
        assert page.title.startswith("Erreur — "), page.title
        assert 'role="alert"' in html
        assert 'aria-invalid="true"' in html or "<li>" in html


def test_the_checker_catches_an_unlabelled_field():
    bad = ('<html lang="fr"><head><title>X — Portail Famille</title></head><body><header>'
           '<nav></nav></header><main><h1>X</h1><form method="post"><input name="csrf_token"'
           ' type="hidden"><input id="a" name="a"></form></main><footer></footer></body>'
           "</html>")
    with pytest.raises(AssertionError, match="unlabelled"):
        check(bad, "bad")
