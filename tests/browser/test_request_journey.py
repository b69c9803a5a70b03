"""« Mes demandes » as a parent and an agent walk it, with axe on every page.

The parent sends « Autorisation de récupération d'un enfant »: without its document the form
comes back with a clear message and nothing kept; with it the request is sent. The agent asks
a question, the parent answers with a message, the agent accepts; the parent sees each step and
receives the e-mails.
"""

from __future__ import annotations

import re

import pytest

from tests.browser.support import (
    check_accessibility,
    log_in,
    png_bytes,
    switch_commune,
    wait_for_mail,
    write_report,
)
from tests.e2e.support import eventually
from tests.e2e.support import login as api_login

CATEGORY = "Autorisation de récupération d'un enfant"


@pytest.fixture(scope="module", autouse=True)
def axe_report():
    yield
    write_report()


def choose(select, text: str) -> None:
    """Select the option whose text contains ``text``."""
    select.select_option(select.locator("option", has_text=text).first.get_attribute("value"))


def fill_authorisation(page) -> None:
    choose(page.locator('select[name="child"]'), "Léa")
    page.fill('[name="person_name"]', "Jeanne DUPONT")
    page.fill('[name="relation"]', "grand-mère")
    page.fill('[name="phone"]', "06 11 22 33 44")
    page.fill('[name="from"]', "2026-12-01")


def test_a_request_from_the_parent_to_the_agent_and_back(suite, new_page):
    base = suite.url
    parent = new_page()
    log_in(parent, base, "parent@famille.test")
    switch_commune(parent, "JolieVille Test")
    parent.goto(f"{base}/demandes")
    check_accessibility(parent, "mes demandes")
    parent.get_by_role("link", name=re.compile(CATEGORY)).first.click()
    check_accessibility(parent, "nouvelle demande")

    # Without the mandatory document: refused, with the message next to the file input.
    fill_authorisation(parent)
    parent.get_by_role("button", name="Envoyer la demande").click()
    parent.get_by_text("Ce document est obligatoire.").first.wait_for()
    assert parent.locator('[name="person_name"]').input_value() == "Jeanne DUPONT"
    check_accessibility(parent, "nouvelle demande : erreurs")
    parent.goto(f"{base}/demandes")
    assert parent.get_by_text("Jeanne DUPONT").count() == 0  # nothing was kept

    # With it: sent.
    parent.get_by_role("link", name=re.compile(CATEGORY)).first.click()
    fill_authorisation(parent)
    parent.locator('input[type="file"][name="identity_document"]').set_input_files(
        {"name": "carte-identite.png", "mimeType": "image/png", "buffer": png_bytes()})
    parent.get_by_role("button", name="Envoyer la demande").click()
    parent.wait_for_url(re.compile(r"/demandes/[0-9a-f-]{36}"))
    request_url = parent.url
    reference = re.search(r"D\d{4}-[A-Z0-9]+", parent.locator("h1").inner_text()).group(0)
    parent.get_by_text("nouvelle").first.wait_for()
    check_accessibility(parent, "demande envoyée")
    wait_for_mail(parent, base, "demande")

    # The agent asks a question.
    agent = new_page()
    log_in(agent, base, "agent@jolieville.test")
    agent.goto(f"{base}/agent/demandes")
    check_accessibility(agent, "agent : demandes")
    agent.get_by_role("link", name=reference).click()
    check_accessibility(agent, "agent : demande")
    question = agent.locator("form", has=agent.get_by_role("button", name="Envoyer la question"))
    question.get_by_role("textbox").fill("Merci de préciser les horaires de sortie.")
    question.get_by_role("button", name="Envoyer la question").click()
    agent.get_by_text(re.compile("en attente")).first.wait_for()

    # The parent sees it, answers.
    parent.goto(request_url)
    parent.get_by_text("Merci de préciser les horaires de sortie.").first.wait_for()
    check_accessibility(parent, "demande : question de l'agent")
    reply = parent.locator("form[enctype='multipart/form-data']").last
    reply.get_by_role("textbox").first.fill("Le mardi et le jeudi à 16 h 30.")
    reply.get_by_role("button").last.click()
    parent.get_by_text("Le mardi et le jeudi à 16 h 30.").first.wait_for()

    # The agent accepts.
    agent.reload()
    status = agent.locator("form", has=agent.get_by_role("button", name="Changer le statut"))
    choose(status.get_by_label("Nouveau statut"), "accept")
    status.get_by_label("Message à la famille").fill("Autorisation enregistrée.")
    status.get_by_role("button", name="Changer le statut").click()
    agent.get_by_text(re.compile("acceptée")).first.wait_for()

    # The parent sees each step and received the e-mails.
    parent.goto(request_url)
    parent.get_by_text("Autorisation enregistrée.").first.wait_for()
    history = parent.locator("body").inner_text()
    for step in ("nouvelle", "en attente", "en cours", "acceptée"):
        assert step in history, step
    check_accessibility(parent, "demande acceptée")
    wait_for_mail(parent, base, "accept")


def test_an_accepted_absence_excuses_the_day_and_refunds_it(suite, new_page):
    """A paid Wednesday (booked through the API: the booking journey has its own test), then
    « Absence justifiée » in the portal, accepted by the agent: the week view says « Excusé »
    and « Mes factures » lists the credit note."""
    base = suite.url
    day = "2026-12-16"
    parent_api = api_login(base, "parent@famille.test")
    lea = next(c for c in parent_api.get(f"{base}/api/accounts/me/family").json()["children"]
               if c["first_name"] == "Léa")
    activities = eventually(lambda: parent_api.get(
        f"{base}/api/reservations/communes/jolieville/activities").json().get("items"))
    wednesday = next(a for a in activities if a["code"] == "MERCREDI")
    added = parent_api.post(f"{base}/api/reservations/communes/jolieville/basket/items",
                            json={"child_id": lea["id"], "activity_id": wednesday["id"],
                                  "dates": [day]})
    assert added.status_code == 201, added.text
    checkout = parent_api.post(f"{base}/api/reservations/communes/jolieville/basket/checkout",
                               json={}).json()

    parent = new_page()
    log_in(parent, base, "parent@famille.test")
    switch_commune(parent, "JolieVille Test")
    parent.goto(checkout["payment_url"])
    parent.get_by_role("button", name="Payer").click()
    parent.wait_for_url(re.compile("/reservations/panier/retour"))

    parent.goto(f"{base}/demandes")
    parent.get_by_role("link", name=re.compile("Absence justifiée")).first.click()
    choose(parent.locator('select[name="child"]'), "Léa")
    parent.fill('[name="from"]', day)
    parent.fill('[name="to"]', day)
    parent.get_by_role("radio", name="Maladie").check()
    check_accessibility(parent, "absence justifiée")
    parent.get_by_role("button", name="Envoyer la demande").click()
    parent.wait_for_url(re.compile(r"/demandes/[0-9a-f-]{36}"))
    reference = re.search(r"D\d{4}-[A-Z0-9]+", parent.locator("h1").inner_text()).group(0)

    agent = new_page()
    log_in(agent, base, "agent@jolieville.test")
    agent.goto(f"{base}/agent/demandes")
    agent.get_by_role("link", name=reference).click()
    for target in ("en cours", "accept"):
        status = agent.locator("form", has=agent.get_by_role("button", name="Changer le statut"))
        choose(status.get_by_label("Nouveau statut"), target)
        status.get_by_label("Message à la famille").fill("Absence justifiée, merci.")
        status.get_by_role("button", name="Changer le statut").click()
        agent.wait_for_load_state()
    agent.get_by_text(re.compile("acceptée")).first.wait_for()

    week = f"{base}/reservations?enfant={lea['id']}&semaine=2026-12-14"
    for _ in range(100):  # the acceptance travels over the bus to reservations
        parent.goto(week)
        if parent.get_by_text("Excusé").count():
            break
        parent.wait_for_timeout(200)
    assert parent.get_by_text("Excusé").count(), "le jour n'est pas excusé"
    check_accessibility(parent, "mes réservations : jour excusé")
    amount = wednesday["unit_price"].replace(".", ",")
    credits = parent.locator('section[aria-labelledby="avoirs"] table')
    for _ in range(100):  # and from reservations to billing
        parent.goto(f"{base}/factures")
        if credits.count() and amount in credits.inner_text():
            break
        parent.wait_for_timeout(200)
    assert credits.count() and amount in credits.inner_text(), "pas d'avoir"
    check_accessibility(parent, "mes factures : avoir")
