"""Agents' pages to set reservations up for their commune: the opening calendar (the zone of
school holidays, the school years, exceptional closures and openings, a month's preview), the
services and the sites. The activities have their own pages (``reservations_agent``).

Public holidays and the school holidays of each zone are the reservations service's; the
commune chooses its zone and overrides any day with an exception (an opening wins over a
holiday, a closure over the usual opening days), for the whole commune or only a service, a
site or an activity. Only an agent of the current commune sees these pages (anyone else gets
the 403 page); the reservations service checks the same again on every call.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from wtforms import SelectField, StringField
from wtforms.validators import DataRequired, Length, Optional, Regexp
from wtforms.widgets import DateInput

from .account import Commune, agent_commune, agent_required
from .client import Answer, GatewayError, call
from .forms import _strip, parse_date
from .formtools import add_error, apply_answer
from .reservations_common import (
    NOT_OFFERED,
    api_path,
    install_filters,
    objects,
    refusal_messages,
    today,
)
from .reservations_forms import MAX_SPAN_DAYS, _Among, _date_field, _month, _valid_date, choices

reservations_setup = Blueprint("reservations_setup", __name__, url_prefix="/agent")
install_filters(reservations_setup)

TEMPLATES = "agent/reservations/setup"
ZONES = {"A": "Zone A", "B": "Zone B", "C": "Zone C"}
ENROLMENT_MODES = {"automatic": "Automatique", "validated": "Validée par un agent"}
EXCEPTION_KINDS = {"closure": "Fermeture exceptionnelle", "opening": "Ouverture exceptionnelle"}
_TEXT_KW = {"autocomplete": "off"}


# --- forms ------------------------------------------------------------------------------------


class ZoneForm(FlaskForm):
    zone = SelectField("Zone de vacances scolaires", choices=choices(ZONES.items()),
                       validate_choice=False, validators=[
                           DataRequired("Choisissez la zone A, B ou C."),
                           _Among("Choisissez la zone A, B ou C.")])


class SchoolYearForm(FlaskForm):
    year_label = StringField("Année scolaire", filters=[_strip], validators=[
        DataRequired("Indiquez l'année scolaire, par exemple 2026-2027."),
        Regexp(r"^\d{4}-\d{4}$", message="Format attendu : 2026-2027.")], render_kw=_TEXT_KW)
    starts_on = _date_field("Premier jour", "Indiquez le premier jour de l'année scolaire.")
    ends_on = _date_field("Dernier jour", "Indiquez le dernier jour de l'année scolaire.")

    def validate(self, extra_validators=None) -> bool:
        ok = super().validate(extra_validators)
        start, end = parse_date(self.starts_on.data), parse_date(self.ends_on.data)
        if start and end and not self.ends_on.errors:
            if end <= start:
                add_error(self.ends_on, "La fin doit suivre le début.")
                ok = False
            elif (end - start).days > MAX_SPAN_DAYS:
                add_error(self.ends_on, "Une année scolaire dure au plus un an.")
                ok = False
        return ok

    def payload(self) -> dict[str, Any]:
        start, end = parse_date(self.starts_on.data), parse_date(self.ends_on.data)
        assert start and end
        return {"label": self.year_label.data, "starts_on": start.isoformat(),
                "ends_on": end.isoformat()}

    @staticmethod
    def api_field(key: str) -> str | None:
        return {"label": "year_label"}.get(key, key)


class ExceptionForm(FlaskForm):
    kind = SelectField("Type", choices=choices(EXCEPTION_KINDS.items()), validate_choice=False,
                       validators=[DataRequired("Choisissez une fermeture ou une ouverture."),
                                   _Among("Choisissez une fermeture ou une ouverture.")])
    start = _date_field("Du", "Indiquez le premier jour.")
    end = StringField("Au (facultatif)", filters=[_strip], widget=DateInput(),
                      validators=[Optional(), _valid_date], render_kw=_TEXT_KW)
    label = StringField("Libellé", filters=[_strip], validators=[
        DataRequired("Indiquez le libellé, par exemple « Pont de l'Ascension »."),
        Length(max=200, message="Au plus 200 caractères.")], render_kw=_TEXT_KW)
    service_id = SelectField("Service", choices=[], validate_choice=False,
                             validators=[_Among("Choisissez un service de la liste.")])
    site_id = SelectField("Site", choices=[], validate_choice=False,
                          validators=[_Among("Choisissez un site de la liste.")])
    activity_id = SelectField("Activité", choices=[], validate_choice=False,
                              validators=[_Among("Choisissez une activité de la liste.")])

    def scope_choices(self, catalogue: dict[str, Any]) -> None:
        """The service, site and activity selects, from the commune's catalogue."""
        self.service_id.choices = choices([("", "Tous les services")] + [
            (str(s["id"]), s.get("name") or "") for s in objects(catalogue.get("services"))
            if s.get("id")])
        self.site_id.choices = choices([("", "Tous les sites")] + [
            (str(s["id"]), s.get("name") or "") for s in objects(catalogue.get("sites"))
            if s.get("id")])
        self.activity_id.choices = choices([("", "Toutes les activités")] + [
            (str(a["id"]), f"{a.get('label') or ''} ({a.get('site_name') or ''})")
            for a in objects(catalogue.get("items")) if a.get("id")])

    def validate(self, extra_validators=None) -> bool:
        ok = super().validate(extra_validators)
        start, end = parse_date(self.start.data), parse_date(self.end.data)
        if start and end and not self.end.errors:
            if end < start:
                add_error(self.end, "La fin doit suivre le début.")
                ok = False
            elif (end - start).days > MAX_SPAN_DAYS:
                add_error(self.end, "Au plus un an.")
                ok = False
        return ok

    def payload(self) -> dict[str, Any]:
        start, end = parse_date(self.start.data), parse_date(self.end.data)
        assert start
        return {"kind": self.kind.data, "from": start.isoformat(),
                "to": end.isoformat() if end else None, "label": self.label.data,
                "service_id": self.service_id.data or None,
                "site_id": self.site_id.data or None,
                "activity_id": self.activity_id.data or None}

    @staticmethod
    def api_field(key: str) -> str | None:
        return {"from": "start", "to": "end"}.get(key, key)


class ServiceForm(FlaskForm):
    name = StringField("Nom", filters=[_strip], validators=[
        DataRequired("Indiquez le nom du service."),
        Length(max=200, message="Au plus 200 caractères.")], render_kw=_TEXT_KW)
    kind = StringField("Type (facultatif)", filters=[_strip], validators=[
        Optional(), Length(max=40, message="Au plus 40 caractères.")],
        render_kw={**_TEXT_KW, "spellcheck": "false"})
    enrolment_mode = SelectField("Inscription des enfants", choices=choices(
        ENROLMENT_MODES.items()), validate_choice=False, validators=[
        DataRequired("Choisissez le mode d'inscription."),
        _Among("Choisissez le mode d'inscription.")])

    def payload(self) -> dict[str, Any]:
        return {"name": self.name.data, "kind": self.kind.data or None,
                "enrolment_mode": self.enrolment_mode.data}


class SiteForm(FlaskForm):
    name = StringField("Nom", filters=[_strip], validators=[
        DataRequired("Indiquez le nom du site."),
        Length(max=200, message="Au plus 200 caractères.")], render_kw=_TEXT_KW)
    address = StringField("Adresse (facultatif)", filters=[_strip], validators=[
        Optional(), Length(max=300, message="Au plus 300 caractères.")], render_kw=_TEXT_KW)

    def payload(self) -> dict[str, Any]:
        return {"name": self.name.data, "address": self.address.data or None}


# --- shared -----------------------------------------------------------------------------------


def _catalogue(commune: Commune) -> dict[str, Any] | None:
    """Services, sites and activities (inactive ones too); None when not offered."""
    answer = call("GET", api_path(commune, "activities"), params={"include_inactive": "true"},
                  accept=(403, 404))
    return answer.data if answer.ok else None


def _refused(answer: Answer) -> int:
    return 409 if answer.status == 409 else 422


def _send(method: str, path: str, form: FlaskForm, rename=None, **kwargs: Any
          ) -> tuple[Answer | None, list[str], str | None, int]:
    """Call the API with the form's payload: (answer, summary messages, notice, status)."""
    try:
        answer = call(method, path, accept=(404,), **kwargs)
    except GatewayError as exc:
        return None, [], exc.message, exc.status
    if answer.ok:
        return answer, [], None, answer.status
    return answer, apply_answer(form, answer, rename), None, _refused(answer)


# --- the opening calendar ---------------------------------------------------------------------


def _shown_month() -> date:
    """The month of the preview: ``?mois=2026-11`` (or ``11/2026``), else this month."""
    value = _month(request.values.get("mois") or "")
    day = parse_date(f"{value}-01") if isinstance(value, str) and len(value) == 7 else None
    return day or today().replace(day=1)


def _scope(exception: dict[str, Any], names: dict[str, str]) -> str:
    """Where an exception applies, in words: ``Toute la commune``, ``Service : Repas``..."""
    parts = []
    for key, word in (("service_id", "Service"), ("site_id", "Site"),
                      ("activity_id", "Activité")):
        if exception.get(key):
            parts.append(f"{word} : {names.get(str(exception[key]), 'inconnu')}")
    return ", ".join(parts) or "Toute la commune"


def _back_to_calendar(anchor: str | None = None):
    month = request.args.get("mois")
    return redirect(url_for("reservations_setup.calendar", mois=month or None,
                            _anchor=anchor), 303)


def _calendar_page(*, zone_form: ZoneForm | None = None,
                   year_form: SchoolYearForm | None = None,
                   exception_form: ExceptionForm | None = None,
                   messages: list[str] | None = None, notice: str | None = None,
                   status: int = 200):
    commune = agent_commune()
    answer = call("GET", api_path(commune, "calendar"), accept=(403, 404))
    catalogue = _catalogue(commune) if answer.ok else None
    if catalogue is None:
        return render_template(f"{TEMPLATES}/calendar.html", offered=False,
                               not_offered=NOT_OFFERED, messages=messages or [],
                               notice=notice, failed=None), status
    settings = answer.data
    zone = str(settings.get("zone") or "")
    zone_form = zone_form or ZoneForm(formdata=None, data={"zone": zone or "C"})
    year_form = year_form or SchoolYearForm(formdata=None)
    exception_form = exception_form or ExceptionForm(formdata=None, data={"kind": "closure"})
    exception_form.scope_choices(catalogue)
    names = {str(s.get("id")): str(s.get("name") or "")
             for s in objects(catalogue.get("services")) + objects(catalogue.get("sites"))}
    names.update({str(a.get("id")): f"{a.get('label') or ''} ({a.get('site_name') or ''})"
                  for a in objects(catalogue.get("items"))})
    exceptions = [{**e, "scope": _scope(e, names)} for e in objects(settings.get("exceptions"))]

    month = _shown_month()
    following = (month + timedelta(days=32)).replace(day=1)
    preview: list[dict[str, Any]] = []
    preview_zone = zone
    preview_messages: list[str] = []
    try:
        days = call("GET", api_path(commune, "calendar", "days"), accept=(404,), params={
            "from": month.isoformat(), "to": (following - timedelta(days=1)).isoformat()})
        if days.ok:
            preview_zone = str(days.data.get("zone") or zone)
            preview = [{**d, "exceptions": [{**e, "scope": _scope(e, names)}
                                            for e in objects(d.get("exceptions"))]}
                       for d in objects(days.data.get("days"))]
        else:
            preview_messages = refusal_messages(days)
    except GatewayError as exc:
        notice = notice or exc.message
    failed = next((f for f in (zone_form, year_form, exception_form)
                   if any(field.errors for field in f)), None)
    return render_template(
        f"{TEMPLATES}/calendar.html", offered=True, zone=zone, zones=ZONES,
        zone_form=zone_form, year_form=year_form, exception_form=exception_form,
        school_years=objects(settings.get("school_years")), exceptions=exceptions,
        kinds=EXCEPTION_KINDS, month=month, previous_month=(month - timedelta(days=1)).replace(
            day=1), next_month=following, preview=preview, preview_zone=preview_zone,
        preview_messages=preview_messages, failed=failed, messages=messages or [],
        notice=notice), status


@reservations_setup.get("/calendrier")
@agent_required
def calendar():
    return _calendar_page()


@reservations_setup.post("/calendrier/zone")
@agent_required
def save_zone():
    commune = agent_commune()
    form = ZoneForm()
    if not form.validate_on_submit():
        return _calendar_page(zone_form=form, status=422)
    answer, messages, notice, status = _send("PUT", api_path(commune, "calendar"), form,
                                             json={"zone": form.zone.data})
    if answer is not None and answer.ok:
        flash(f"Zone de vacances scolaires enregistrée : zone {form.zone.data}.", "success")
        return _back_to_calendar()
    return _calendar_page(zone_form=form, messages=messages, notice=notice, status=status)


@reservations_setup.post("/calendrier/annees")
@agent_required
def add_school_year():
    commune = agent_commune()
    form = SchoolYearForm()
    if not form.validate_on_submit():
        return _calendar_page(year_form=form, status=422)
    try:
        answer = call("POST", api_path(commune, "school-years"), json=form.payload(),
                      accept=(404,))
    except GatewayError as exc:
        return _calendar_page(year_form=form, notice=exc.message, status=exc.status)
    if answer.ok:
        flash(f"Année scolaire {form.year_label.data} ajoutée.", "success")
        return _back_to_calendar("annees")
    if answer.status == 409 and not answer.errors:
        # Overlapping another school year: the dates are what to change.
        add_error(form.starts_on, answer.detail or "Ces dates chevauchent une autre année "
                                                   "scolaire.")
        return _calendar_page(year_form=form, status=409)
    return _calendar_page(year_form=form, status=_refused(answer),
                          messages=apply_answer(form, answer, SchoolYearForm.api_field))


@reservations_setup.post("/calendrier/exceptions")
@agent_required
def add_exception():
    commune = agent_commune()
    form = ExceptionForm()
    form.scope_choices(_catalogue(commune) or {})
    if not form.validate_on_submit():
        return _calendar_page(exception_form=form, status=422)
    answer, messages, notice, status = _send("POST", api_path(commune, "calendar",
                                                              "exceptions"),
                                             form, ExceptionForm.api_field,
                                             json=form.payload())
    if answer is not None and answer.ok:
        what = "Fermeture" if form.kind.data == "closure" else "Ouverture"
        flash(f"{what} exceptionnelle « {form.label.data} » ajoutée.", "success")
        return _back_to_calendar("exceptions")
    return _calendar_page(exception_form=form, messages=messages, notice=notice,
                          status=status)


@reservations_setup.post("/calendrier/exceptions/<exception_id>/supprimer")
@agent_required
def delete_exception(exception_id: str):
    commune = agent_commune()
    try:
        answer = call("DELETE", api_path(commune, "calendar", "exceptions", exception_id),
                      accept=(404,))
    except GatewayError as exc:
        flash(exc.message, "error")
        return _back_to_calendar("exceptions")
    if answer.ok:
        flash("L'exception de calendrier est supprimée.", "success")
    else:
        flash(" ".join(refusal_messages(answer, "L'exception n'a pas pu être supprimée.")),
              "error")
    return _back_to_calendar("exceptions")


# --- services and sites -----------------------------------------------------------------------


def _list_page(what: str, form: FlaskForm, *, messages: list[str] | None = None,
               notice: str | None = None, status: int = 200):
    commune = agent_commune()
    catalogue = _catalogue(commune)
    activities = objects((catalogue or {}).get("items"))
    key = "service_id" if what == "services" else "site_id"
    counts: dict[str, int] = {}
    for a in activities:
        counts[str(a.get(key))] = counts.get(str(a.get(key)), 0) + 1
    return render_template(
        f"{TEMPLATES}/{what}.html", offered=catalogue is not None, not_offered=NOT_OFFERED,
        items=objects((catalogue or {}).get(what)), counts=counts, form=form,
        modes=ENROLMENT_MODES, messages=messages or [], notice=notice), status


def _one(what: str, item_id: str) -> dict[str, Any]:
    """A service or a site of the commune, from its catalogue (404 when it has none)."""
    catalogue = _catalogue(agent_commune())
    for item in objects((catalogue or {}).get(what)):
        if str(item.get("id")) == item_id:
            return item
    abort(404)


def _create(what: str, form_class: type[FlaskForm], said: str):
    commune = agent_commune()
    form = form_class()
    if not form.validate_on_submit():
        return _list_page(what, form, status=422)
    answer, messages, notice, status = _send("POST", api_path(commune, what), form,
                                             json=form.payload())
    if answer is not None and answer.ok:
        flash(said.format(name=form.name.data), "success")
        return redirect(url_for(f"reservations_setup.{what}"), 303)
    return _list_page(what, form, messages=messages, notice=notice, status=status)


def _edit(what: str, current: dict[str, Any], form: FlaskForm, said: str):
    commune = agent_commune()
    item_id = str(current.get("id"))
    messages: list[str] = []
    notice = None
    status = 422 if form.is_submitted() else 200
    if form.validate_on_submit():
        answer, messages, notice, status = _send("PATCH", api_path(commune, what, item_id),
                                                 form, json=form.payload())
        if answer is not None and answer.ok:
            flash(said.format(name=form.name.data), "success")
            return redirect(url_for(f"reservations_setup.{what}"), 303)
    return render_template(f"{TEMPLATES}/{what[:-1]}.html", form=form, item=current,
                           messages=messages, notice=notice), status


@reservations_setup.get("/services")
@agent_required
def services():
    return _list_page("services", ServiceForm(formdata=None,
                                              data={"enrolment_mode": "automatic"}))


@reservations_setup.post("/services")
@agent_required
def service_new():
    return _create("services", ServiceForm, "Service « {name} » créé.")


@reservations_setup.route("/services/<service_id>", methods=["GET", "POST"])
@agent_required
def service_edit(service_id: str):
    item = _one("services", service_id)
    form = ServiceForm() if request.method == "POST" else ServiceForm(formdata=None, data={
        "name": item.get("name"), "kind": item.get("kind") or "",
        "enrolment_mode": item.get("enrolment_mode") or "automatic"})
    return _edit("services", item, form, "Service « {name} » enregistré.")


@reservations_setup.get("/sites")
@agent_required
def sites():
    return _list_page("sites", SiteForm(formdata=None))


@reservations_setup.post("/sites")
@agent_required
def site_new():
    return _create("sites", SiteForm, "Site « {name} » créé.")


@reservations_setup.route("/sites/<site_id>", methods=["GET", "POST"])
@agent_required
def site_edit(site_id: str):
    item = _one("sites", site_id)
    form = SiteForm() if request.method == "POST" else SiteForm(formdata=None, data={
        "name": item.get("name"), "address": item.get("address") or ""})
    return _edit("sites", item, form, "Site « {name} » enregistré.")
