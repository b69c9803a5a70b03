"""« Mes factures » as a parent and an agent walk it, with axe on every page.

The CASSEREAU parent, in JolieVille, has one invoice to pay (134,90 €, from the seed). The
portal offers agents no page to create an invoice by hand, so the second one is the seed's paper
invoice, which the parent adds with « Je ne trouve pas ma facture » (its reference as the
commune's invoice list shows it, its amount 32,00 €). The parent ticks both, sees the total,
confirms, pays in the simulator and comes back to « Paiement accepté »: both are paid and the
receipt arrives by e-mail.

Then a basket: four canteen days (REPAS, invoiced at the end of the month) and a
leisure-centre Wednesday (MERCREDI, prepaid) for Léa, validated and paid in the simulator;
the bookings are confirmed. The Wednesday is cancelled within its deadline: a credit note of
14,00 € appears on « Mes factures », available since nothing is left to pay. The agent
prepares and validates the month's invoicing run (the commune bills booked days that have no
register, so no attendance is needed): the new invoice of 16,40 € uses the credit, 2,40 € are
left to pay, and the credit note is used.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from portal.filters import month_fr
from portal.reservations_common import day_long
from services.reservations.domain.opening import public_holiday, school_holiday
from tests.browser.support import (
    check_accessibility,
    log_in,
    switch_commune,
    wait_for_mail,
    write_report,
)

PARENT, AGENT = "parent@famille.test", "agent@jolieville.test"
COMMUNE = "JolieVille Test"
REPAS, MERCREDI = "Repas (restauration scolaire)", "Centre de loisirs du mercredi"
PAPER_PAYER, PAPER_AMOUNT = "M. ou Mme CASSEREAU", "32,00 €"  # services/billing/seed.py
SEEDED_OPEN = "134,90 €"
BUS_SECONDS = 45  # what travels over the bus (payment confirmed, credit note issued)


@pytest.fixture(scope="module", autouse=True)
def axe_report():
    yield
    write_report()


def flat(text: str) -> str:
    """Text as a person reads it: the portal's no-break spaces (``166,90 €``) as spaces."""
    return " ".join(text.replace("\u00a0", " ").replace("\u202f", " ").split())


def read(locator) -> str:
    return flat(locator.inner_text())


def school_week() -> date:
    """The Monday of the first week at least two weeks ahead that is all school days (zone C)
    within one month: every deadline of the seed is still open, and the canteen days fall in
    one invoicing period. On 2026-11-27: the week of Wednesday 16 December 2026."""
    today = datetime.now(ZoneInfo("Europe/Paris")).date()
    monday = today + timedelta(days=14)
    monday += timedelta(days=(7 - monday.weekday()) % 7)
    while (any(public_holiday(d) or school_holiday(d, "C")
               for d in (monday + timedelta(days=n) for n in range(5)))
           or (monday + timedelta(days=4)).month != monday.month):
        monday += timedelta(days=7)
    return monday


def choose(select, text: str) -> None:
    """Select the option whose text contains ``text``."""
    select.select_option(select.locator("option", has_text=text).first.get_attribute("value"))


def until(page, done, what: str, refresh=None, seconds: float = BUS_SECONDS) -> None:
    """Poll ``done()`` for at most ``seconds``, refreshing the page between tries (by
    ``refresh()``, else by reloading it)."""
    deadline = datetime.now() + timedelta(seconds=seconds)
    while not done():
        if datetime.now() > deadline:
            raise AssertionError(f"{what} : toujours pas au bout de {seconds} s ({page.url})")
        page.wait_for_timeout(500)
        if refresh is None:
            page.reload()
        else:
            refresh()


def refresh_return_page(page) -> None:
    """A return page reloads itself while the payment is being confirmed; once it stops, it
    is reloaded as a person would (a reload, unlike a click on « Actualiser », cannot race
    with the page's own refresh)."""
    page.wait_for_load_state()
    if page.locator('meta[http-equiv="refresh"]').count() == 0:
        page.reload()


def menu(page, name: str) -> None:
    page.get_by_role("navigation", name="Menu principal").get_by_role(
        "link", name=name, exact=True).click()
    page.wait_for_load_state()


def facts(page, selector: str = "dl.meta") -> dict[str, str]:
    """A definition list (``dt`` → ``dd``) as the page shows it."""
    items = page.locator(selector)
    terms = [flat(t) for t in items.locator("dt").all_inner_texts()]
    values = [flat(v) for v in items.locator("dd").all_inner_texts()]
    return dict(zip(terms, values, strict=True))


def credit_notes(page):
    """The rows of « Mes avoirs » on « Mes factures »."""
    return page.locator("section", has=page.locator("h2#avoirs")).locator("table tbody tr")


def invoice_row(page, reference: str):
    return page.locator("main table tbody tr").filter(
        has=page.get_by_role("rowheader", name=reference, exact=True))


def show_week(page, child: str, monday: date) -> None:
    """The calendar of ``child`` for the week of ``monday``, with the page's own controls."""
    choose(page.get_by_label("Enfant", exact=True), child)
    page.get_by_role("button", name="Afficher").click()
    page.wait_for_load_state()
    title = re.compile(re.escape(f"{child} — semaine du {day_long(monday, year=False)}"))
    heading = page.locator("h2#calendrier")
    for _ in range(60):
        if title.search(heading.inner_text()):
            return
        page.get_by_role("link", name="Semaine suivante").click()
        page.wait_for_load_state()
    raise AssertionError(f"semaine du {monday} introuvable : {heading.inner_text()}")


def state(page, activity: str, day: date) -> str:
    """The state the week view shows for ``activity`` on ``day``."""
    row = page.locator("table.resa-grid tbody tr").filter(
        has=page.get_by_role("rowheader", name=re.compile("^" + re.escape(activity))))
    return read(row.locator(f'td[data-label="{day_long(day, year=False)}"] .resa-state'))


def test_pay_two_invoices_then_a_basket_and_a_credit_note_used_by_the_next_invoice(
        suite, new_page):
    base = suite.url
    monday = school_week()
    wednesday = monday + timedelta(days=2)
    canteen = [monday + timedelta(days=n) for n in (0, 1, 3, 4)]  # no school on Wednesday
    period = f"{monday:%Y-%m}"
    month = month_fr(period)

    # 1. « Mes factures » : one invoice to pay, from the seed.
    parent = new_page()
    log_in(parent, base, PARENT)
    switch_commune(parent, COMMUNE)
    menu(parent, "Mes factures")
    parent.get_by_role("heading", name=re.compile("Mes factures")).wait_for()
    to_pay = parent.locator('form[aria-labelledby="liste"] table tbody tr')
    assert to_pay.count() == 1, to_pay.all_inner_texts()
    seeded = read(to_pay.first.get_by_role("rowheader"))
    assert SEEDED_OPEN in read(to_pay.first), read(to_pay.first)
    check_accessibility(parent, "mes factures")

    # 2. The paper invoice: the commune's list gives its reference (the parent has the paper).
    agent = new_page()
    log_in(agent, base, AGENT)
    menu(agent, "Facturation")
    agent.get_by_role("link", name="Voir toutes les factures de la commune").click()
    agent.get_by_role("heading", name=re.compile("Factures")).first.wait_for()
    paper_row = agent.locator("main table tbody tr").filter(has_text=PAPER_PAYER)
    assert paper_row.count() == 1, agent.locator("main table tbody tr").all_inner_texts()
    paper = read(paper_row.get_by_role("rowheader"))
    assert re.fullmatch(r"\d{4}-JOL-\d{6}", paper), paper
    assert PAPER_AMOUNT in read(paper_row), read(paper_row)
    check_accessibility(agent, "agent : factures de la commune")

    # 3. « Je ne trouve pas ma facture » : a wrong amount is refused without saying more, the
    #    right one attaches the invoice to the household.
    claim = parent.locator("section", has=parent.locator("h2#rattacher"))
    claim.get_by_label("Référence de la facture", exact=True).fill(paper.lower())
    claim.get_by_label("Montant de la facture", exact=True).fill("23,00")
    claim.get_by_role("button", name="Ajouter la facture").click()
    parent.get_by_role("alert").filter(
        has_text="Aucune facture ne correspond à cette référence et à ce montant").wait_for()
    assert to_pay.count() == 1
    check_accessibility(parent, "mes factures : facture introuvable")
    claim.get_by_label("Référence de la facture", exact=True).fill(paper)
    claim.get_by_label("Montant de la facture", exact=True).fill("32,00 €")
    claim.get_by_role("button", name="Ajouter la facture").click()
    parent.get_by_role("heading", name=f"Facture {paper}").wait_for()
    parent.get_by_role("status").filter(
        has_text=f"La facture {paper} a été ajoutée à vos factures.").wait_for()
    detail = facts(parent)
    assert detail["Montant total"] == PAPER_AMOUNT, detail
    assert detail["État"] == "À payer", detail
    check_accessibility(parent, "facture rattachée")

    # 4. Both invoices ticked, the total, « Payer les factures sélectionnées », confirm.
    parent.get_by_role("link", name="Retour à mes factures").click()
    parent.get_by_role("heading", name=re.compile("Mes factures")).wait_for()
    assert to_pay.count() == 2, to_pay.all_inner_texts()
    for reference in (seeded, paper):
        parent.get_by_label(f"Payer la facture {reference}", exact=True).check()
    assert "Total des factures payables en ligne sur cette page : 166,90 €" in read(
        parent.locator("main")), read(parent.locator("main"))
    check_accessibility(parent, "mes factures : deux factures sélectionnées")
    parent.get_by_role("button", name="Payer les factures sélectionnées").click()
    parent.get_by_role("heading", name="Paiement de vos factures").wait_for()
    chosen = parent.locator("main table tbody tr")
    assert sorted(read(r) for r in chosen.get_by_role("rowheader").all()) == sorted(
        [seeded, paper])
    assert read(parent.locator("main table tfoot")) == "Total à payer 166,90 €"
    check_accessibility(parent, "paiement de vos factures")

    # 5. The simulator: « Payer », back to « Paiement accepté ».
    parent.get_by_role("button", name="Payer 166,90 €").click()
    parent.wait_for_url(re.compile(r"/payments/simulator/"))
    assert read(parent.locator(".amount")) == "166,90 €"
    for reference in (seeded, paper):
        assert reference in read(parent.locator("main")), reference
    check_accessibility(parent, "paiement simulé : factures")
    parent.get_by_role("button", name="Payer", exact=True).click()
    parent.wait_for_url(re.compile(r"/factures/paiement/retour"))
    heading = parent.locator("h1")
    until(parent, lambda: heading.inner_text().strip() == "Paiement accepté",
          "le paiement des deux factures", lambda: refresh_return_page(parent))
    assert "votre paiement de 166,90 € a été accepté" in read(parent.get_by_role("status"))
    paid = parent.get_by_role("table", name="Factures payées par ce paiement")
    for reference in (seeded, paper):
        row = paid.locator("tbody tr").filter(has=parent.get_by_role("rowheader",
                                                                     name=reference))
        assert read(row).endswith("Payée"), read(row)
    check_accessibility(parent, "paiement accepté")

    # 6. Both under « Payées », nothing left to pay, and the receipt e-mail.
    parent.get_by_role("link", name="Voir mes factures payées").click()
    parent.get_by_role("heading", name="Factures payées").wait_for()
    for reference in (seeded, paper):
        assert invoice_row(parent, reference).count() == 1, reference
    check_accessibility(parent, "mes factures : payées")
    wait_for_mail(parent, base, r"^Paiement reçu : 166,90\s€$")
    parent.get_by_role("link", name="À payer", exact=True).click()
    parent.get_by_text("Aucune facture à payer.").wait_for()

    # 7. A basket: four canteen days and the Wednesday, for Léa, in her week view.
    menu(parent, "Mes réservations")
    parent.get_by_role("heading", name=re.compile("Mes réservations")).wait_for()
    show_week(parent, "Léa", monday)
    assert state(parent, MERCREDI, wednesday) == "Disponible"
    for day in canteen:
        parent.get_by_label(f"Réserver : {REPAS}, {day_long(day)}", exact=True).check()
    parent.get_by_label(f"Réserver : {MERCREDI}, {day_long(wednesday)}", exact=True).check()
    check_accessibility(parent, "mes réservations : semaine de Léa")
    parent.get_by_role("button", name="Ajouter au panier").click()
    parent.get_by_text("5 jours ajoutés au panier").wait_for()
    parent.get_by_role("link", name="Voir le panier et le valider").click()
    parent.get_by_role("heading", name=re.compile("Mon panier")).wait_for()
    lines = parent.locator("main table tbody tr")
    assert lines.count() == 2, lines.all_inner_texts()
    assert "À payer maintenant" in read(lines.filter(has_text=MERCREDI))
    assert "Facturé en fin de mois" in read(lines.filter(has_text=REPAS))
    assert facts(parent, "dl.resa-totals") == {"À payer maintenant": "14,00 €",
                                                "Facturé en fin de mois": "16,40 €",
                                                "Total": "30,40 €"}
    check_accessibility(parent, "mon panier")

    # 8. « Valider », the simulator, « Payer »: the bookings are confirmed.
    parent.get_by_role("button", name="Valider", exact=True).click()
    parent.wait_for_url(re.compile(r"/payments/simulator/"))
    assert read(parent.locator(".amount")) == "14,00 €"
    check_accessibility(parent, "paiement simulé : panier")
    parent.get_by_role("button", name="Payer", exact=True).click()
    parent.wait_for_url(re.compile(r"/reservations/panier/retour"))
    until(parent, lambda: heading.inner_text().strip() == "Réservations confirmées",
          "le paiement confirme les réservations", lambda: refresh_return_page(parent))
    booked = parent.get_by_role("table", name="Les réservations confirmées").locator("tbody tr")
    assert booked.count() == 5, booked.all_inner_texts()
    assert all("Réservé" in flat(t) for t in booked.all_inner_texts()), booked.all_inner_texts()
    check_accessibility(parent, "réservations confirmées")
    wait_for_mail(parent, base, r"^Paiement reçu : 14,00\s€$")

    # 9. The Wednesday cancelled within its deadline: refunded by a credit note, available
    #    (there is nothing left to pay for it to be used on).
    parent.get_by_role("link", name="Retour au calendrier").click()
    show_week(parent, "Léa", monday)
    assert state(parent, MERCREDI, wednesday) == "Réservé"
    parent.get_by_label(f"Annuler : {MERCREDI}, {day_long(wednesday)}", exact=True).check()
    parent.get_by_role("button", name="Signaler une absence").click()
    done = parent.get_by_role("status").filter(has_text="Absence enregistrée : 1 jour annulé")
    done.wait_for()
    assert "14,00 € vous seront rendus sous forme d'avoir" in read(done), read(done)
    assert state(parent, MERCREDI, wednesday) == "Annulé"
    assert all(state(parent, REPAS, day) == "Réservé" for day in canteen)
    check_accessibility(parent, "mes réservations : absence signalée")

    menu(parent, "Mes factures")
    notes = credit_notes(parent)
    until(parent, lambda: notes.count() == 1, "l'avoir de l'annulation")
    note = notes.first
    note_number = read(note.get_by_role("rowheader"))
    assert re.fullmatch(r"\d{4}-JOL-A\d{5}", note_number), note_number
    assert read(note.locator('td[data-label="Montant"]')) == "14,00 €"
    assert read(note.locator('td[data-label="Reste disponible"]')) == "14,00 €"
    assert read(note.locator('td[data-label="État"]')).startswith("Disponible")
    parent.get_by_text("Aucune facture à payer.").wait_for()
    check_accessibility(parent, "mes factures : avoir disponible")
    wait_for_mail(parent, base, rf"^Avoir {note_number} : 14,00\s€ en votre faveur$")

    # 10. The agent prepares the month's invoicing run, reviews it and validates it. The
    #     commune bills booked days without a register: no attendance is needed.
    menu(agent, "Facturation")
    agent.get_by_role("heading", name=re.compile("^Facturation")).first.wait_for()
    check_accessibility(agent, "agent : facturation")
    agent.get_by_label("Mois à facturer", exact=True).fill(period)
    agent.get_by_role("button", name="Préparer la facturation").click()
    agent.get_by_role("status").filter(
        has_text=f"Brouillon de la facturation de {month} préparé").wait_for()
    assert facts(agent)["Total"] == "16,40 €", facts(agent)
    household = agent.locator("main table tbody tr").filter(
        has=agent.get_by_role("rowheader", name="CASSEREAU"))
    assert "4 × 4,10 € = 16,40 €" in read(household), read(household)
    anomalies = agent.locator("main table tbody tr").filter(has_text="Réservation sans pointage")
    assert anomalies.count() == 4, anomalies.all_inner_texts()
    check_accessibility(agent, "agent : brouillon de facturation")
    agent.get_by_label(re.compile("^J'ai vérifié les totaux et les anomalies")).check()
    agent.get_by_role("button", name="Valider la facturation").click()
    agent.get_by_role("status").filter(
        has_text=f"La facturation de {month} est validée : 1 facture émise.").wait_for()
    assert "Validée" in read(agent.locator("h1"))
    check_accessibility(agent, "agent : facturation validée")

    # 11. The parent's new invoice: the credit note deducted, the rest to pay.
    menu(parent, "Mes factures")
    fresh = to_pay.filter(has_text=REPAS)
    until(parent, lambda: fresh.count() == 1, "la facture du mois")
    assert read(fresh.locator('td[data-label="Reste à payer"]')) == "2,40 € (sur 16,40 €)", \
        read(fresh)
    reference = read(fresh.get_by_role("rowheader"))
    note = credit_notes(parent).first
    assert read(note.locator('td[data-label="Reste disponible"]')) == "0,00 €"
    assert read(note.locator('td[data-label="État"]')) == "Utilisé"
    check_accessibility(parent, "mes factures : facture du mois")
    wait_for_mail(parent, base, rf"^Nouvelle facture {reference} : 16,40\s€$")
    fresh.get_by_role("link", name=re.compile("^Détail")).click()
    parent.get_by_role("heading", name=f"Facture {reference}").wait_for()
    detail = facts(parent)
    assert detail["Période"] == month, detail
    assert detail["Montant total"] == "16,40 €", detail
    assert detail["Avoirs déduits"] == "14,00 €", detail
    assert detail["Reste à payer"] == "2,40 €", detail
    assert detail["État"] == "Partiellement payée", detail
    assert parent.get_by_role("button", name="Payer cette facture en ligne").count() == 1
    check_accessibility(parent, "facture : avoir déduit")
