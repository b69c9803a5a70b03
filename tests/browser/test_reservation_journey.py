"""« Mes réservations » as a parent and an agent walk it, with axe on every page.

The CASSEREAU parent, in JolieVille, books a week of canteen (REPAS, invoiced monthly) for Léa
and Hugo on the period page, and a leisure-centre Wednesday (MERCREDI, prepaid) for Léa in the
week view; the basket shows the total and what is paid now; « Valider » leads to the payment
simulator, « Payer » back to the return page where the bookings are confirmed; the week view
shows them booked. The parent cancels the Wednesday within the deadline and sees the refund
(the credit note on « Mes factures »). The agent records the register of the Monday (Léa
present, Hugo absent) and the parent's calendar shows it.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from portal.reservations_common import day_long
from services.reservations.domain.opening import public_holiday, school_holiday
from tests.browser.support import (
    check_accessibility,
    log_in,
    switch_commune,
    write_report,
)

PARENT, AGENT = "parent@famille.test", "agent@jolieville.test"
COMMUNE, SCHOOL = "JolieVille Test", "École Jules Ferry"
REPAS, MERCREDI = "Repas (restauration scolaire)", "Centre de loisirs du mercredi"
NBSP = "\u00a0"
BUS_SECONDS = 45  # what travels over the bus (payment confirmed, credit note issued)


@pytest.fixture(scope="module", autouse=True)
def axe_report():
    yield
    write_report()


def euros(text: str) -> str:
    return text.replace(" ", NBSP) if text.endswith(" €") else text


def school_week() -> date:
    """The first Monday at least eight days ahead whose week is all school days (zone C): the
    canteen and the Wednesday can be booked and cancelled under every deadline of the seed."""
    today = datetime.now(ZoneInfo("Europe/Paris")).date()
    monday = today + timedelta(days=8)
    monday += timedelta(days=(7 - monday.weekday()) % 7)
    while any(public_holiday(d) or school_holiday(d, "C")
              for d in (monday + timedelta(days=n) for n in range(5))):
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
    """The return page reloads itself while the payment is being confirmed; once it stops,
    the person reloads it. A reload (not a click on « Actualiser ») cannot race with the
    page's own refresh: the link may vanish between finding it and clicking it."""
    if page.locator('meta[http-equiv="refresh"]').count() == 0:
        page.reload()


def cell(page, activity: str, day: date):
    """The state shown in the week view for ``activity`` on ``day``."""
    row = page.locator("table.resa-grid tbody tr").filter(
        has=page.get_by_role("rowheader", name=re.compile("^" + re.escape(activity))))
    return row.locator(f'td[data-label="{day_long(day, year=False)}"]')


def state(page, activity: str, day: date) -> str:
    return cell(page, activity, day).locator(".resa-state").inner_text().strip()


def show_week(page, child: str, monday: date) -> None:
    """The calendar of ``child`` for the week of ``monday``, with the page's own controls."""
    choose(page.get_by_label("Enfant", exact=True), child)
    with page.expect_navigation():
        page.get_by_role("button", name="Afficher").click()
    title = re.compile(re.escape(f"{child} — semaine du {day_long(monday, year=False)}"))
    heading = page.locator("h2#calendrier")
    for _ in range(60):
        if title.search(heading.inner_text()):
            return
        with page.expect_navigation():
            page.get_by_role("link", name="Semaine suivante").click()
    raise AssertionError(f"semaine du {monday} introuvable : {heading.inner_text()}")


def totals(page) -> dict[str, str]:
    items = page.locator("dl.resa-totals")
    terms = [t.strip() for t in items.locator("dt").all_inner_texts()]
    values = [v.strip() for v in items.locator("dd").all_inner_texts()]
    return dict(zip(terms, values, strict=True))


def test_book_pay_cancel_and_attend_a_week(suite, new_page):
    base = suite.url
    monday = school_week()
    wednesday = monday + timedelta(days=2)
    canteen = [monday + timedelta(days=n) for n in (0, 1, 3, 4)]  # no school on Wednesday

    parent = new_page()
    log_in(parent, base, PARENT)
    switch_commune(parent, COMMUNE)
    parent.get_by_role("navigation", name="Menu principal").get_by_role(
        "link", name="Mes réservations").click()
    parent.get_by_role("heading", name=re.compile("Mes réservations")).wait_for()
    check_accessibility(parent, "mes réservations : calendrier")

    # 1. The canteen, Monday to Friday of the week, for both children at once.
    parent.get_by_role("link", name="Réserver une période").first.click()
    parent.get_by_role("heading", name=re.compile("Réserver une période")).wait_for()
    check_accessibility(parent, "réserver une période")
    children = parent.get_by_role("group", name="Enfants")
    children.get_by_label("Léa").check()
    children.get_by_label("Hugo").check()
    choose(parent.get_by_label("Activité", exact=True), REPAS)
    parent.get_by_label("Du", exact=True).fill(monday.isoformat())
    parent.get_by_label("Au", exact=True).fill((monday + timedelta(days=4)).isoformat())
    weekdays = parent.get_by_role("group", name="Jours de la semaine")
    for name in ("Lundi", "Mardi", "Mercredi", "Jeudi", "Vendredi"):
        weekdays.get_by_label(name, exact=True).check()
    parent.get_by_role("button", name="Ajouter au panier").click()
    added = parent.get_by_role("status").filter(has_text="Ajouté au panier")
    added.wait_for()
    summary = added.inner_text()
    for child in ("Léa", "Hugo"):
        assert re.search(f"{child} : 4 jours ajoutés au panier", summary), summary
    check_accessibility(parent, "réserver une période : ajouté au panier")

    # 2. The leisure-centre Wednesday for Léa, ticked in her week view.
    parent.get_by_role("link", name="Calendrier").click()
    show_week(parent, "Léa", monday)
    for day in canteen:
        assert "Dans votre panier" in cell(parent, REPAS, day).inner_text(), day
    assert state(parent, MERCREDI, wednesday) == "Disponible"
    parent.get_by_label(f"Réserver : {MERCREDI}, {day_long(wednesday)}", exact=True).check()
    parent.get_by_role("button", name="Ajouter au panier").click()
    parent.get_by_text("1 jour ajouté au panier").wait_for()
    assert "Dans votre panier" in cell(parent, MERCREDI, wednesday).inner_text()
    check_accessibility(parent, "mes réservations : semaine de Léa")

    # 3. The basket: three lines, what is paid now and what is invoiced at the end of the month.
    parent.get_by_role("link", name="Voir le panier et le valider").click()
    parent.get_by_role("heading", name=re.compile("Mon panier")).wait_for()
    rows = parent.locator("table tbody tr")
    assert rows.count() == 3, rows.all_inner_texts()
    wednesday_line = rows.filter(has_text=MERCREDI)
    assert "Léa" in wednesday_line.inner_text()
    assert "À payer maintenant" in wednesday_line.inner_text()
    for child in ("Léa", "Hugo"):
        line = rows.filter(has=parent.get_by_role("rowheader", name=child)).filter(
            has_text=REPAS)
        assert "Facturé en fin de mois" in line.inner_text(), child
        assert euros("16,40 €") in line.inner_text(), line.inner_text()
    assert totals(parent) == {"À payer maintenant": euros("14,00 €"),
                              "Facturé en fin de mois": euros("32,80 €"),
                              "Total": euros("46,80 €")}, totals(parent)
    check_accessibility(parent, "mon panier")

    # 4. Validate: off to the payment simulator, pay, back to the portal.
    parent.get_by_role("button", name="Valider", exact=True).click()
    parent.wait_for_url(re.compile(r"/payments/simulator/"))
    assert re.search(r"14,00", parent.locator(".amount").inner_text())
    check_accessibility(parent, "paiement simulé")
    parent.get_by_role("button", name="Payer", exact=True).click()
    parent.wait_for_url(re.compile(r"/reservations/panier/retour"))
    heading = parent.locator("h1")
    until(parent, lambda: heading.inner_text().strip() == "Réservations confirmées",
          "le paiement confirme les réservations", lambda: refresh_return_page(parent))
    confirmed = parent.get_by_role("table").filter(has_text="Les réservations confirmées")
    booked = confirmed.locator("tbody tr")
    assert booked.count() == 9, booked.all_inner_texts()
    assert all("Réservé" in text for text in booked.all_inner_texts()), \
        booked.all_inner_texts()
    assert re.search(r"paiement de\s+14,00", parent.get_by_role("status").inner_text())
    check_accessibility(parent, "panier validé : réservations confirmées")

    # 5. The week view shows the days booked, for each child.
    parent.get_by_role("link", name="Retour au calendrier").click()
    show_week(parent, "Léa", monday)
    for day in canteen:
        assert state(parent, REPAS, day) == "Réservé", day
    assert state(parent, MERCREDI, wednesday) == "Réservé"
    check_accessibility(parent, "mes réservations : semaine réservée")
    show_week(parent, "Hugo", monday)
    for day in canteen:
        assert state(parent, REPAS, day) == "Réservé", day

    # 6. Léa will not go on Wednesday: cancelled within the deadline, refunded.
    show_week(parent, "Léa", monday)
    parent.get_by_label(f"Annuler : {MERCREDI}, {day_long(wednesday)}", exact=True).check()
    parent.get_by_label("Motif de l'absence (facultatif)").fill("Rendez-vous chez le médecin.")
    parent.get_by_role("button", name="Signaler une absence").click()
    flash = parent.get_by_text(re.compile("Absence enregistrée : 1 jour annulé"))
    flash.wait_for()
    assert euros("14,00 €") + " vous seront rendus sous forme d'avoir" in flash.inner_text()
    assert state(parent, MERCREDI, wednesday) == "Annulé"
    assert state(parent, REPAS, monday) == "Réservé"
    check_accessibility(parent, "mes réservations : absence signalée")

    parent.get_by_role("link", name="Réservations et liste d'attente").click()
    parent.get_by_role("heading", name=re.compile("Réservations à partir du")).wait_for()
    cancelled = parent.locator("table tbody tr").filter(has_text=MERCREDI).filter(
        has_text=day_long(wednesday))
    assert "Annulé" in cancelled.inner_text(), cancelled.inner_text()
    assert euros("14,00 €") + " (avoir)" in cancelled.inner_text(), cancelled.inner_text()
    check_accessibility(parent, "réservations et liste d'attente")

    # The credit note is issued by billing (over the bus) and listed on « Mes factures ».
    parent.get_by_role("navigation", name="Menu principal").get_by_role(
        "link", name="Mes factures").click()
    notes = parent.locator("section", has=parent.locator("h2#avoirs")).locator("tbody tr")
    note = notes.filter(has_text=f"Annulation : {MERCREDI} — Léa, {wednesday:%d/%m/%Y}")
    until(parent, lambda: note.count() == 1, "l'avoir de l'annulation du mercredi")
    assert note.locator('td[data-label="Montant"]').inner_text().strip() == euros("14,00 €")
    check_accessibility(parent, "mes factures : avoir")

    # 7. The agent records Monday's register: Léa present, Hugo absent.
    agent = new_page()
    log_in(agent, base, AGENT)
    agent.get_by_role("navigation", name="Menu principal").get_by_role(
        "link", name="Pointage").click()
    agent.get_by_role("heading", name=re.compile("Pointage")).first.wait_for()
    check_accessibility(agent, "agent : pointage")
    choose(agent.get_by_label("Site", exact=True), SCHOOL)
    agent.get_by_label("Jour", exact=True).fill(monday.isoformat())
    agent.get_by_role("button", name="Afficher").click()
    agent.get_by_role("heading", name=f"{SCHOOL} — {day_long(monday)}").wait_for()
    register = agent.get_by_role("table").filter(
        has=agent.locator("caption", has_text=f"{REPAS} — 2 enfants"))
    register.get_by_role("group", name=f"Pointage de Léa CASSEREAU, {REPAS}").get_by_label(
        "Présent").check()
    register.get_by_role("group", name=f"Pointage de Hugo CASSEREAU, {REPAS}").get_by_label(
        "Absent").check()
    check_accessibility(agent, "agent : pointage du jour")
    agent.get_by_role("button", name="Enregistrer", exact=True).click()
    agent.get_by_text(f"Pointage du {day_long(monday)} enregistré : 2 enfants pointés.").wait_for()
    counts = agent.get_by_role("table").filter(has_text="Effectifs du jour").locator(
        "tbody tr").filter(has=agent.get_by_role("rowheader", name=REPAS))
    assert counts.locator('td[data-label="Présents"]').inner_text().strip() == "1"
    assert counts.locator('td[data-label="Absents"]').inner_text().strip() == "1"
    check_accessibility(agent, "agent : pointage enregistré")

    # 8. The parent's calendar shows it.
    parent.get_by_role("navigation", name="Menu principal").get_by_role(
        "link", name="Mes réservations").click()
    show_week(parent, "Léa", monday)
    assert state(parent, REPAS, monday) == "Présent"
    assert state(parent, REPAS, canteen[1]) == "Réservé"
    check_accessibility(parent, "mes réservations : présence")
    show_week(parent, "Hugo", monday)
    assert state(parent, REPAS, monday) == "Absent"
    assert state(parent, REPAS, canteen[1]) == "Réservé"
    check_accessibility(parent, "mes réservations : absence pointée")
