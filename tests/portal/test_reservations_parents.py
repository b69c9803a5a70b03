"""« Mes réservations »: the week and month views, the basket, a period, the checkout and the
return page, absences, the bookings and the waiting list."""

from __future__ import annotations

import json
import re

import pytest

from .reservations_support import (
    A_MERCREDI,
    ACTIVITIES_API,
    API,
    BASKET,
    BASKET_API,
    BASKET_ID,
    BOOKED,
    BOOKINGS_API,
    CANCELLATIONS_API,
    CHECKOUT_API,
    ITEMS_API,
    LINE_MERCREDI,
    LOISIRS,
    MERCREDI,
    OFFER_ID,
    PAYMENT_ID,
    PAYMENT_URL,
    REPAS,
    SOIR,
    WAITING_API,
    WEEK,
    calendar,
    calendar_api,
    checkout_answer,
    reservations_parent,
)
from .support import ME_ONE_COMMUNE, post_form, problem, text

WEEK_PAGE = f"/reservations?enfant=c1&semaine={WEEK}"
RETURN = f"/reservations/panier/retour?commune=jolieville&basket={BASKET_ID}"


@pytest.fixture
def parent(client, fake):
    reservations_parent(fake)
    client.set_cookie("portail_session", "s3cr3t")
    return client


def checkbox(page: str, name: str, value: str) -> str | None:
    match = re.search(rf'<input type="checkbox"[^>]*name="{name}" value="{re.escape(value)}"'
                      r'[^>]*>', page)
    return match.group(0) if match else None


def cell_of(page: str, activity_label: str, day_label: str) -> str:
    """The HTML of one cell of the week: the row of the activity, the column of the day."""
    row = page[page.index(f'<th scope="row">{activity_label}'):]
    row = row[:row.index("</tr>")]
    start = row.index(f'data-label="{day_label}"')
    return row[start:row.index("</td>", start)]


def added(fake, status: int = 201, **extra) -> None:
    body = {**BASKET, "added": ["2026-10-08"], "skipped": [], **extra}
    fake.on("POST", ITEMS_API, status, body)


# --- the week view -----------------------------------------------------------------------------


def test_week_view_shows_each_state_in_words_with_its_deadline(parent, fake):
    response = parent.get(WEEK_PAGE)
    page = text(response)
    assert response.status_code == 200
    assert "<title>Mes réservations — Portail Famille</title>" in page
    assert fake.last_query(calendar_api("c1")) == {"from": [WEEK], "to": ["2026-10-11"]}
    assert "Léa — semaine du lundi 5 octobre au vendredi 9 octobre 2026" in page
    # One column per day from Monday to Friday: the closed weekend is left out.
    head = page[page.index("<thead>"):page.index("</thead>")]
    assert [h for h in re.findall(r'<th scope="col">([^<]+)</th>', head)] == [
        "Activité", "lundi 5 octobre", "mardi 6 octobre", "mercredi 7 octobre",
        "jeudi 8 octobre", "vendredi 9 octobre"]
    repas, soir = "Repas (restauration scolaire)", "Accueil périscolaire du soir"
    loisirs = "Centre de loisirs du mercredi"
    expected = [(repas, "lundi 5 octobre", "booked", "Réservé"),
                (repas, "mardi 6 octobre", "present", "Présent"),
                (repas, "mercredi 7 octobre", "closed", "Fermé"),
                (repas, "jeudi 8 octobre", "available", "Disponible"),
                (soir, "lundi 5 octobre", "pending", "En attente de paiement"),
                (soir, "mardi 6 octobre", "cancelled", "Annulé"),
                (soir, "jeudi 8 octobre", "absent", "Absent"),
                (soir, "vendredi 9 octobre", "excused", "Excusé"),
                (loisirs, "mercredi 7 octobre", "full", "Complet")]
    for activity, day, css, label in expected:
        cell = cell_of(page, activity, day)
        assert f'<span class="resa-state resa-state--{css}">{label}</span>' in cell, (
            activity, day)
    assert "jusqu'au mercredi 7 octobre à 9 h" in cell_of(page, repas, "jeudi 8 octobre")
    assert ("annulable jusqu'au dimanche 4 octobre à 9 h"
            in cell_of(page, repas, "lundi 5 octobre"))
    assert "à payer avant le lundi 5 octobre à 10 h 30" in cell_of(page, soir, "lundi 5 octobre")
    assert "pas d'activité le mercredi" in cell_of(page, repas, "mercredi 7 octobre")
    assert "4,10\u00a0€ le jour" in page and "Facturé en fin de mois" in page


def test_week_view_has_a_box_for_each_day_that_can_change(parent, fake):
    page = text(parent.get(WEEK_PAGE))
    assert checkbox(page, "jour", f"{REPAS}|2026-10-08")
    assert checkbox(page, "jour", f"{REPAS}|2026-10-09")
    assert checkbox(page, "jour", f"{SOIR}|2026-10-06")  # cancelled: can be booked again
    assert checkbox(page, "jour", f"{MERCREDI}|2026-10-07")  # full: the waiting list
    assert checkbox(page, "annuler", BOOKED)
    assert len(re.findall(r'type="checkbox"', page)) == 5  # nothing for the other days
    assert f'<label for="r-{MERCREDI}-2026-10-07">Liste d\'attente' in page
    assert (f'<label for="a-{BOOKED}">Annuler<span class="visually-hidden"> : Repas '
            "(restauration scolaire), lundi 5 octobre 2026</span></label>") in page
    assert "Ajouter au panier" in page and "Signaler une absence" in page
    assert 'formaction="/reservations/absence"' in page
    assert '<label class="field__label" for="motif">' in page
    # The basket is summed up, and the previous and next weeks are one link away.
    assert "Votre panier : 2 lignes, 22,20\u00a0€." in page
    assert 'href="/reservations?enfant=c1&semaine=2026-09-28">Semaine précédente' in page
    assert 'href="/reservations?enfant=c1&semaine=2026-10-12">Semaine suivante' in page


def test_days_already_in_the_basket_say_so_without_a_box(parent, fake):
    fake.on("GET", BASKET_API, body={**BASKET, "items": [
        {**BASKET["items"][0], "dates": ["2026-10-08"]}]})
    page = text(parent.get(WEEK_PAGE))
    cell = cell_of(page, "Repas (restauration scolaire)", "jeudi 8 octobre")
    assert "Dans votre panier" in cell and "checkbox" not in cell
    assert checkbox(page, "jour", f"{REPAS}|2026-10-09")


def test_a_service_and_a_site_ask_for_each_of_their_activities(parent, fake):
    fake.on("GET", calendar_api("c2"), body=calendar("c2", "Tom", activities=[A_MERCREDI]))
    response = parent.get(f"/reservations?enfant=c2&service={LOISIRS}&semaine={WEEK}")
    page = text(response)
    assert response.status_code == 200
    assert fake.last_query(calendar_api("c2")) == {"from": [WEEK], "to": ["2026-10-11"],
                                                   "activity": [MERCREDI]}
    assert "Tom — semaine du lundi 5 octobre" in page
    assert '<th scope="row">Centre de loisirs du mercredi' in page
    assert '<th scope="row">Repas' not in page
    assert f'<option value="{LOISIRS}" selected>Centre de loisirs</option>' in page
    assert '<option value="c2" selected>Tom</option>' in page


def test_unknown_choices_fall_back_to_the_first_child_and_every_activity(parent, fake):
    page = text(parent.get(f"/reservations?enfant=x&service=y&site=z&semaine={WEEK}"))
    assert "Léa — semaine du" in page
    assert "activity" not in fake.last_query(calendar_api("c1"))


def test_a_date_in_the_week_shows_the_whole_week(parent, fake):
    parent.get("/reservations?enfant=c1&semaine=2026-10-08")
    assert fake.last_query(calendar_api("c1"))["from"] == [WEEK]


def test_month_view_is_a_compact_table_of_the_month(parent, fake):
    response = parent.get("/reservations?enfant=c1&vue=mois&mois=2026-10")
    page = text(response)
    assert response.status_code == 200
    assert fake.last_query(calendar_api("c1")) == {"from": ["2026-10-01"], "to": ["2026-10-31"]}
    assert "<caption>Calendrier de Léa, octobre 2026</caption>" in page
    assert '<th scope="row">lun. 5 oct.</th>' in page
    assert checkbox(page, "jour", f"{REPAS}|2026-10-08") and checkbox(page, "annuler", BOOKED)
    assert "jusqu'au mercredi 7 octobre" not in page  # compact: deadlines in the week view
    assert 'href="/reservations?enfant=c1&vue=mois&mois=2026-09">Mois précédent' in page
    assert 'href="/reservations?enfant=c1&vue=mois&mois=2026-11">Mois suivant' in page
    assert '<input type="hidden" name="vue" value="mois">' in page


def test_a_commune_without_reservations_says_so(parent, fake):
    fake.on("GET", ACTIVITIES_API, 404, problem(404, "Commune inconnue."))
    response = parent.get("/reservations")
    assert response.status_code == 200
    assert "ne propose pas les réservations en ligne" in text(response)


def test_an_account_without_household_has_no_reservations(agent, fake):
    assert agent.get("/reservations", headers={"Accept": "text/html"}).status_code == 404
    assert agent.get("/reservations/panier",
                     headers={"Accept": "text/html"}).status_code == 404


def test_anonymous_visitors_are_sent_to_the_login_form(client, fake):
    response = client.get("/reservations/panier")
    assert response.status_code == 303
    assert response.headers["Location"] == "/connexion?suivant=/reservations/panier"


# --- adding to the basket ----------------------------------------------------------------------


def test_ticked_days_go_to_the_basket_one_line_per_activity(parent, fake):
    added(fake)
    response = post_form(parent, "/reservations/ajouter", {
        "enfant": "c1", "semaine": WEEK, "jour": [f"{REPAS}|2026-10-09", f"{REPAS}|2026-10-08",
                                                  f"{MERCREDI}|2026-10-07"]},
        token_from=WEEK_PAGE)
    assert response.status_code == 303
    assert response.headers["Location"] == WEEK_PAGE
    bodies = [json.loads(r.body) for r in fake.calls("POST", ITEMS_API)]
    assert bodies == [
        {"child_id": "c1", "activity_id": REPAS, "dates": ["2026-10-08", "2026-10-09"]},
        {"child_id": "c1", "activity_id": MERCREDI, "dates": ["2026-10-07"]}]
    page = text(parent.get(response.headers["Location"]))
    assert "2 jours ajoutés au panier : validez le panier" in page


def test_a_refused_day_is_explained_and_stays_ticked(parent, fake):
    message = ("Léa ne peut pas être inscrite le jeudi 8 octobre 2026 (« Repas ») : la date "
               "limite était le mercredi 7 octobre 2026 à 09:00.")
    fake.on("POST", ITEMS_API, 422, problem(422, message, conflicts=[
        {"child_id": "c1", "activity_id": REPAS, "date": "2026-10-08", "rule": "deadline",
         "message": message}], dates=["2026-10-08"]))
    response = post_form(parent, "/reservations/ajouter", {
        "enfant": "c1", "semaine": WEEK, "jour": f"{REPAS}|2026-10-08"}, token_from=WEEK_PAGE)
    page = text(response)
    assert response.status_code == 422
    assert "<title>Erreur — Mes réservations — Portail Famille</title>" in page
    assert 'role="alert"' in page and message in page
    assert "checked" in checkbox(page, "jour", f"{REPAS}|2026-10-08")


def test_nothing_ticked_is_refused_without_calling_the_api(parent, fake):
    response = post_form(parent, "/reservations/ajouter", {"enfant": "c1", "semaine": WEEK},
                         token_from=WEEK_PAGE)
    assert response.status_code == 422
    assert "Cochez au moins un jour disponible" in text(response)
    assert not fake.calls("POST", ITEMS_API)


def test_posting_without_the_csrf_token_is_refused(parent, fake):
    response = parent.post("/reservations/ajouter", data={
        "enfant": "c1", "jour": f"{REPAS}|2026-10-08"}, headers={"Accept": "text/html"})
    assert response.status_code == 400
    assert "Le formulaire a expiré" in text(response)
    for path in ("/reservations/absence", "/reservations/panier/valider",
                 f"/reservations/attente/{OFFER_ID}/accepter"):
        assert parent.post(path, data={"annuler": BOOKED}).status_code == 400
    assert not [r for r in fake.seen if r.method != "GET"]


# --- absences -------------------------------------------------------------------------------------


def test_an_absence_cancels_the_ticked_days_and_says_what_is_refunded(parent, fake):
    fake.on("POST", CANCELLATIONS_API, body={
        "cancelled": [{"id": BOOKED}], "requests": [], "cancellations": [],
        "already_cancelled": [], "refund_due": "14.00"})
    response = post_form(parent, "/reservations/absence", {
        "enfant": "c1", "semaine": WEEK, "annuler": BOOKED, "motif": "  Angine  "},
        token_from=WEEK_PAGE)
    assert response.status_code == 303 and response.headers["Location"] == WEEK_PAGE
    assert fake.last_json("POST", CANCELLATIONS_API) == {"booking_ids": [BOOKED],
                                                         "reason": "Angine"}
    page = text(parent.get(WEEK_PAGE))
    assert "Absence enregistrée : 1 jour annulé." in page
    assert "14,00\u00a0€ vous seront rendus sous forme d'avoir" in page


def test_a_late_absence_becomes_a_request_to_the_town_hall(parent, fake):
    fake.on("POST", CANCELLATIONS_API, body={
        "cancelled": [], "cancellations": [], "already_cancelled": [], "refund_due": "0.00",
        "requests": [{"id": "r1", "child_first_name": "Léa",
                      "activity_label": "Accueil périscolaire du soir",
                      "dates": ["2026-10-05"], "status": "pending"}]})
    response = post_form(parent, "/reservations/absence", {"enfant": "c1", "annuler": BOOKED},
                         token_from=WEEK_PAGE)
    assert fake.last_json("POST", CANCELLATIONS_API)["reason"] is None
    page = text(parent.get(response.headers["Location"]))
    assert ("La date limite d'annulation est passée pour Léa (« Accueil périscolaire du soir "
            "», lundi 5 octobre 2026) : votre demande est transmise à la mairie") in page


def test_an_absence_after_the_deadline_is_refused_with_the_deadline(parent, fake):
    message = ("Léa le lundi 5 octobre 2026 (« Repas (restauration scolaire) ») : la date "
               "limite d'annulation était le dimanche 4 octobre 2026 à 09:00.")
    fake.on("POST", CANCELLATIONS_API, 409, problem(409, message, conflicts=[
        {"child_id": "c1", "activity_id": REPAS, "date": "2026-10-05", "rule": "deadline",
         "message": message, "deadline": "2026-10-04T09:00:00+02:00"}]))
    response = post_form(parent, "/reservations/absence", {
        "enfant": "c1", "semaine": WEEK, "annuler": BOOKED, "motif": "Angine"},
        token_from=WEEK_PAGE)
    page = text(response)
    assert response.status_code == 422
    assert message in page and "dimanche 4 octobre 2026 à 09:00" in page
    assert "checked" in checkbox(page, "annuler", BOOKED)
    assert ">Angine</textarea>" in page


def test_an_absence_needs_a_ticked_day(parent, fake):
    response = post_form(parent, "/reservations/absence", {"enfant": "c1"},
                         token_from=WEEK_PAGE)
    assert response.status_code == 422
    assert "Cochez au moins un jour réservé" in text(response)
    assert not fake.calls("POST", CANCELLATIONS_API)


# --- a period -------------------------------------------------------------------------------------


PERIOD = {"children": ["c1", "c2"], "activity": REPAS, "start": "2026-09-01",
          "end": "19/12/2026", "weekdays": ["1", "2", "4"]}


def test_a_period_for_two_children_posts_one_item_each(parent, fake):
    skipped = [{"date": "2026-11-11", "rule": "deadline",
                "message": "Tom : la date limite est passée pour le mercredi 11 novembre."}]
    fake.handle("POST", ITEMS_API, lambda req: (201, {
        **BASKET, "added": ["2026-09-01", "2026-09-03", "2026-12-17"],
        "skipped": skipped if json.loads(req.body)["child_id"] == "c2" else []}, {}))
    response = post_form(parent, "/reservations/periode", PERIOD)
    page = text(response)
    assert response.status_code == 200
    bodies = [json.loads(r.body) for r in fake.calls("POST", ITEMS_API)]
    period = {"from": "2026-09-01", "to": "2026-12-19", "weekdays": [1, 2, 4]}
    assert bodies == [{"child_id": "c1", "activity_id": REPAS, "period": period},
                      {"child_id": "c2", "activity_id": REPAS, "period": period}]
    assert "<strong>Léa</strong> : 3 jours ajoutés au panier" in page
    assert "du mardi 1er septembre 2026 au jeudi 17 décembre 2026" in page
    assert "Jours non retenus pour Tom" in page
    assert ("mercredi 11 novembre 2026 : Tom : la date limite est passée pour le mercredi "
            "11 novembre.") in page
    assert 'href="/reservations/panier">Voir le panier et le valider' in page


def test_a_period_form_with_mistakes_is_explained_field_by_field(parent, fake):
    response = post_form(parent, "/reservations/periode", {
        "activity": "", "start": "demain", "end": "2026-01-01"})
    page = text(response)
    assert response.status_code == 422
    assert page.count("Erreur — Réserver une période") == 1
    assert "Cochez au moins un enfant." in page
    assert "Choisissez une activité." in page
    assert "Date invalide (exemple : 05/10/2026)." in page
    assert "Cochez au moins un jour de la semaine." in page
    assert 'href="#children"' in page and 'id="children"' in page
    assert not fake.calls("POST", ITEMS_API)
    response = post_form(parent, "/reservations/periode", {
        **PERIOD, "start": "2026-12-19", "end": "2026-09-01"})
    assert "La fin doit suivre le début." in text(response)


def test_a_period_refused_for_one_child_names_the_child(parent, fake):
    def answer(req):
        if json.loads(req.body)["child_id"] == "c2":
            return 422, problem(422, "Aucun jour de cette période ne peut être réservé",
                                conflicts=[{"message": "Tom n'est pas inscrit au service "
                                            "Restauration scolaire pour 2026-2027."}]), {}
        return 201, {**BASKET, "added": ["2026-09-01"], "skipped": []}, {}
    fake.handle("POST", ITEMS_API, answer)
    page = text(post_form(parent, "/reservations/periode", PERIOD))
    assert "Tom n'est pas inscrit au service Restauration scolaire" in page
    assert "<strong>Léa</strong> : 1 jour ajouté au panier" in page


# --- the basket -----------------------------------------------------------------------------------


def test_the_basket_lists_lines_totals_and_what_is_paid_now(parent, fake):
    response = parent.get("/reservations/panier")
    page = text(response)
    assert response.status_code == 200
    assert "<title>Mon panier — Portail Famille</title>" in page
    assert "lun. 12 oct., mar. 13 oct." in page and "mer. 14 oct." in page
    assert "<strong>À payer maintenant</strong>" in page and "Facturé en fin de mois" in page
    assert re.search(r"<dt>À payer maintenant</dt><dd>14,00\xa0€</dd>", page)
    assert re.search(r"<dt>Facturé en fin de mois</dt><dd>8,20\xa0€</dd>", page)
    assert re.search(r'<dd class="resa-total">22,20\xa0€</dd>', page)
    assert "réservées pendant 60 minutes" in page
    assert f'action="/reservations/panier/lignes/{LINE_MERCREDI}/retirer"' in page
    assert f'<input type="hidden" name="panier" value="{BASKET_ID}">' in page
    assert '<button type="submit" class="button">Valider</button>' in page


def test_a_long_list_of_dates_folds_away(parent, fake):
    dates = [f"2026-10-{d:02d}" for d in (1, 2, 5, 6, 8, 9, 12, 13)]
    fake.on("GET", BASKET_API, body={**BASKET, "items": [
        {**BASKET["items"][0], "dates": dates, "count": 8}]})
    page = text(parent.get("/reservations/panier"))
    assert "<summary>8 jours, du jeu. 1er oct. au mar. 13 oct.</summary>" in page
    assert "<li>lundi 12 octobre 2026</li>" in page


def test_an_empty_basket_says_so(parent, fake):
    fake.on("GET", BASKET_API, body={"id": None, "status": "open", "items": [],
                                     "total": "0.00", "to_pay_now": "0.00",
                                     "to_invoice": "0.00", "hold_minutes": 60})
    page = text(parent.get("/reservations/panier"))
    assert "Votre panier est vide." in page and "Valider" not in page


def test_removing_a_line(parent, fake):
    fake.on("DELETE", f"{ITEMS_API}/{LINE_MERCREDI}", 204)
    response = post_form(parent, f"/reservations/panier/lignes/{LINE_MERCREDI}/retirer", {},
                         token_from="/reservations/panier")
    assert response.status_code == 303
    assert fake.calls("DELETE", f"{ITEMS_API}/{LINE_MERCREDI}")
    assert "La ligne a été retirée du panier." in text(parent.get("/reservations/panier"))


def test_checkout_of_monthly_days_shows_the_confirmed_bookings(parent, fake):
    fake.on("POST", CHECKOUT_API, body=checkout_answer())
    fake.on("GET", f"{API}/baskets/{BASKET_ID}", body={**checkout_answer(),
                                                        "basket_status": "confirmed"})
    response = post_form(parent, "/reservations/panier/valider", {"panier": BASKET_ID},
                         token_from="/reservations/panier")
    assert response.status_code == 303
    assert response.headers["Location"] == RETURN
    assert fake.last_json("POST", CHECKOUT_API) == {"basket_id": BASKET_ID}
    page = text(parent.get(RETURN))
    assert "<title>Réservations confirmées — Portail Famille</title>" in page
    assert "vos réservations sont confirmées" in page.lower()
    assert '<th scope="row">jeudi 8 octobre 2026</th>' in page
    assert "Repas (restauration scolaire)" in page


def test_checkout_with_prepaid_days_goes_to_the_payment_page(parent, fake):
    fake.on("POST", CHECKOUT_API, body=checkout_answer("payment_required"))
    response = post_form(parent, "/reservations/panier/valider", {"panier": BASKET_ID},
                         token_from="/reservations/panier")
    assert response.status_code == 303
    assert response.headers["Location"] == PAYMENT_URL


def test_checkout_refused_shows_each_conflict_in_french(parent, fake):
    first = ("Le centre de loisirs du mercredi 14 octobre 2026 est complet pour Tom (« Centre "
             "de loisirs du mercredi »).")
    second = ("Léa ne peut plus être inscrite le lundi 12 octobre 2026 : la date limite était "
              "le dimanche 11 octobre 2026 à 09:00.")
    fake.on("POST", CHECKOUT_API, 409, problem(
        409, "Votre panier ne peut pas être validé : …", conflicts=[
            {"child_id": "c2", "activity_id": MERCREDI, "date": "2026-10-14", "rule": "full",
             "message": first, "child_first_name": "Tom"},
            {"child_id": "c1", "activity_id": REPAS, "date": "2026-10-12", "rule": "deadline",
             "message": second, "deadline": "2026-10-11T09:00:00+02:00",
             "child_first_name": "Léa"}], dates=["2026-10-12", "2026-10-14"]))
    response = post_form(parent, "/reservations/panier/valider", {"panier": BASKET_ID},
                         token_from="/reservations/panier")
    page = text(response)
    assert response.status_code == 409
    assert "<title>Erreur — Mon panier — Portail Famille</title>" in page
    assert f"<li>{first}</li>" in page and f"<li>{second}</li>" in page
    assert "lun. 12 oct., mar. 13 oct." in page  # the basket is shown again


def test_checkout_while_payment_is_down_says_so_and_offers_to_retry(parent, fake):
    fake.on("POST", CHECKOUT_API, 503, problem(
        503, "Le paiement en ligne est momentanément indisponible.", basket_id=BASKET_ID))
    fake.on("GET", BASKET_API, body={"id": None, "status": "open", "items": [],
                                     "total": "0.00", "to_pay_now": "0.00",
                                     "to_invoice": "0.00", "hold_minutes": 60})
    response = post_form(parent, "/reservations/panier/valider",
                         {"panier": BASKET_ID, "minutes": "45"},
                         token_from="/reservations/panier")
    page = text(response)
    assert response.status_code == 503
    assert "Service momentanément perturbé" in page
    assert "le paiement en ligne ne répond pas pour le moment" in page
    assert "le restent pendant 45 minutes" in page
    assert "Réessayer la validation" in page
    assert f'<input type="hidden" name="panier" value="{BASKET_ID}">' in page
    assert "Votre panier est vide." not in page


def test_a_reload_of_the_validation_goes_back_to_the_basket(parent, fake):
    response = parent.get("/reservations/panier/valider")
    assert response.status_code == 303 and response.headers["Location"] == "/reservations/panier"


# --- back from the payment page -------------------------------------------------------------------


def record(basket_status: str, **changes) -> dict:
    status = "payment_required" if basket_status == "checked_out" else basket_status
    base = checkout_answer("payment_required") if basket_status == "checked_out" else (
        checkout_answer(amount="14.00", payment_id=PAYMENT_ID))
    return {**base, "status": status, "basket_status": basket_status, **changes}


@pytest.mark.parametrize("basket_status,title,sentence", [
    ("paid", "Réservations confirmées", "<strong>14,00\u00a0€</strong>\n  a été accepté"),
    ("confirmed", "Réservations confirmées", "réservations sont confirmées"),
    ("checked_out", "Paiement en cours de confirmation",
     "Votre banque n'a pas encore confirmé le paiement"),
    ("expired", "Délai de paiement dépassé",
     "les places qui vous étaient réservées ont été libérées"),
    ("failed", "Paiement non abouti", "Le paiement n'a pas abouti"),
    ("open", "Panier non validé", "Ce panier n'a pas encore été validé."),
])
def test_the_return_page_says_where_the_basket_is(parent, fake, basket_status, title,
                                                  sentence):
    fake.on("GET", f"{API}/baskets/{BASKET_ID}", body=record(basket_status))
    response = parent.get(RETURN)
    page = text(response)
    assert response.status_code == 200
    assert f"<title>{title} — Portail Famille</title>" in page
    assert sentence in page
    refresh = '<meta http-equiv="refresh" content="3; url='
    assert (refresh in page) == (basket_status == "checked_out")
    if basket_status == "checked_out":
        assert "essai=1" in page and f'href="{PAYMENT_URL}">Reprendre le paiement' in page
        assert "Les réservations en attente de paiement" in page
    if basket_status in ("expired", "failed"):
        assert 'role="alert"' in page and "Aucune somme n'a été prélevée." in page


def test_the_return_page_stops_refreshing_after_a_while(parent, fake):
    fake.on("GET", f"{API}/baskets/{BASKET_ID}", body=record("checked_out"))
    page = text(parent.get(RETURN + "&essai=10"))
    assert 'http-equiv="refresh"' not in page
    assert "Actualiser" in page


def test_the_return_page_reads_the_commune_it_names(parent, fake):
    fake.on("GET", "/api/reservations/communes/dammartin/baskets/b2",
            body=record("confirmed"))
    response = parent.get("/reservations/panier/retour?commune=dammartin&basket=b2")
    assert response.status_code == 200
    assert fake.calls("GET", "/api/reservations/communes/dammartin/baskets/b2")
    assert parent.get("/reservations/panier/retour?commune=ailleurs&basket=b2",
                      headers={"Accept": "text/html"}).status_code == 404
    assert parent.get("/reservations/panier/retour",
                      headers={"Accept": "text/html"}).status_code == 404


def test_the_return_page_can_find_the_basket_by_its_payment(parent, fake):
    fake.on("GET", f"{API}/payments/{PAYMENT_ID}/basket", body=record("paid"))
    page = text(parent.get(f"/reservations/panier/retour?commune=jolieville&payment={PAYMENT_ID}"))
    assert "Réservations confirmées" in page


# --- bookings and the waiting list ----------------------------------------------------------------


def test_bookings_list_states_refunds_and_the_waiting_list(parent, fake):
    response = parent.get("/reservations/reservations?enfant=c1&du=2026-10-01")
    page = text(response)
    assert response.status_code == 200
    assert fake.last_query(BOOKINGS_API) == {"from": ["2026-10-01"], "child_id": ["c1"]}
    assert fake.last_query(WAITING_API) == {"child_id": ["c1"]}
    assert "Réservations à partir du jeudi 1er octobre 2026" in page
    assert "3,20\u00a0€ (avoir)" in page
    assert "Demande d'annulation en cours" in page
    assert '<td data-label="État">Présent</td>' in page
    assert "Une place vous est proposée" in page
    assert "à accepter avant le mardi 6 octobre à 10 h" in page
    assert f'action="/reservations/attente/{OFFER_ID}/accepter"' in page
    assert "En attente (rang 3)" in page and "Se retirer de la liste" in page
    assert "suite=curseur-2" in page


def test_accepting_an_offered_place_pays_it_like_a_basket(parent, fake):
    fake.on("POST", f"{WAITING_API}/{OFFER_ID}/accept", body=checkout_answer("payment_required"))
    response = post_form(parent, f"/reservations/attente/{OFFER_ID}/accepter", {},
                         token_from="/reservations/reservations")
    assert response.status_code == 303 and response.headers["Location"] == PAYMENT_URL


def test_accepting_a_place_no_longer_offered_says_why(parent, fake):
    fake.on("POST", f"{WAITING_API}/{OFFER_ID}/accept", 409, problem(
        409, "La place proposée pour Tom n'est plus disponible."))
    response = post_form(parent, f"/reservations/attente/{OFFER_ID}/accepter",
                         {"suivant": WEEK_PAGE}, token_from="/reservations/reservations")
    assert response.headers["Location"] == WEEK_PAGE
    assert "La place proposée pour Tom n'est plus disponible." in text(parent.get(WEEK_PAGE))


def test_withdrawing_from_the_waiting_list(parent, fake):
    fake.on("DELETE", f"{WAITING_API}/{OFFER_ID}", 204)
    response = post_form(parent, f"/reservations/attente/{OFFER_ID}/retirer", {},
                         token_from="/reservations/reservations")
    assert response.headers["Location"] == "/reservations/reservations"
    assert fake.calls("DELETE", f"{WAITING_API}/{OFFER_ID}")


def test_the_menu_shows_my_reservations_only_where_the_commune_offers_them(client, fake):
    reservations_parent(fake)
    fake.on("GET", "/auth/me", body=ME_ONE_COMMUNE)
    client.set_cookie("portail_session", "s")
    menu = text(client.get("/"))
    assert 'href="/reservations">Mes réservations' in menu
    assert "/agent/pointage" not in menu
