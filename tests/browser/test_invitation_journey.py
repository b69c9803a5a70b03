"""The invitation-to-login journey as a person walks it, with axe on every page.

Agent creates a household → the e-mail arrives in the dev mailbox → the parent activates the
account from the link → is logged in → edits a phone number on the profile → a second commune's
agent registers the same household → the parent joins it with the family code → the commune
switcher shows both. Every page met is checked with axe: no serious or critical violation.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from axe_playwright_python.sync_playwright import Axe

from .support import log_in  # agents answer the second factor there

EMAIL = "famille.martin@exemple.test"
STRONG = "un jardin plein de tomates"
AXE = Axe()
REPORT: dict[str, dict] = {}


def check_accessibility(page, name: str) -> None:
    results = AXE.run(page)
    violations = results.response["violations"]
    REPORT[name] = {
        "url": page.url,
        "violations": {v["id"]: v["impact"] for v in violations},
        "passes": len(results.response["passes"]),
    }
    serious = [f"{v['id']} ({v['impact']}): {v['help']}" for v in violations
               if v["impact"] in ("serious", "critical")]
    assert not serious, f"{name} : {serious}"


@pytest.fixture(scope="module", autouse=True)
def axe_report():
    yield
    target = os.environ.get("PORTAIL_AXE_REPORT")
    if target:
        Path(target).write_text(json.dumps(REPORT, indent=2, ensure_ascii=False))


def create_household(page, base: str) -> None:
    page.goto(f"{base}/agent/familles/nouvelle")
    page.fill('[name="family_name"]', "MARTIN")
    page.fill('[name="email"]', EMAIL)
    page.fill('[name="address_line1"]', "3 rue des Lilas")
    page.fill('[name="address_postal_code"]', "77100")
    page.fill('[name="address_city"]', "JolieVille")
    page.fill('[name="guardians-0-first_name"]', "Claire")
    page.fill('[name="guardians-0-last_name"]', "MARTIN")
    page.fill('[name="guardians-0-email"]', EMAIL)
    page.fill('[name="guardians-0-phone"]', "06 12 34 56 78")
    page.check('[name="guardians-0-pays"]')
    page.fill('[name="children-0-first_name"]', "Jules")
    page.fill('[name="children-0-last_name"]', "MARTIN")
    page.fill('[name="children-0-birth_date"]', "2018-05-04")
    page.fill('[name="children-0-school"]', "École Jules Ferry")
    page.fill('[name="children-0-class_name"]', "CE2")


def test_invitation_to_login_journey(suite, new_page):
    base = suite.url

    # 1. The agent of JolieVille invites the MARTIN household.
    agent = new_page()
    log_in(agent, base, "agent@jolieville.test")
    check_accessibility(agent, "accueil (agent)")
    create_household(agent, base)
    check_accessibility(agent, "agent : nouvelle famille")
    agent.get_by_role("button", name=re.compile("Créer")).click()
    agent.get_by_text("Invitation envoyée").first.wait_for()
    check_accessibility(agent, "agent : fiche famille")

    # 2. The e-mail arrives; the parent opens the activation link.
    parent = new_page()
    parent.goto(f"{base}/dev/mail")
    check_accessibility(parent, "boîte de développement")
    link = None
    for _ in range(50):  # the mail goes through the bus and the sender thread
        parent.goto(f"{base}/dev/mail")
        row = parent.get_by_role("link", name=re.compile("Activez votre compte|activation",
                                                         re.IGNORECASE))
        if row.count():
            row.first.click()
            link = parent.locator('a[href*="/activation/"]').first.get_attribute("href")
            break
        parent.wait_for_timeout(200)
    assert link, "le courriel d'invitation n'est pas arrivé"
    check_accessibility(parent, "boîte de développement : message")
    parent.goto(link)
    parent.get_by_text("MARTIN").first.wait_for()
    parent.get_by_text("Jules").first.wait_for()
    check_accessibility(parent, "activation")

    # A common password is refused with a French message next to the field.
    parent.get_by_label("Mot de passe", exact=True).fill("jetaime123456")
    parent.get_by_label(re.compile("Confirm")).fill("jetaime123456")
    parent.get_by_role("button", name=re.compile("Activer")).click()
    parent.get_by_text(re.compile("trop courant")).first.wait_for()
    check_accessibility(parent, "activation : erreur")
    parent.get_by_label("Mot de passe", exact=True).fill(STRONG)
    parent.get_by_label(re.compile("Confirm")).fill(STRONG)
    parent.get_by_role("button", name=re.compile("Activer")).click()
    parent.wait_for_url(re.compile(f"{re.escape(base)}/(\\?.*)?$"))
    assert parent.get_by_role("button", name="Se déconnecter").count() == 1

    # 3. The used link says so.
    used = new_page()
    used.goto(link)
    used.get_by_text(re.compile("déjà été utilisé")).first.wait_for()
    check_accessibility(used, "lien déjà utilisé")

    # 4. Profile: change Claire's phone number.
    parent.goto(f"{base}/profil")
    check_accessibility(parent, "profil")
    parent.get_by_role("link", name=re.compile("Modifier")).first.click()
    check_accessibility(parent, "profil : responsable")
    parent.get_by_label("Téléphone", exact=True).fill("06 98 76 54 32")
    parent.get_by_role("button", name=re.compile("Enregistrer")).click()
    parent.get_by_text("06 98 76 54 32").first.wait_for()

    # 5. Dammartin's agent registers the same household: a family code is issued.
    other = new_page()
    log_in(other, base, "agent@dammartin.test")
    create_household(other, base)
    other.get_by_role("button", name=re.compile("Créer")).click()
    code = other.locator("dt:has-text('Code famille') + dd").first.inner_text().strip()
    assert re.fullmatch(r"[A-Z0-9]{8}", code), code

    # 6. The parent joins Dammartin with the code; the switcher shows both communes.
    parent.goto(f"{base}/profil/communes")
    check_accessibility(parent, "profil : communes")
    parent.get_by_label("Identifiant de la collectivité").fill("dammartin")
    parent.get_by_label("Code famille").fill(code)
    parent.get_by_role("button", name=re.compile("Adhérer")).click()
    parent.get_by_role("rowheader", name="Dammartin-sur-Tigeaux").wait_for()
    switcher = parent.get_by_label("Commune", exact=True)
    options = switcher.locator("option").all_inner_texts()
    assert sorted(options) == ["Dammartin-sur-Tigeaux", "JolieVille Test"]
    check_accessibility(parent, "accueil (parent, deux communes)")

    # 7. Logging out and in again with the chosen password works.
    parent.get_by_role("button", name="Se déconnecter").click()
    log_in(parent, base, EMAIL, STRONG)
    check_accessibility(parent, "accueil (parent)")


def test_public_pages_are_accessible(suite, new_page):
    page = new_page()
    for path, name in [("/", "accueil (anonyme)"), ("/connexion", "connexion"),
                       ("/mot-de-passe/oublie", "mot de passe oublié"),
                       ("/activation/inconnu-" + "x" * 30, "lien inconnu")]:
        page.goto(f"{suite.url}{path}")
        check_accessibility(page, name)
    page.goto(f"{suite.url}/connexion")
    page.get_by_label("Adresse e-mail").fill("parent@famille.test")
    page.get_by_label("Mot de passe", exact=True).fill("pas le bon mot de passe")
    page.get_by_role("button", name="Se connecter").click()
    page.get_by_text("Adresse e-mail ou mot de passe incorrect.").first.wait_for()
    check_accessibility(page, "connexion : erreur")
