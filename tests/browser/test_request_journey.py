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
