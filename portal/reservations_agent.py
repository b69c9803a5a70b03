"""Agents' reservation pages for their commune: the register (pointage) of a site for a day,
cancellation requests to decide, occupancy per day, the activities and their rules, and the
enrolments waiting for validation.

Only an agent of the current commune sees them (anyone else gets the 403 page); the
reservations service checks the same again on every call. The day's CSV for the kitchen is a
link to the API (the gateway authenticates the browser's own cookie), never proxied.
"""

from __future__ import annotations

from collections import OrderedDict
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, flash, redirect, render_template, request, url_for

from .account import Commune, agent_commune, agent_required
from .client import GatewayError, call
from .formtools import apply_answer
from .reservations_common import (
    ATTENDANCE,
    LATE_CANCELLATION,
    NOT_OFFERED,
    PAYMENT_MODES,
    api_path,
    day_long,
    install_filters,
    objects,
    of_month,
    parse_day,
    plural,
    refusal_messages,
    today,
)
from .reservations_forms import ActivityForm, LockForm, NewActivityForm, choices

reservations_agent = Blueprint("reservations_agent", __name__, url_prefix="/agent")
install_filters(reservations_agent)

MAX_OCCUPANCY_DAYS = 92
ENROLMENT_STATUSES = {"pending": "En attente", "validated": "Validée", "refused": "Refusée"}
NO_MARK = "Aucun pointage à enregistrer : choisissez Présent, Absent ou Excusé pour un enfant."


def _catalogue(commune: Commune, inactive: bool = False) -> dict[str, Any] | None:
    params = {"include_inactive": "true"} if inactive else None
    answer = call("GET", api_path(commune, "activities"), params=params, accept=(403, 404))
    return answer.data if answer.ok else None


def _chosen(value: str | None, options: list[dict[str, Any]], default: bool = True) -> str:
    """``value`` when it is one of the options' ids, else the first (or none)."""
    ids = [str(o.get("id")) for o in options if o.get("id")]
    if value in ids:
        return str(value)
    return ids[0] if ids and default else ""


# --- the register (pointage) ----------------------------------------------------------------


@reservations_agent.get("/pointage")
@agent_required
def attendance():
    return _attendance_page(LockForm(formdata=None))


def _attendance_page(lock_form: LockForm, *, messages: list[str] | None = None,
                     posted: dict[str, str] | None = None, notice: str | None = None,
                     status: int = 200):
    commune = agent_commune()
    catalogue = _catalogue(commune)
    if catalogue is None:
        return render_template("agent/reservations/attendance.html", offered=False,
                               not_offered=NOT_OFFERED, messages=messages or [],
                               lock_form=lock_form, notice=notice), status
    sites = objects(catalogue.get("sites"))
    site = _chosen(request.values.get("site"), sites)
    day = parse_day(request.values.get("date")) or today()
    sheet: dict[str, Any] | None = None
    if site:
        try:
            answer = call("GET", api_path(commune, "attendance"), accept=(404,),
                          params={"site": site, "date": day.isoformat()})
            sheet = answer.data if answer.ok else None
        except GatewayError as exc:
            notice = notice or exc.message
    groups: OrderedDict[str, dict[str, Any]] = OrderedDict()
    for item in objects((sheet or {}).get("items")):
        key = str(item.get("activity_id"))
        groups.setdefault(key, {"label": item.get("activity_label"), "items": []})
        groups[key]["items"].append(item)
    q = (request.args.get("q") or "").strip()[:100]
    found: list[dict[str, Any]] | None = None
    if q:
        try:
            found = call("GET", api_path(commune, "children"), params={"q": q},
                         accept=(404,)).items()
        except GatewayError as exc:
            notice = notice or exc.message
    locks: list[dict[str, Any]] | None = None
    try:
        listing = call("GET", api_path(commune, "attendance", "locks"), accept=(404,))
        locks = listing.items() if listing.ok else None
    except GatewayError:
        locks = None
    site_activities = [a for a in objects(catalogue.get("items"))
                       if str(a.get("site_id")) == site]
    if not lock_form.month.data:
        previous = day.replace(day=1) - timedelta(days=1)
        lock_form.month.data = f"{previous:%Y-%m}"
    export = (api_path(commune, "attendance", "export") + "?"
              + urlencode({"site": site, "date": day.isoformat()})) if site else None
    return render_template(
        "agent/reservations/attendance.html", offered=True, sites=sites, site=site, day=day,
        sheet=sheet, groups=list(groups.values()), q=q, found=found, locks=locks,
        site_activities=site_activities, lock_form=lock_form, export=export,
        messages=messages or [], posted=posted or {}, notice=notice, marks=ATTENDANCE,
        previous_day=day - timedelta(days=1), next_day=day + timedelta(days=1),
        today=today()), status


def _back_to_register(site: str, day: str):
    return redirect(url_for("reservations_agent.attendance", site=site or None,
                            date=day or None), 303)


@reservations_agent.post("/pointage")
@agent_required
def save_attendance():
    commune = agent_commune()
    site = request.form.get("site") or ""
    day = parse_day(request.form.get("date"))
    posted = {k: v for k, v in request.form.items() if k.startswith("m.")}
    marks = []
    for key, value in posted.items():
        parts = key.split(".")
        if len(parts) == 3 and value in ATTENDANCE:
            marks.append({"child_id": parts[1], "activity_id": parts[2], "status": value})
    if not site or day is None or not marks:
        return _attendance_page(LockForm(formdata=None), messages=[NO_MARK], posted=posted,
                                status=422)
    try:
        answer = call("PUT", api_path(commune, "attendance"), json={"marks": marks},
                      params={"site": site, "date": day.isoformat()}, accept=(404,))
    except GatewayError as exc:
        return _attendance_page(LockForm(formdata=None), posted=posted, notice=exc.message,
                                status=exc.status)
    if not answer.ok:
        return _attendance_page(LockForm(formdata=None), posted=posted,
                                messages=refusal_messages(answer, "Le pointage n'a pas pu être "
                                                                  "enregistré."),
                                status=409 if answer.status == 409 else 422)
    counted = plural(len(marks), "enfant pointé", "enfants pointés")
    flash(f"Pointage du {day_long(day)} enregistré : {counted}.", "success")
    return _back_to_register(site, day.isoformat())


@reservations_agent.post("/pointage/ajouter")
@agent_required
def add_child():
    """A child who came without a booking: added to the day's list, present."""
    commune = agent_commune()
    site = request.form.get("site") or ""
    day = parse_day(request.form.get("date"))
    child_id = request.form.get("enfant") or ""
    activity_id = request.form.get("activite") or ""
    name = (request.form.get("nom") or "").strip()[:200] or "L'enfant"
    if not (site and day and child_id and activity_id):
        return _attendance_page(LockForm(formdata=None), status=422, messages=[
            "Choisissez l'enfant et l'activité pour l'ajouter au pointage."])
    answer = call("PUT", api_path(commune, "attendance"), accept=(404,),
                  params={"site": site, "date": day.isoformat()},
                  json={"marks": [{"child_id": child_id, "activity_id": activity_id,
                                   "status": "present"}]})
    if not answer.ok:
        return _attendance_page(LockForm(formdata=None), status=422, messages=refusal_messages(
            answer, "L'enfant n'a pas pu être ajouté au pointage."))
    flash(f"{name} est ajouté au pointage du {day_long(day)}, présent.", "success")
    return _back_to_register(site, day.isoformat())


@reservations_agent.post("/pointage/verrouiller")
@agent_required
def lock_month():
    commune = agent_commune()
    form = LockForm()
    if not form.validate_on_submit():
        return _attendance_page(form, status=422)
    answer = call("POST", api_path(commune, "attendance", "lock"),
                  json={"month": form.month.data}, accept=(404,))
    if not answer.ok:
        return _attendance_page(form, messages=apply_answer(form, answer), status=422)
    flash(f"Le pointage {of_month(form.month.data)} est verrouillé : il ne peut plus "
          "être modifié.", "success")
    return _back_to_register(request.form.get("site") or "", request.form.get("date") or "")


# --- cancellation requests ---------------------------------------------------------------------


@reservations_agent.get("/annulations")
@agent_required
def cancellations():
    commune = agent_commune()
    answer = call("GET", api_path(commune, "cancellations"), params={"status": "pending"},
                  accept=(403, 404))
    return render_template("agent/reservations/cancellations.html", offered=answer.ok,
                           items=answer.items(), not_offered=NOT_OFFERED)


@reservations_agent.post("/annulations/<cancellation_id>/decision")
@agent_required
def decide_cancellation(cancellation_id: str):
    commune = agent_commune()
    return _decide(api_path(commune, "cancellations", cancellation_id, "decision"),
                   "reservations_agent.cancellations",
                   ("Annulation acceptée : la famille en est informée.",
                    "Annulation refusée : la famille en est informée."))


def _decide(path: str, back: str, said: tuple[str, str]):
    choice = request.form.get("decision")
    message = (request.form.get("message") or "").strip()[:2000] or None
    if choice not in ("accepter", "refuser"):
        flash("Choisissez d'accepter ou de refuser.", "error")
        return redirect(url_for(back), 303)
    accept = choice == "accepter"
    answer = call("POST", path, json={"accept": accept, "message": message}, accept=(404,))
    if answer.ok:
        flash(said[0] if accept else said[1], "success")
    else:
        flash(" ".join(refusal_messages(answer, "La décision n'a pas pu être enregistrée.")),
              "error")
    return redirect(url_for(back), 303)


# --- occupancy ---------------------------------------------------------------------------------


@reservations_agent.get("/occupation")
@agent_required
def occupancy():
    commune = agent_commune()
    catalogue = _catalogue(commune, inactive=True)
    if catalogue is None:
        return render_template("agent/reservations/occupancy.html", offered=False,
                               not_offered=NOT_OFFERED)
    activities = objects(catalogue.get("items"))
    sites = objects(catalogue.get("sites"))
    activity = _chosen(request.args.get("activite"), activities, default=False)
    site = _chosen(request.args.get("site"), sites, default=False)
    start = parse_day(request.args.get("du")) or today()
    end = parse_day(request.args.get("au")) or start + timedelta(days=6)
    messages: list[str] = []
    if end < start:
        messages.append("La fin de la période doit suivre son début.")
        end = start + timedelta(days=6)
    if (end - start).days >= MAX_OCCUPANCY_DAYS:
        messages.append(f"Au plus {MAX_OCCUPANCY_DAYS} jours à la fois : la période est "
                        "raccourcie.")
        end = start + timedelta(days=MAX_OCCUPANCY_DAYS - 1)
    params = {"from": start.isoformat(), "to": end.isoformat()}
    if activity:
        params["activity"] = activity
    if site:
        params["site"] = site
    answer = call("GET", api_path(commune, "occupancy"), params=params, accept=(404,))
    if not answer.ok:
        messages.extend(refusal_messages(answer))
    names = {str(s.get("id")): s.get("name") for s in sites}
    days: OrderedDict[str, list[dict[str, Any]]] = OrderedDict()
    for item in sorted(answer.items(), key=lambda i: str(i.get("date"))):
        days.setdefault(str(item.get("date"))[:10], []).append(item)
    return render_template(
        "agent/reservations/occupancy.html", offered=True, activities=activities, sites=sites,
        activity=activity, site=site, start=start, end=end, days=days, site_names=names,
        messages=messages), 200 if answer.ok else 422


# --- activities --------------------------------------------------------------------------------


@reservations_agent.get("/activites")
@agent_required
def activities():
    commune = agent_commune()
    catalogue = _catalogue(commune, inactive=True)
    return render_template(
        "agent/reservations/activities.html", offered=catalogue is not None,
        items=objects((catalogue or {}).get("items")), payment_modes=PAYMENT_MODES,
        late=LATE_CANCELLATION, not_offered=NOT_OFFERED)


@reservations_agent.route("/activites/nouvelle", methods=["GET", "POST"])
@agent_required
def activity_new():
    commune = agent_commune()
    catalogue = _catalogue(commune, inactive=True) or {}
    if request.method == "POST":
        form = NewActivityForm()
    else:
        form = NewActivityForm(formdata=None, data={
            "payment_mode": "monthly", "late_cancellation": "refuse", "active": True,
            "weekdays": ["1", "2", "4", "5"], "booking_kind": "days_before",
            "booking_days": "1", "booking_time": "09:00", "cancellation_kind": "days_before",
            "cancellation_days": "1", "cancellation_time": "09:00", "waiting_list_size": "0",
            "booking_weekday": "4", "cancellation_weekday": "4"})
    form.service_id.choices = choices([("", "Choisissez le service")] + [
        (str(s["id"]), s.get("name") or "") for s in objects(catalogue.get("services"))
        if s.get("id")])
    form.site_id.choices = choices([("", "Choisissez le site")] + [
        (str(s["id"]), s.get("name") or "") for s in objects(catalogue.get("sites"))
        if s.get("id")])
    messages: list[str] = []
    notice = None
    status = 422 if form.is_submitted() else 200
    if form.validate_on_submit():
        try:
            answer = call("POST", api_path(commune, "activities"), json=form.payload(),
                          accept=(404,))
        except GatewayError as exc:
            answer, notice, status = None, exc.message, exc.status
        if answer is not None and answer.ok:
            flash(f"Activité « {form.label.data} » créée.", "success")
            return redirect(url_for("reservations_agent.activities"), 303)
        if answer is not None:
            messages = apply_answer(form, answer, NewActivityForm.api_field)
    return render_template("agent/reservations/activity.html", form=form, activity=None,
                           messages=messages, notice=notice, creating=True), status


@reservations_agent.route("/activites/<activity_id>", methods=["GET", "POST"])
@agent_required
def activity_edit(activity_id: str):
    commune = agent_commune()
    current = call("GET", api_path(commune, "activities", activity_id)).data
    if request.method == "POST":
        form = ActivityForm()
    else:
        form = ActivityForm.from_activity(current, formdata=None)
    messages: list[str] = []
    notice = None
    status = 422 if form.is_submitted() else 200
    if form.validate_on_submit():
        try:
            answer = call("PATCH", api_path(commune, "activities", activity_id),
                          json=form.payload(), accept=(404,))
        except GatewayError as exc:
            answer, notice, status = None, exc.message, exc.status
        if answer is not None and answer.ok:
            flash(f"Activité « {form.label.data} » enregistrée.", "success")
            return redirect(url_for("reservations_agent.activities"), 303)
        if answer is not None:
            messages = apply_answer(form, answer, ActivityForm.api_field)
    return render_template("agent/reservations/activity.html", form=form, activity=current,
                           messages=messages, notice=notice, creating=False), status


# --- enrolments --------------------------------------------------------------------------------


@reservations_agent.get("/inscriptions")
@agent_required
def enrolments():
    commune = agent_commune()
    answer = call("GET", api_path(commune, "enrolments"), params={"status": "pending"},
                  accept=(403, 404))
    return render_template("agent/reservations/enrolments.html", offered=answer.ok,
                           items=answer.items(), not_offered=NOT_OFFERED)


@reservations_agent.post("/inscriptions/<enrolment_id>/decision")
@agent_required
def decide_enrolment(enrolment_id: str):
    commune = agent_commune()
    return _decide(api_path(commune, "enrolments", enrolment_id, "decision"),
                   "reservations_agent.enrolments",
                   ("Inscription validée : la famille peut réserver.",
                    "Inscription refusée : la famille en est informée."))
