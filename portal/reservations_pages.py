"""« Mes réservations » : a household's calendar (week and month), booking a period for several
children, the basket and its validation, the way back from the payment page, the bookings and
the waiting list, in the current commune.

Everything comes from the reservations API through the gateway (prefix
``/api/reservations/communes/{c}``); the children come from ``GET /api/accounts/me/family``.
The calendar is one form without JavaScript: a checkbox in each cell that can still be booked
or cancelled, "Ajouter au panier" posts the ticked free days (one basket line per activity),
"Signaler une absence" the ticked booked days (one cancellation). The API decides every rule
and explains each refusal in French (child, day, rule): those sentences are shown as they come.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for

from services.common.logging import get_logger

from .account import Commune, current_account, current_commune, login_required
from .client import GatewayError, call
from .formtools import apply_answer
from .reservations_common import (
    ATTENDANCE,
    NOT_OFFERED,
    PAYMENT_MODES,
    STATES,
    api_path,
    day_long,
    deadline_fr,
    euros_fr,
    has_amount,
    install_filters,
    monday_of,
    month_label,
    objects,
    parse_day,
    plural,
    refusal_messages,
    today,
    unique,
)
from .reservations_forms import PeriodForm, choices
from .security import safe_target

log = get_logger(__name__)

reservations = Blueprint("reservations", __name__, url_prefix="/reservations")
install_filters(reservations)

FAMILY = "/api/accounts/me/family"
MAX_ACTIVITIES = 8  # calendars asked for at once when a service is chosen
MAX_REASON = 2000
REFRESHES = 10  # the return page reloads itself at most this many times (3 s apart)
WEEK, MONTH = "semaine", "mois"
CHECKOUT_DOWN = (
    "Votre panier n'a pas pu être validé : le paiement en ligne ne répond pas pour le moment. "
    "Les places déjà retenues pour vous le restent pendant {minutes} minutes. Réessayez dans "
    "quelques instants : valider de nouveau ne réserve et ne fait payer qu'une fois.")
NOTHING_TO_BOOK = "Cochez au moins un jour disponible à ajouter au panier."
NOTHING_TO_CANCEL = "Cochez au moins un jour réservé pour signaler une absence."
STATE_CLASSES = {"closed": "closed", "available": "available", "full": "full",
                 "booked": "booked", "pending_payment": "pending", "cancelled": "cancelled",
                 "present": "present", "absent": "absent", "excused": "excused"}


# --- who and where ----------------------------------------------------------------------------


def _household_commune() -> Commune:
    """The commune whose reservations are shown; only a household books (404 otherwise)."""
    account = current_account()
    if account is None or not account.family_id:
        abort(404)
    commune = current_commune()
    if commune is None:
        abort(404)
    return commune


def _children() -> list[dict[str, Any]]:
    answer = call("GET", FAMILY)
    return [c for c in objects(answer.data.get("children")) if c.get("id")]


def _catalogue(commune: Commune) -> dict[str, Any] | None:
    """Services, sites and activities of the commune; None when it has no reservations."""
    answer = call("GET", api_path(commune, "activities"), accept=(403, 404))
    return answer.data if answer.ok else None


def _basket(commune: Commune) -> dict[str, Any] | None:
    try:
        answer = call("GET", api_path(commune, "basket"), accept=(403, 404))
    except GatewayError:
        return None
    return answer.data if answer.ok else None


# --- the calendar -----------------------------------------------------------------------------


@dataclass
class Span:
    """The days shown: a week (Monday to Sunday) or a month, and the links around it."""

    view: str
    start: date
    end: date

    @classmethod
    def from_args(cls, args) -> Span:
        if args.get("vue") == MONTH:
            first = _month_start(args.get("mois")) or today().replace(day=1)
            following = (first.replace(day=28) + timedelta(days=4)).replace(day=1)
            return cls(MONTH, first, following - timedelta(days=1))
        start = parse_day(args.get("semaine"))
        if start is None:
            now = today()
            # At the weekend, the coming week is the one to prepare.
            start = now + timedelta(days=2) if now.weekday() >= 5 else now
        start = monday_of(start)
        return cls(WEEK, start, start + timedelta(days=6))

    @property
    def param(self) -> dict[str, str]:
        if self.view == MONTH:
            return {"vue": MONTH, "mois": f"{self.start:%Y-%m}"}
        return {"semaine": self.start.isoformat()}

    def shifted(self, step: int) -> dict[str, str]:
        if self.view == MONTH:
            month = self.start.month - 1 + step
            first = date(self.start.year + month // 12, month % 12 + 1, 1)
            return {"vue": MONTH, "mois": f"{first:%Y-%m}"}
        return {"semaine": (self.start + timedelta(days=7 * step)).isoformat()}

    def current(self) -> dict[str, str]:
        if self.view == MONTH:
            return {"vue": MONTH, "mois": f"{today():%Y-%m}"}
        return {"semaine": monday_of(today()).isoformat()}

    @property
    def title(self) -> str:
        if self.view == MONTH:
            return month_label(self.start)
        friday = self.start + timedelta(days=4)
        return (f"semaine du {day_long(self.start, year=self.start.year != friday.year)} "
                f"au {day_long(friday)}")


def _month_start(value: str | None) -> date | None:
    return parse_day(f"{value}-01") if value and len(value) == 7 else None


@dataclass
class Cell:
    """One cell of the calendar, as the page shows it."""

    activity: dict[str, Any]
    day: date
    state: str
    label: str
    css: str
    reason: str | None
    deadline: str
    can_book: bool
    can_wait: bool
    can_cancel: bool
    cancel_mode: str | None
    booking_id: str | None
    in_basket: bool
    checked: bool
    offer_id: str | None = None
    offer_until: str = ""

    @property
    def key(self) -> str:
        return f"{self.activity.get('id')}|{self.day.isoformat()}"

    @property
    def dom_id(self) -> str:
        return f"{self.activity.get('id')}-{self.day.isoformat()}"


@dataclass
class Grid:
    """The activities (rows of a week, columns of a month) and the days, with their cells."""

    activities: list[dict[str, Any]] = field(default_factory=list)
    days: list[date] = field(default_factory=list)
    cells: dict[tuple[str, str], Cell] = field(default_factory=dict)

    def cell(self, activity: dict[str, Any], day: date) -> Cell | None:
        return self.cells.get((str(activity.get("id")), day.isoformat()))

    @property
    def bookable(self) -> bool:
        return any(c.can_book or c.can_wait for c in self.cells.values())

    @property
    def cancellable(self) -> bool:
        return any(c.can_cancel for c in self.cells.values())


def _grid(calendars: list[dict[str, Any]], span: Span, keep, in_basket: set[tuple[str, str]],
          checked: set[str]) -> Grid:
    grid = Grid()
    raw: dict[tuple[str, str], dict[str, Any]] = {}
    for calendar in calendars:
        for activity in objects(calendar.get("activities")):
            if activity.get("id") and keep(activity) and all(
                    a["id"] != activity["id"] for a in grid.activities):
                grid.activities.append(activity)
        for day in objects(calendar.get("days")):
            for cell in objects(day.get("activities")):
                raw[(str(cell.get("activity_id")), str(day.get("date"))[:10])] = cell
    ids = {str(a["id"]) for a in grid.activities}
    days = [span.start + timedelta(days=n) for n in range((span.end - span.start).days + 1)]
    for day in days:
        open_day = any(raw.get((i, day.isoformat()), {}).get("state") not in (None, "closed")
                       for i in ids)
        if day.weekday() < 5 or open_day:
            grid.days.append(day)
    for activity in grid.activities:
        for day in grid.days:
            cell = raw.get((str(activity["id"]), day.isoformat()))
            if cell is not None:
                grid.cells[(str(activity["id"]), day.isoformat())] = _cell(
                    activity, day, cell, in_basket, checked)
    return grid


def _cell(activity: dict[str, Any], day: date, raw: dict[str, Any],
          in_basket: set[tuple[str, str]], checked: set[str]) -> Cell:
    state = str(raw.get("state") or "closed")
    basket = (str(activity.get("id")), day.isoformat()) in in_basket
    waiting = raw.get("waiting_list") if isinstance(raw.get("waiting_list"), dict) else {}
    offered = waiting.get("status") == "offered"
    booking_id = raw.get("booking_id") if isinstance(raw.get("booking_id"), str) else None
    can_cancel = raw.get("can_cancel") is True and bool(booking_id)
    cell = Cell(
        activity=activity, day=day, state=state, label=STATES.get(state, state),
        css=STATE_CLASSES.get(state, "closed"), reason=raw.get("reason") or None,
        deadline=deadline_fr(raw.get("deadline")),
        can_book=raw.get("can_book") is True and not basket,
        can_wait=raw.get("can_wait") is True and not basket,
        can_cancel=can_cancel, cancel_mode=raw.get("cancel_mode"), booking_id=booking_id,
        in_basket=basket, checked=False,
        offer_id=str(waiting["id"]) if offered and waiting.get("id") else None,
        offer_until=deadline_fr(waiting.get("offer_expires_at")) if offered else "")
    cell.checked = (booking_id in checked) if can_cancel else (cell.key in checked)
    if cell.reason and cell.reason.strip().rstrip(".").lower() == cell.label.lower():
        cell.reason = None
    elif cell.reason and state == "closed":
        # "Fermé (vacances scolaires)" under the word "Fermé": only what is in brackets.
        cell.reason = re.sub(r"^Fermé \((.*)\)$", r"\1", cell.reason.strip())
    return cell


def _calendars(commune: Commune, child_id: str, activities: list[dict[str, Any]],
               whole: bool, span: Span) -> list[dict[str, Any]]:
    """The child's calendar: all of the child's activities, or each activity chosen."""
    params = {"from": span.start.isoformat(), "to": span.end.isoformat()}
    path = api_path(commune, "children", child_id, "calendar")
    if whole:
        return [call("GET", path, params=params).data]
    found = []
    for activity in activities[:MAX_ACTIVITIES]:
        answer = call("GET", path, params={**params, "activity": str(activity["id"])},
                      accept=(404,))
        if answer.ok:
            found.append(answer.data)
    return found


@reservations.get("")
@login_required
def index():
    return _calendar_page()


def _calendar_page(*, messages: list[str] | None = None, checked: set[str] | None = None,
                   reason: str = "", notice: str | None = None, status: int = 200):
    commune = _household_commune()
    args = request.values
    children = _children()
    catalogue = _catalogue(commune)
    span = Span.from_args(args)
    context: dict[str, Any] = {"children": children, "span": span, "messages": messages or [],
                               "notice": notice, "reason": reason, "grid": None,
                               "child": None, "basket": None, "offered": catalogue is not None}
    if catalogue is None:
        return render_template("reservations/index.html", **context, services=[], sites=[],
                               service="", site="", not_offered=NOT_OFFERED), status
    services = objects(catalogue.get("services"))
    sites = objects(catalogue.get("sites"))
    service = args.get("service") or ""
    service = service if any(str(s.get("id")) == service for s in services) else ""
    site = args.get("site") or ""
    site = site if any(str(s.get("id")) == site for s in sites) else ""
    chosen = args.get("enfant")
    child = next((c for c in children if str(c["id"]) == chosen),
                 children[0] if children else None)

    def keep(activity: dict[str, Any]) -> bool:
        return ((not service or str(activity.get("service_id")) == service)
                and (not site or str(activity.get("site_id")) == site))

    basket = _basket(commune)
    grid = None
    if child is not None:
        activities = [a for a in objects(catalogue.get("items")) if a.get("id") and keep(a)]
        whole = not service and not site
        in_basket = {(str(line.get("activity_id")), str(d)[:10])
                     for line in objects((basket or {}).get("items"))
                     if str(line.get("child_id")) == str(child["id"])
                     for d in line.get("dates") or ()}
        calendars = _calendars(commune, str(child["id"]), activities, whole, span)
        grid = _grid(calendars, span, keep, in_basket, checked or set())
    here = {k: v for k, v in (("enfant", str(child["id"]) if child else ""),
                              ("service", service), ("site", site)) if v}
    now = today()
    in_span = span.view == MONTH and span.start <= now <= span.end
    week = {"semaine": monday_of(now if in_span else span.start).isoformat()}
    links = {"previous": span.shifted(-1), "next": span.shifted(1), "current": span.current(),
             "week": week, "month": {"vue": MONTH, "mois": f"{span.start:%Y-%m}"}}
    context.update(services=services, sites=sites, service=service, site=site, child=child,
                   grid=grid, basket=basket, here=here,
                   here_url=url_for("reservations.index", **here, **span.param),
                   calendar_links={key: url_for("reservations.index", **here, **value)
                                   for key, value in links.items()},
                   state_labels=STATES, payment_modes=PAYMENT_MODES)
    return render_template("reservations/index.html", **context), status


def _back_to_calendar():
    """The calendar as it was (child, service, site, week or month), after a POST."""
    form = request.form
    params = {k: form[k] for k in ("enfant", "service", "site", "semaine", "mois", "vue")
              if form.get(k)}
    return redirect(url_for("reservations.index", **params), 303)


@reservations.post("/ajouter")
@login_required
def add_days():
    """« Ajouter au panier » : the ticked free days, one basket line per activity."""
    commune = _household_commune()
    child_id = request.form.get("enfant") or ""
    picked: dict[str, list[str]] = defaultdict(list)
    for value in unique(request.form.getlist("jour")):
        activity_id, _, raw_day = value.partition("|")
        day = parse_day(raw_day)
        if activity_id and day is not None:
            picked[activity_id].append(day.isoformat())
    if not child_id or not picked:
        return _calendar_page(messages=[NOTHING_TO_BOOK], status=422)
    added = 0
    problems: list[str] = []
    kept: set[str] = set()
    try:
        for activity_id, days in picked.items():
            answer = call("POST", api_path(commune, "basket", "items"), accept=(404,),
                          json={"child_id": child_id, "activity_id": activity_id,
                                "dates": sorted(days)})
            if answer.ok:
                added += len(answer.data.get("added") or days)
            else:
                problems.extend(refusal_messages(answer, "Ces jours n'ont pas pu être ajoutés "
                                                         "au panier."))
                kept.update(f"{activity_id}|{d}" for d in days)
    except GatewayError as exc:
        return _calendar_page(checked=kept | {f"{a}|{d}" for a, ds in picked.items()
                                              for d in ds},
                              notice=exc.message, status=exc.status)
    if added:
        flash(f"{plural(added, 'jour ajouté', 'jours ajoutés')} au panier : validez le panier "
              "pour confirmer la réservation.", "success")
    if problems:
        return _calendar_page(messages=unique(problems), checked=kept, status=422)
    return _back_to_calendar()


@reservations.post("/absence")
@login_required
def report_absence():
    """« Signaler une absence » : the ticked booked days are cancelled, or asked to be."""
    commune = _household_commune()
    ids = unique(v.strip() for v in request.form.getlist("annuler"))
    reason = (request.form.get("motif") or "").strip()
    if not ids:
        return _calendar_page(messages=[NOTHING_TO_CANCEL], reason=reason, status=422)
    if len(reason) > MAX_REASON:
        return _calendar_page(messages=[f"Le motif fait au plus {MAX_REASON} caractères."],
                              checked=set(ids), reason=reason, status=422)
    try:
        answer = call("POST", api_path(commune, "cancellations"), accept=(404,),
                      json={"booking_ids": ids, "reason": reason or None})
    except GatewayError as exc:
        return _calendar_page(checked=set(ids), reason=reason, notice=exc.message,
                              status=exc.status)
    if not answer.ok:
        return _calendar_page(messages=refusal_messages(answer, "L'absence n'a pas pu être "
                                                                "signalée."),
                              checked=set(ids), reason=reason, status=422)
    for message in cancellation_summary(answer.data):
        flash(message, "success")
    return _back_to_calendar()


def cancellation_summary(result: dict[str, Any]) -> list[str]:
    """What ``POST /cancellations`` did, in French sentences for the parent."""
    out = []
    cancelled = objects(result.get("cancelled"))
    if cancelled:
        count = plural(len(cancelled), "jour annulé", "jours annulés")
        sentence = f"Absence enregistrée : {count}."
        if has_amount(result.get("refund_due")):
            sentence += (f" {euros_fr(result['refund_due'])} vous seront rendus sous forme "
                         "d'avoir, déduit de vos prochaines factures.")
        out.append(sentence)
    for item in objects(result.get("requests")):
        days = ", ".join(day_long(d) for d in item.get("dates") or ())
        out.append(f"La date limite d'annulation est passée pour {item.get('child_first_name')} "
                   f"(« {item.get('activity_label')} », {days}) : votre demande est transmise "
                   "à la mairie, qui vous répondra.")
    already = result.get("already_cancelled") or []
    if already:
        out.append(f"{plural(len(already), 'jour était', 'jours étaient')} déjà annulé"
                   f"{'s' if len(already) > 1 else ''}.")
    return out or ["Aucun jour n'a été annulé."]


# --- a period, for several children at once -------------------------------------------------------


@reservations.route("/periode", methods=["GET", "POST"])
@login_required
def period():
    commune = _household_commune()
    children = _children()
    catalogue = _catalogue(commune)
    activities = [a for a in objects((catalogue or {}).get("items")) if a.get("id")]
    form = PeriodForm()
    form.children.choices = choices((str(c["id"]), c.get("first_name") or "") for c in children)
    form.activity.choices = choices([("", "Choisissez une activité")] + [
        (str(a["id"]), f"{a.get('service_name')} — {a.get('label')} ({a.get('site_name')})")
        for a in activities])
    if not form.is_submitted():
        form.children.data = ([request.args["enfant"]] if request.args.get("enfant")
                              else [str(c["id"]) for c in children])
        if request.args.get("activite"):
            form.activity.data = request.args["activite"]
    results: list[dict[str, Any]] = []
    messages: list[str] = []
    notice = None
    status = 200
    if catalogue is None:
        messages = [NOT_OFFERED] if form.is_submitted() else []
        status = 422 if form.is_submitted() else 200
    elif form.validate_on_submit():
        names = {str(c["id"]): c.get("first_name") or "" for c in children}
        try:
            for child_id in form.children.data:
                answer = call("POST", api_path(commune, "basket", "items"), accept=(404,),
                              json={"child_id": child_id, "activity_id": form.activity.data,
                                    "period": form.period()})
                name = names.get(child_id, "")
                if answer.ok:
                    results.append({"child": name, "added": answer.data.get("added") or [],
                                    "skipped": objects(answer.data.get("skipped"))})
                elif answer.errors and not answer.data.get("conflicts"):
                    messages.extend(apply_answer(form, answer, PeriodForm.api_field))
                else:
                    messages.extend(f"{name} : {m}" if name and name not in m else m
                                    for m in refusal_messages(answer))
        except GatewayError as exc:
            notice, status = exc.message, exc.status
        if status == 200 and (messages or not results):
            status = 422 if not results else 200
    elif form.is_submitted():
        status = 422
    return render_template("reservations/period.html", form=form, results=results,
                           messages=unique(messages), notice=notice,
                           offered=catalogue is not None, not_offered=NOT_OFFERED,
                           has_children=bool(children)), status


# --- the basket -----------------------------------------------------------------------------------


@reservations.get("/panier")
@login_required
def basket():
    return _basket_page()


def _basket_page(*, messages: list[str] | None = None, notice: str | None = None,
                 retry: str | None = None, status: int = 200):
    commune = _household_commune()
    try:
        answer = call("GET", api_path(commune, "basket"), accept=(403, 404))
        content = answer.data if answer.ok else None
    except GatewayError as exc:
        content, notice = None, notice or exc.message
    lines = objects((content or {}).get("items"))
    return render_template(
        "reservations/basket.html", content=content, lines=lines, messages=messages or [],
        notice=notice, retry=retry, payment_modes=PAYMENT_MODES, not_offered=NOT_OFFERED,
        has_amount=has_amount), status


@reservations.post("/panier/lignes/<item_id>/retirer")
@login_required
def remove_line(item_id: str):
    commune = _household_commune()
    answer = call("DELETE", api_path(commune, "basket", "items", item_id), accept=(404,))
    if answer.ok:
        flash("La ligne a été retirée du panier.", "success")
    elif answer.status == 404:
        flash("Cette ligne n'est plus dans le panier.", "error")
    else:
        flash(" ".join(refusal_messages(answer, "La ligne n'a pas pu être retirée.")), "error")
    return redirect(url_for("reservations.basket"), 303)


@reservations.get("/panier/valider")
def checkout_again():
    """A reload (or a login in between) of the validation starts again from the basket."""
    return redirect(url_for("reservations.basket"), 303)


@reservations.post("/panier/valider")
@login_required
def checkout():
    """« Valider » : confirmed at once, or off to the payment page for what is prepaid."""
    commune = _household_commune()
    basket_id = (request.form.get("panier") or "").strip() or None
    minutes = (request.form.get("minutes") or "60").strip()
    minutes = minutes if minutes.isdigit() else "60"
    try:
        answer = call("POST", api_path(commune, "basket", "checkout"), accept=(404,),
                      json={"basket_id": basket_id} if basket_id else {})
    except GatewayError as exc:
        log.warning("checkout_unavailable", status=exc.status, basket_id=basket_id)
        return _basket_page(notice=CHECKOUT_DOWN.format(minutes=minutes), retry=basket_id or "",
                            status=503)
    outcome = answer.data.get("status")
    done_id = str(answer.data.get("basket_id") or basket_id or "")
    if answer.ok and outcome == "payment_required":
        url = answer.data.get("payment_url")
        if isinstance(url, str) and _web_address(url):
            log.info("basket_payment_started", basket_id=done_id,
                     payment_id=answer.data.get("payment_id"))
            return redirect(url, 303)
        log.error("checkout_without_payment_url", basket_id=done_id)
        return _basket_page(messages=["Le paiement n'a pas pu être préparé. Réessayez dans "
                                      "quelques instants."], retry=done_id, status=502)
    if answer.ok and done_id:
        return redirect(url_for("reservations.basket_return", commune=commune.slug,
                                basket=done_id), 303)
    return _basket_page(messages=refusal_messages(answer, "Votre panier n'a pas pu être "
                                                          "validé."),
                        status=409 if answer.status == 409 else 422)


def _web_address(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


@reservations.get("/panier/retour")
@login_required
def basket_return():
    """Where the payment page sends the parent back (and where a validation ends)."""
    account = current_account()
    if account is None or not account.family_id:
        abort(404)
    slug = request.args.get("commune")
    commune = account.commune(slug) if slug else current_commune()
    if commune is None:
        abort(404)
    basket_id = request.args.get("basket") or request.args.get("panier")
    payment_id = request.args.get("payment")
    if basket_id:
        record = call("GET", api_path(commune, "baskets", basket_id)).data
    elif payment_id:
        record = call("GET", api_path(commune, "payments", payment_id, "basket")).data
    else:
        abort(404)
    state = str(record.get("basket_status") or record.get("status") or "")
    outcome = {"paid": "confirmed", "confirmed": "confirmed", "checked_out": "pending",
               "expired": "expired", "failed": "failed", "open": "open"}.get(state, "pending")
    attempt = _attempt()
    refresh = None
    if outcome == "pending" and attempt < REFRESHES:
        refresh = url_for("reservations.basket_return", commune=commune.slug,
                          basket=record.get("basket_id") or basket_id, payment=payment_id,
                          essai=attempt + 1)
    bookings = objects(record.get("bookings"))
    return render_template(
        "reservations/return.html", record=record, outcome=outcome, refresh=refresh,
        bookings=bookings, waiting=objects(record.get("waiting_list")),
        payment_url=record.get("payment_url") if _web_address(
            str(record.get("payment_url") or "")) else None,
        again_url=url_for("reservations.basket_return", commune=commune.slug,
                          basket=record.get("basket_id") or basket_id, payment=payment_id),
        state_labels=STATES, payment_modes=PAYMENT_MODES, has_amount=has_amount)


def _attempt() -> int:
    value = request.args.get("essai", "")
    return min(int(value), REFRESHES) if value.isdigit() else 0


# --- bookings and the waiting list ----------------------------------------------------------------


@reservations.get("/reservations")
@login_required
def bookings():
    commune = _household_commune()
    children = _children()
    chosen = request.args.get("enfant") or ""
    chosen = chosen if any(str(c["id"]) == chosen for c in children) else ""
    start = parse_day(request.args.get("du")) or today()
    cursor = request.args.get("suite") or None
    params = {"from": start.isoformat()}
    if chosen:
        params["child_id"] = chosen
    if cursor:
        params["cursor"] = cursor
    listing = call("GET", api_path(commune, "bookings"), params=params, accept=(403, 404))
    waiting_params = {"child_id": chosen} if chosen else None
    try:
        line = call("GET", api_path(commune, "waiting-list"), params=waiting_params,
                    accept=(403, 404))
        waiting: list[dict[str, Any]] | None = line.items() if line.ok else None
    except GatewayError:
        waiting = None
    return render_template(
        "reservations/bookings.html", children=children, chosen=chosen, start=start,
        items=listing.items() if listing.ok else None, offered=listing.ok,
        next_cursor=listing.data.get("next"), cursor=cursor, waiting=waiting,
        state_labels=STATES, payment_modes=PAYMENT_MODES, attendance=ATTENDANCE,
        has_amount=has_amount, not_offered=NOT_OFFERED)


@reservations.post("/attente/<entry_id>/accepter")
@login_required
def accept_offer(entry_id: str):
    """« Accepter la place » : booked at once, or paid like a basket."""
    commune = _household_commune()
    back = safe_target(request.form.get("suivant")) or url_for("reservations.bookings")
    answer = call("POST", api_path(commune, "waiting-list", entry_id, "accept"), json={},
                  accept=(404,))
    if answer.ok and answer.data.get("status") == "payment_required":
        url = answer.data.get("payment_url")
        if isinstance(url, str) and _web_address(url):
            return redirect(url, 303)
    if answer.ok and answer.data.get("basket_id"):
        return redirect(url_for("reservations.basket_return", commune=commune.slug,
                                basket=str(answer.data["basket_id"])), 303)
    flash(" ".join(refusal_messages(answer, "La place n'a pas pu être acceptée.")), "error")
    return redirect(back, 303)


@reservations.post("/attente/<entry_id>/retirer")
@login_required
def withdraw(entry_id: str):
    commune = _household_commune()
    back = safe_target(request.form.get("suivant")) or url_for("reservations.bookings")
    answer = call("DELETE", api_path(commune, "waiting-list", entry_id), accept=(404,))
    if answer.ok:
        flash("C'est noté : la place est libérée pour la famille suivante.", "success")
    else:
        flash(" ".join(refusal_messages(answer, "La demande n'a pas pu être retirée.")), "error")
    return redirect(back, 303)
