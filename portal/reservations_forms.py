"""The forms of the reservation pages (parents: a period to book; agents: an activity, a month
to lock).

As in ``forms.py``: French messages, and only what a person can fix at once is checked here (a
missing date, an end before the start); the booking rules themselves come back as the
reservations service's refusals, in French.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from flask_wtf import FlaskForm
from wtforms import BooleanField, SelectField, SelectMultipleField, StringField
from wtforms.validators import DataRequired, Length, Optional, Regexp, ValidationError
from wtforms.widgets import DateInput, MonthInput, TimeInput

from .forms import _strip, parse_date
from .reservations_common import DAYS

try:  # WTForms 3.3 deprecates (value, label) pairs for SelectField choices
    from wtforms.fields.choices import SelectChoice
except ImportError:  # pragma: no cover - older WTForms
    def SelectChoice(value: str, label: str) -> tuple[str, str]:  # type: ignore[no-redef]
        return value, label


def choices(pairs: Iterable[tuple[str, str]]) -> list[Any]:
    return [SelectChoice(value, label) for value, label in pairs]


WEEKDAY_CHOICES = choices((str(n), DAYS[n - 1].capitalize()) for n in range(1, 8))
MAX_SPAN_DAYS = 366
_AMOUNT = re.compile(r"^\d{1,6}([.,]\d{1,2})?$")
_MONTH_FR = re.compile(r"^(0?[1-9]|1[0-2])/(\d{4})$")
_NUMBER_KW = {"inputmode": "numeric", "autocomplete": "off"}

DEADLINE_KINDS = choices([
    ("", "Sans règle particulière : jusqu'à la veille à minuit"),
    ("days_before", "Un nombre de jours avant, à l'heure indiquée (0 : le jour même)"),
    ("working_days_before", "Un nombre de jours ouvrés avant (week-ends et jours fériés non "
                            "comptés), à l'heure indiquée"),
    ("weekly", "Un jour fixe de la semaine précédente, à l'heure indiquée"),
])
PAYMENT_CHOICES = choices([("monthly", "Facturé en fin de mois"),
                           ("prepaid", "Payé à la réservation (paiement en ligne au panier)")])
LATE_CHOICES = choices([("refuse", "Refuser l'annulation (le jour reste dû)"),
                        ("request", "Transmettre une demande d'annulation à la mairie")])


class _Among:
    """The value is one of the field's choices (WTForms' own message is English)."""

    def __init__(self, message: str):
        self.message = message

    def __call__(self, form, field) -> None:
        allowed = {str(choice[0]) for choice in field.iter_choices()}
        values = field.data if isinstance(field.data, list) else [field.data]
        if any(str(v) not in allowed for v in values if v not in (None, "")):
            raise ValidationError(self.message)


def _valid_date(form, field) -> None:
    if field.data and parse_date(field.data) is None:
        raise ValidationError("Date invalide (exemple : 05/10/2026).")


def _whole(low: int, high: int):
    def check(form, field) -> None:
        if not field.data:
            return
        if not field.data.isdigit() or not low <= int(field.data) <= high:
            raise ValidationError(f"Un nombre entier de {low} à {high}.")
    return check


def _month(value: Any) -> Any:
    """``10/2026`` (typed where the browser has no month field) → ``2026-10``."""
    value = _strip(value)
    match = _MONTH_FR.match(value) if isinstance(value, str) else None
    return f"{match.group(2)}-{int(match.group(1)):02d}" if match else value


def _amount_text(value: Any) -> Any:
    return re.sub(r"[\s\u00a0\u202f€]", "", value) if isinstance(value, str) else value


def _date_field(label: str, required: str) -> StringField:
    return StringField(label, filters=[_strip], widget=DateInput(),
                       validators=[DataRequired(required), _valid_date],
                       render_kw={"autocomplete": "off"})


# --- parents: a period -----------------------------------------------------------------------


class PeriodForm(FlaskForm):
    """The same days of the week, over a period, for one or several children at once."""

    children = SelectMultipleField("Enfants", choices=[], validate_choice=False, validators=[
        DataRequired("Cochez au moins un enfant."), _Among("Cet enfant n'est pas de votre "
                                                           "foyer.")])
    activity = SelectField("Activité", choices=[], validate_choice=False, validators=[
        DataRequired("Choisissez une activité."), _Among("Choisissez une activité de la "
                                                         "liste.")])
    start = _date_field("Du", "Indiquez le premier jour de la période.")
    end = _date_field("Au", "Indiquez le dernier jour de la période.")
    weekdays = SelectMultipleField("Jours de la semaine", choices=WEEKDAY_CHOICES,
                                   validate_choice=False, validators=[
                                       DataRequired("Cochez au moins un jour de la semaine."),
                                       _Among("Jour de la semaine inconnu.")])

    def validate(self, extra_validators=None) -> bool:
        ok = super().validate(extra_validators)
        start, end = parse_date(self.start.data), parse_date(self.end.data)
        if start and end and not self.end.errors:
            if end < start:
                self.end.errors = [*self.end.errors, "La fin doit suivre le début."]
                ok = False
            elif (end - start).days > MAX_SPAN_DAYS:
                self.end.errors = [*self.end.errors, "Une période dure au plus un an."]
                ok = False
        return ok

    def period(self) -> dict[str, Any]:
        start, end = parse_date(self.start.data), parse_date(self.end.data)
        assert start and end
        return {"from": start.isoformat(), "to": end.isoformat(),
                "weekdays": sorted({int(d) for d in self.weekdays.data})}

    @staticmethod
    def api_field(key: str) -> str | None:
        """The form's field for an error of ``POST .../basket/items``."""
        return {"period.from": "start", "period.to": "end", "period.weekdays": "weekdays",
                "activity_id": "activity", "child_id": "children", "dates": "start"}.get(key)


# --- agents: an activity ---------------------------------------------------------------------


def _deadline_fields(what: str) -> tuple[SelectField, StringField, SelectField, StringField]:
    """A deadline rule in the three forms communes use: kind, days, weekday, time."""
    return (
        SelectField("Règle", choices=DEADLINE_KINDS, validate_choice=False,
                    validators=[_Among(f"Règle de date limite {what} inconnue.")]),
        StringField("Nombre de jours", filters=[_strip], validators=[Optional(), _whole(0, 366)],
                    render_kw=_NUMBER_KW),
        SelectField("Jour de la semaine précédente", choices=WEEKDAY_CHOICES,
                    validate_choice=False, validators=[_Among("Jour inconnu.")]),
        StringField("Heure", filters=[_strip], widget=TimeInput(), validators=[
            Optional(), Regexp(r"^([01]\d|2[0-3]):[0-5]\d$",
                               message="Heure invalide (exemple : 09:00).")]),
    )


class _ActivityFields(FlaskForm):
    label = StringField("Libellé", filters=[_strip], validators=[
        DataRequired("Indiquez le libellé."), Length(max=200, message="Au plus 200 caractères.")])
    unit_price = StringField("Prix unitaire (référence pour la facturation)",
                             filters=[_amount_text], validators=[
                                 DataRequired("Indiquez le prix unitaire."),
                                 Regexp(_AMOUNT, message="Montant invalide (par exemple 4,10).")],
                             render_kw={"inputmode": "decimal", "autocomplete": "off"})
    payment_mode = SelectField("Paiement", choices=PAYMENT_CHOICES, validate_choice=False,
                               validators=[_Among("Mode de paiement inconnu.")])
    capacity = StringField("Capacité (places par jour)", filters=[_strip],
                           validators=[Optional(), _whole(1, 100000)], render_kw=_NUMBER_KW)
    waiting_list_size = StringField("Taille de la liste d'attente", filters=[_strip],
                                    validators=[Optional(), _whole(0, 1000)],
                                    render_kw=_NUMBER_KW)
    booking_kind, booking_days, booking_weekday, booking_time = _deadline_fields(
        "de réservation")
    cancellation_kind, cancellation_days, cancellation_weekday, cancellation_time = (
        _deadline_fields("d'annulation"))
    late_cancellation = SelectField("Après la date limite d'annulation", choices=LATE_CHOICES,
                                    validate_choice=False, validators=[_Among("Choix inconnu.")])
    active = BooleanField("Activité proposée aux familles")

    def validate(self, extra_validators=None) -> bool:
        ok = super().validate(extra_validators)
        for prefix in ("booking", "cancellation"):
            kind = self[f"{prefix}_kind"].data
            if not kind:
                continue
            if kind != "weekly" and not self[f"{prefix}_days"].data:
                self[f"{prefix}_days"].errors = [*self[f"{prefix}_days"].errors,
                                                 "Indiquez le nombre de jours."]
                ok = False
            if not self[f"{prefix}_time"].data:
                self[f"{prefix}_time"].errors = [*self[f"{prefix}_time"].errors,
                                                 "Indiquez l'heure (exemple : 09:00)."]
                ok = False
        if self.waiting_list_size.data not in (None, "", "0") and not self.capacity.data:
            self.waiting_list_size.errors = [*self.waiting_list_size.errors,
                                             "Une liste d'attente suppose une capacité."]
            ok = False
        return ok

    def _rule(self, prefix: str) -> dict[str, Any] | None:
        kind = self[f"{prefix}_kind"].data
        if not kind:
            return None
        rule: dict[str, Any] = {"kind": kind, "time": self[f"{prefix}_time"].data}
        if kind == "weekly":
            rule["weekday"] = int(self[f"{prefix}_weekday"].data or 1)
        else:
            rule["days"] = int(self[f"{prefix}_days"].data)
        return rule

    def payload(self) -> dict[str, Any]:
        price = Decimal(self.unit_price.data.replace(",", "."))
        return {
            "label": self.label.data,
            "unit_price": f"{price:.2f}",
            "payment_mode": self.payment_mode.data,
            "capacity": int(self.capacity.data) if self.capacity.data else None,
            "waiting_list_size": int(self.waiting_list_size.data or 0),
            "booking_deadline": self._rule("booking"),
            "cancellation_deadline": self._rule("cancellation"),
            "late_cancellation": self.late_cancellation.data,
            "active": bool(self.active.data),
        }

    @staticmethod
    def api_field(key: str) -> str | None:
        """``booking_deadline.time`` → ``booking_time``; ``calendar.weekdays`` → ``weekdays``."""
        parts = key.split(".")
        if parts[0] in ("booking_deadline", "cancellation_deadline"):
            prefix = parts[0].split("_")[0]
            return f"{prefix}_{parts[1]}" if len(parts) > 1 else f"{prefix}_kind"
        if parts[0] == "calendar":
            return "weekdays"
        return parts[0]

    @classmethod
    def from_activity(cls, activity: dict[str, Any], **kwargs: Any) -> _ActivityFields:
        """The form filled with an activity as the API gives it (a POST takes precedence)."""
        data: dict[str, Any] = {
            "label": activity.get("label"),
            "unit_price": str(activity.get("unit_price") or "").replace(".", ","),
            "payment_mode": activity.get("payment_mode"),
            "capacity": "" if activity.get("capacity") is None else str(activity["capacity"]),
            "waiting_list_size": str(activity.get("waiting_list_size") or 0),
            "late_cancellation": activity.get("late_cancellation") or "refuse",
            "active": activity.get("active") is not False,
        }
        for prefix in ("booking", "cancellation"):
            rule = activity.get(f"{prefix}_deadline")
            rule = rule if isinstance(rule, dict) else {}
            data[f"{prefix}_kind"] = rule.get("kind") or ""
            data[f"{prefix}_days"] = "" if rule.get("days") is None else str(rule["days"])
            data[f"{prefix}_weekday"] = str(rule.get("weekday") or 4)
            data[f"{prefix}_time"] = rule.get("time") or ""
        return cls(data=data, **kwargs)


class ActivityForm(_ActivityFields):
    """Editing an activity (PATCH): its rules, not where nor for which service it is."""


class NewActivityForm(_ActivityFields):
    """Creating an activity (POST): also its service, its site, its code and its days."""

    service_id = SelectField("Service", choices=[], validate_choice=False, validators=[
        DataRequired("Choisissez le service."), _Among("Choisissez un service de la liste.")])
    site_id = SelectField("Site", choices=[], validate_choice=False, validators=[
        DataRequired("Choisissez le site."), _Among("Choisissez un site de la liste.")])
    code = StringField("Code", filters=[_strip, lambda v: v.upper() if v else v], validators=[
        DataRequired("Indiquez un code court, par exemple REPAS."),
        Length(max=40, message="Au plus 40 caractères.")],
        render_kw={"autocomplete": "off", "spellcheck": "false"})
    weekdays = SelectMultipleField("Jours d'ouverture", choices=WEEKDAY_CHOICES,
                                   validate_choice=False, validators=[
                                       DataRequired("Cochez au moins un jour d'ouverture."),
                                       _Among("Jour de la semaine inconnu.")])

    def payload(self) -> dict[str, Any]:
        body = super().payload()
        body.update(service_id=self.service_id.data, site_id=self.site_id.data,
                    code=self.code.data,
                    calendar={"weekdays": sorted({int(d) for d in self.weekdays.data})})
        if body["booking_deadline"] is None:
            body.pop("booking_deadline")
        if body["cancellation_deadline"] is None:
            body.pop("cancellation_deadline")
        return body


# --- agents: locking a month -------------------------------------------------------------------


class LockForm(FlaskForm):
    month = StringField("Mois à verrouiller", filters=[_month], widget=MonthInput(),
                        validators=[DataRequired("Indiquez le mois (exemple : 10/2026)."),
                                    Regexp(r"^\d{4}-(0[1-9]|1[0-2])$",
                                           message="Mois invalide (exemple : 10/2026).")],
                        render_kw={"autocomplete": "off"})
