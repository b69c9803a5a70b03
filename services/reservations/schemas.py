"""Reservations' HTTP payloads (marshmallow), with French validation messages.

Amounts travel as strings in euros with two decimals (``"4.10"``) and are held as cents;
dates are ISO; deadlines are ISO datetimes with the commune's offset (``+01:00``/``+02:00``).
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from services.common.fields import REQUIRED, UUID_PATTERN, Text

from .domain.deadlines import KINDS as DEADLINE_KINDS
from .domain.opening import PUBLIC_HOLIDAY_MODES, SCHOOL_HOLIDAY_MODES, ZONES
from .domain.rules import (
    ATTENDANCE,
    CLASSES,
    ENROLMENT_MODES,
    LATE_CANCELLATION,
    PAYMENT_MODES,
    STATES,
    WAITING_LIST_MODES,
)

_UUID = UUID_PATTERN
_TIME = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
MAX_SPAN_DAYS = 366



def text(max_length: int, **kwargs) -> Text:
    kwargs.setdefault("error_messages", REQUIRED)
    return Text(validate=validate.Length(max=max_length, error=f"Au plus {max_length} "
                                                                "caractères."), **kwargs)


class Id(fields.String):
    default_error_messages = {"invalid_id": "Identifiant invalide."}

    def _deserialize(self, value, attr, data, **kwargs):
        value = super()._deserialize(value, attr, data, **kwargs)
        if not _UUID.match(value):
            raise self.make_error("invalid_id")
        return value.lower()


class Amount(fields.Field):
    """``"4.10"`` in, cents out (at most two decimals, not negative)."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ValidationError('Montant invalide : une chaîne comme "4.10".')
        try:
            amount = Decimal(str(value).strip().replace(",", "."))
        except InvalidOperation as exc:
            raise ValidationError('Montant invalide : une chaîne comme "4.10".') from exc
        if not amount.is_finite() or amount < 0 or amount != amount.quantize(Decimal("0.01")):
            raise ValidationError("Montant invalide : positif, au plus deux décimales.")
        if amount > Decimal("100000"):
            raise ValidationError("Montant trop élevé.")
        return int(amount * 100)


class Money(fields.String):
    """Cents out as the contract's amount string."""

    def _serialize(self, value, attr, obj, **kwargs):
        if value is None:
            return None
        return str((Decimal(int(value)) / 100).quantize(Decimal("0.01")))


def weekday_field(**kwargs) -> fields.Integer:
    return fields.Integer(strict=True, validate=validate.Range(
        min=1, max=7, error="Jour de la semaine de 1 (lundi) à 7 (dimanche)."), **kwargs)


# --- configuration ----------------------------------------------------------------------------

class DeadlineRuleSchema(Schema):
    """A deadline rule: ``{"kind": "days_before", "days": 1, "time": "09:00"}`` (la veille à
    9 h), ``{"kind": "working_days_before", "days": 2, "time": "12:00"}``, or
    ``{"kind": "weekly", "weekday": 4, "time": "12:00"}`` (le jeudi à midi pour la semaine
    suivante)."""

    kind = fields.String(required=True, validate=validate.OneOf(DEADLINE_KINDS),
                         error_messages=REQUIRED)
    days = fields.Integer(strict=True, validate=validate.Range(min=0, max=366))
    weekday = weekday_field()
    time = fields.String(required=True, validate=validate.Regexp(
        _TIME, error="Heure invalide (format HH:MM)."), error_messages=REQUIRED)

    @validates_schema
    def _shape(self, data, **kwargs):
        if data["kind"] == "weekly":
            if "weekday" not in data:
                raise ValidationError("Indiquez le jour de la semaine (1 à 7).", "weekday")
        elif "days" not in data:
            raise ValidationError("Indiquez le nombre de jours.", "days")


class DeadlineOutSchema(Schema):
    kind = fields.String()
    days = fields.Integer()
    weekday = fields.Integer()
    time = fields.String()


class PeriodSchema(Schema):
    from_ = fields.Date(data_key="from", required=True, error_messages=REQUIRED)
    to = fields.Date(required=True, error_messages=REQUIRED)

    @validates_schema
    def _order(self, data, **kwargs):
        if data["to"] < data["from_"]:
            raise ValidationError("La fin doit suivre le début.", "to")


class OpeningSchema(Schema):
    weekdays = fields.List(weekday_field(), required=True, validate=validate.Length(
        min=1, error="Au moins un jour d'ouverture."), error_messages=REQUIRED)
    periods = fields.List(fields.Nested(PeriodSchema), load_default=list)
    school_holidays = fields.String(load_default="closed",
                                    validate=validate.OneOf(SCHOOL_HOLIDAY_MODES),
                                    metadata={"description": "closed (fermé pendant les "
                                              "vacances scolaires), open, only"})
    public_holidays = fields.String(load_default="closed",
                                    validate=validate.OneOf(PUBLIC_HOLIDAY_MODES))


class EligibilitySchema(Schema):
    min_age = fields.Integer(load_default=None, allow_none=True,
                             validate=validate.Range(min=0, max=25))
    max_age = fields.Integer(load_default=None, allow_none=True,
                             validate=validate.Range(min=0, max=25))
    min_class = fields.String(load_default=None, allow_none=True,
                              validate=validate.OneOf(CLASSES))
    max_class = fields.String(load_default=None, allow_none=True,
                              validate=validate.OneOf(CLASSES))

    @validates_schema
    def _ranges(self, data, **kwargs):
        low, high = data.get("min_age"), data.get("max_age")
        if low is not None and high is not None and high < low:
            raise ValidationError("L'âge maximum doit être au moins l'âge minimum.", "max_age")
        low, high = data.get("min_class"), data.get("max_class")
        if low and high and CLASSES.index(high) < CLASSES.index(low):
            raise ValidationError("La classe maximum doit suivre la classe minimum.",
                                  "max_class")


class ServiceInSchema(Schema):
    name = text(200, required=True)
    kind = text(40, load_default=None, allow_none=True)
    enrolment_mode = fields.String(load_default="automatic",
                                   validate=validate.OneOf(ENROLMENT_MODES),
                                   metadata={"description": "automatic : inscription validée "
                                             "d'office ; validated : un agent valide"})


class ServiceSchema(Schema):
    id = fields.String()
    name = fields.String()
    kind = fields.String(allow_none=True)
    enrolment_mode = fields.String()


class SiteInSchema(Schema):
    name = text(200, required=True)
    address = text(300, load_default=None, allow_none=True)


class SiteSchema(Schema):
    id = fields.String()
    name = fields.String()
    address = fields.String(allow_none=True)


class ActivityInSchema(Schema):
    service_id = Id(required=True, error_messages=REQUIRED)
    site_id = Id(required=True, error_messages=REQUIRED)
    code = text(40, required=True)
    label = text(200, required=True)
    payment_mode = fields.String(required=True, validate=validate.OneOf(PAYMENT_MODES),
                                 error_messages=REQUIRED)
    unit_price = Amount(required=True, error_messages=REQUIRED,
                        metadata={"type": "string", "example": "4.10"})
    capacity = fields.Integer(load_default=None, allow_none=True,
                              validate=validate.Range(min=1, max=100000))
    waiting_list_size = fields.Integer(load_default=0, validate=validate.Range(min=0, max=1000))
    waiting_list_mode = fields.String(load_default="automatic",
                                      validate=validate.OneOf(WAITING_LIST_MODES),
                                      metadata={"description": "automatic : le premier de la "
                                                "liste obtient la place ; offer : une place lui "
                                                "est proposée, à accepter avant offer_hours"})
    offer_hours = fields.Integer(load_default=24, validate=validate.Range(min=1, max=720))
    eligibility = fields.Nested(EligibilitySchema, load_default=dict)
    booking_deadline = fields.Nested(DeadlineRuleSchema, load_default=None, allow_none=True)
    cancellation_deadline = fields.Nested(DeadlineRuleSchema, load_default=None,
                                          allow_none=True)
    late_cancellation = fields.String(load_default="refuse",
                                      validate=validate.OneOf(LATE_CANCELLATION),
                                      metadata={"description": "après la date limite : refuse "
                                                "(refusée) ou request (demande à un agent)"})
    calendar = fields.Nested(OpeningSchema, required=True, error_messages=REQUIRED)
    active = fields.Boolean(load_default=True)

    @validates_schema
    def _waiting_list(self, data, **kwargs):
        if data.get("waiting_list_size") and "capacity" in data and data["capacity"] is None:
            raise ValidationError("Une liste d'attente suppose une capacité.",
                                  "waiting_list_size")


class OpeningOutSchema(Schema):
    weekdays = fields.List(fields.Integer())
    periods = fields.List(fields.Dict())
    school_holidays = fields.String()
    public_holidays = fields.String()


class EligibilityOutSchema(Schema):
    min_age = fields.Integer(allow_none=True)
    max_age = fields.Integer(allow_none=True)
    min_class = fields.String(allow_none=True)
    max_class = fields.String(allow_none=True)
    label = fields.String(allow_none=True)


class ActivitySchema(Schema):
    id = fields.String()
    code = fields.String()
    label = fields.String()
    service_id = fields.String()
    service_name = fields.String()
    site_id = fields.String()
    site_name = fields.String()
    payment_mode = fields.String()
    unit_price = Money(attribute="unit_price_cents")
    capacity = fields.Integer(allow_none=True)
    waiting_list_size = fields.Integer()
    waiting_list_mode = fields.String()
    offer_hours = fields.Integer()
    eligibility = fields.Nested(EligibilityOutSchema)
    booking_deadline = fields.Nested(DeadlineOutSchema, allow_none=True)
    booking_deadline_label = fields.String()
    cancellation_deadline = fields.Nested(DeadlineOutSchema, allow_none=True)
    cancellation_deadline_label = fields.String()
    late_cancellation = fields.String()
    calendar = fields.Nested(OpeningOutSchema)
    active = fields.Boolean()


class ActivityPageSchema(Schema):
    items = fields.List(fields.Nested(ActivitySchema))
    services = fields.List(fields.Nested(ServiceSchema))
    sites = fields.List(fields.Nested(SiteSchema))
    next = fields.String(allow_none=True)


class ActivityQuerySchema(Schema):
    service = Id(load_default=None)
    site = Id(load_default=None)
    include_inactive = fields.Boolean(load_default=False)


# --- calendar of the commune ------------------------------------------------------------------

class CalendarSettingsInSchema(Schema):
    zone = fields.String(required=True, validate=validate.OneOf(ZONES), error_messages=REQUIRED,
                         metadata={"description": "zone de vacances scolaires : A, B ou C"})


class SchoolYearInSchema(Schema):
    label = fields.String(required=True, validate=validate.Regexp(
        r"^\d{4}-\d{4}$", error="Format attendu : 2026-2027."), error_messages=REQUIRED)
    starts_on = fields.Date(required=True, error_messages=REQUIRED)
    ends_on = fields.Date(required=True, error_messages=REQUIRED)

    @validates_schema
    def _order(self, data, **kwargs):
        if data["ends_on"] <= data["starts_on"]:
            raise ValidationError("La fin doit suivre le début.", "ends_on")
        if (data["ends_on"] - data["starts_on"]).days > MAX_SPAN_DAYS:
            raise ValidationError("Une année scolaire dure au plus un an.", "ends_on")


class SchoolYearSchema(Schema):
    id = fields.String()
    label = fields.String()
    starts_on = fields.Date()
    ends_on = fields.Date()


class ExceptionInSchema(Schema):
    kind = fields.String(required=True, validate=validate.OneOf(("closure", "opening")),
                         error_messages=REQUIRED)
    from_ = fields.Date(data_key="from", required=True, error_messages=REQUIRED)
    to = fields.Date(load_default=None, allow_none=True)
    label = text(200, required=True)
    service_id = Id(load_default=None, allow_none=True)
    site_id = Id(load_default=None, allow_none=True)
    activity_id = Id(load_default=None, allow_none=True)

    @validates_schema
    def _order(self, data, **kwargs):
        if data.get("to") and data["to"] < data["from_"]:
            raise ValidationError("La fin doit suivre le début.", "to")
        if data.get("to") and (data["to"] - data["from_"]).days > MAX_SPAN_DAYS:
            raise ValidationError("Au plus un an.", "to")


class ExceptionSchema(Schema):
    id = fields.String()
    kind = fields.String()
    from_ = fields.Date(data_key="from", attribute="starts_on")
    to = fields.Date(attribute="ends_on")
    label = fields.String()
    service_id = fields.String(allow_none=True)
    site_id = fields.String(allow_none=True)
    activity_id = fields.String(allow_none=True)


class CalendarSettingsSchema(Schema):
    zone = fields.String()
    school_years = fields.List(fields.Nested(SchoolYearSchema))
    exceptions = fields.List(fields.Nested(ExceptionSchema))


class SpanQuerySchema(Schema):
    from_ = fields.Date(data_key="from", load_default=None)
    to = fields.Date(load_default=None)


class CalendarDaySchema(Schema):
    date = fields.Date()
    public_holiday = fields.String(allow_none=True)
    school_holiday = fields.String(allow_none=True)
    school_year = fields.String(allow_none=True)
    exceptions = fields.List(fields.Nested(ExceptionSchema))


class CalendarDaysSchema(Schema):
    zone = fields.String()
    days = fields.List(fields.Nested(CalendarDaySchema))


# --- enrolments -------------------------------------------------------------------------------

class EnrolmentInSchema(Schema):
    child_id = Id(required=True, error_messages=REQUIRED)
    service_id = Id(required=True, error_messages=REQUIRED)
    school_year_id = Id(required=True, error_messages=REQUIRED)


class EnrolmentSchema(Schema):
    id = fields.String()
    child_id = fields.String()
    child_first_name = fields.String(allow_none=True)
    child_last_name = fields.String(allow_none=True)
    family_id = fields.String()
    service_id = fields.String()
    service_name = fields.String()
    school_year_id = fields.String()
    school_year = fields.String()
    status = fields.String(metadata={"description": "pending, validated ou refused"})
    message = fields.String(allow_none=True)
    created_at = fields.DateTime()
    decided_at = fields.DateTime(allow_none=True)


class EnrolmentPageSchema(Schema):
    items = fields.List(fields.Nested(EnrolmentSchema))
    next = fields.String(allow_none=True)


class EnrolmentQuerySchema(Schema):
    status = fields.String(load_default=None,
                           validate=validate.OneOf(("pending", "validated", "refused")))
    child_id = Id(load_default=None)
    service_id = Id(load_default=None)


class DecisionSchema(Schema):
    accept = fields.Boolean(required=True, error_messages=REQUIRED)
    message = text(2000, load_default=None, allow_none=True)


# --- calendar of a child ----------------------------------------------------------------------

class ChildCalendarQuerySchema(SpanQuerySchema):
    activity = Id(load_default=None)


class WaitingInfoSchema(Schema):
    id = fields.String()
    position = fields.Integer()
    status = fields.String(metadata={"description": "waiting ou offered"})
    offer_expires_at = fields.DateTime(allow_none=True)


class CellSchema(Schema):
    activity_id = fields.String()
    state = fields.String(metadata={"description": " | ".join(STATES)})
    can_book = fields.Boolean()
    can_cancel = fields.Boolean()
    deadline = fields.DateTime(allow_none=True, metadata={
        "description": "date limite de réservation (jour libre), d'annulation (jour "
                       "réservé) ou de paiement (en attente de paiement)"})
    booking_id = fields.String(allow_none=True)
    reason = fields.String(allow_none=True, metadata={"description": "pourquoi ce n'est pas "
                                                      "possible, en français"})
    cancel_mode = fields.String(allow_none=True,
                                metadata={"description": "immediate ou request"})
    can_wait = fields.Boolean(metadata={"description": "complet, mais la liste d'attente a "
                                        "de la place"})
    waiting_list = fields.Nested(WaitingInfoSchema, allow_none=True)


class CalendarDayCellsSchema(Schema):
    date = fields.Date()
    activities = fields.List(fields.Nested(CellSchema))


class CalendarActivitySchema(Schema):
    id = fields.String()
    code = fields.String()
    label = fields.String()
    service_id = fields.String()
    service_name = fields.String()
    site_id = fields.String()
    site_name = fields.String()
    payment_mode = fields.String()
    unit_price = Money(attribute="unit_price_cents")
    booking_deadline_label = fields.String()
    cancellation_deadline_label = fields.String()


class ChildCalendarSchema(Schema):
    child_id = fields.String()
    child_first_name = fields.String()
    from_ = fields.Date(data_key="from")
    to = fields.Date()
    activities = fields.List(fields.Nested(CalendarActivitySchema))
    days = fields.List(fields.Nested(CalendarDayCellsSchema))


# --- basket -----------------------------------------------------------------------------------

class PatternSchema(Schema):
    from_ = fields.Date(data_key="from", required=True, error_messages=REQUIRED)
    to = fields.Date(required=True, error_messages=REQUIRED)
    weekdays = fields.List(weekday_field(), required=True, validate=validate.Length(
        min=1, error="Au moins un jour de la semaine."), error_messages=REQUIRED)

    @validates_schema
    def _order(self, data, **kwargs):
        if data["to"] < data["from_"]:
            raise ValidationError("La fin doit suivre le début.", "to")
        if (data["to"] - data["from_"]).days > MAX_SPAN_DAYS:
            raise ValidationError("Au plus un an.", "to")


class BasketItemInSchema(Schema):
    child_id = Id(required=True, error_messages=REQUIRED)
    activity_id = Id(required=True, error_messages=REQUIRED)
    dates = fields.List(fields.Date(), validate=validate.Length(
        min=1, max=400, error="Entre 1 et 400 dates."))
    period = fields.Nested(PatternSchema)

    @validates_schema
    def _one_of(self, data, **kwargs):
        if ("dates" in data) == ("period" in data):
            raise ValidationError("Donnez soit des dates, soit une période.", "dates")


class BasketLineSchema(Schema):
    id = fields.String()
    child_id = fields.String()
    child_first_name = fields.String()
    activity_id = fields.String()
    activity_label = fields.String()
    service_name = fields.String()
    site_name = fields.String()
    payment_mode = fields.String()
    pay_now = fields.Boolean(metadata={"description": "vrai pour une activité prépayée : "
                                       "payée à la validation du panier"})
    unit_price = Money(attribute="unit_price_cents")
    dates = fields.List(fields.Date())
    count = fields.Integer()
    amount = Money(attribute="amount_cents")


class SkippedSchema(Schema):
    date = fields.String()
    rule = fields.String()
    message = fields.String()


class BasketSchema(Schema):
    id = fields.String(allow_none=True)
    status = fields.String()
    items = fields.List(fields.Nested(BasketLineSchema))
    total = Money(attribute="total_cents")
    to_pay_now = Money(attribute="to_pay_now_cents")
    to_invoice = Money(attribute="to_invoice_cents")
    hold_minutes = fields.Integer()
    added = fields.List(fields.Date())
    skipped = fields.List(fields.Nested(SkippedSchema))


class CheckoutInSchema(Schema):
    basket_id = Id(load_default=None, allow_none=True, metadata={
        "description": "le panier à valider (par défaut le panier ouvert ; un panier déjà "
                       "validé redonne la même réponse)"})
    return_url = fields.Url(load_default=None, allow_none=True, require_tld=False,
                            schemes={"http", "https"})


class BookingSchema(Schema):
    id = fields.String()
    child_id = fields.String()
    child_first_name = fields.String()
    activity_id = fields.String()
    activity_label = fields.String()
    date = fields.Date()
    status = fields.String(metadata={"description": "pending_payment, confirmed, cancelled, "
                                     "released"})
    state = fields.String(metadata={"description": "l'état tel que le calendrier le montre"})
    payment_mode = fields.String()
    unit_price = Money(attribute="unit_price_cents")
    basket_id = fields.String(allow_none=True)
    hold_expires_at = fields.DateTime(allow_none=True)
    attendance = fields.String(allow_none=True)
    cancellation_id = fields.String(allow_none=True)
    cancellation_pending = fields.Boolean()
    refund = Money(attribute="refund_cents")
    source = fields.String()
    created_at = fields.DateTime()
    confirmed_at = fields.DateTime(allow_none=True)
    ended_at = fields.DateTime(allow_none=True)


class WaitingEntrySchema(Schema):
    id = fields.String()
    child_id = fields.String()
    child_first_name = fields.String()
    activity_id = fields.String()
    activity_label = fields.String()
    date = fields.Date()
    status = fields.String(metadata={"description": "waiting, offered, promoted, lapsed, "
                                     "withdrawn"})
    position = fields.Integer(allow_none=True)
    offer_expires_at = fields.DateTime(allow_none=True)
    booking_id = fields.String(allow_none=True)
    created_at = fields.DateTime()


class CheckoutSchema(Schema):
    status = fields.String(metadata={"description": "confirmed ou payment_required"})
    basket_id = fields.String()
    bookings = fields.List(fields.Nested(BookingSchema))
    waiting_list = fields.List(fields.Nested(WaitingEntrySchema))
    payment_url = fields.String()
    payment_id = fields.String()
    amount = Money(attribute="amount_cents")
    hold_expires_at = fields.DateTime(allow_none=True)


class BasketRecordSchema(CheckoutSchema):
    basket_status = fields.String(metadata={"description": "open, checked_out, paid, "
                                            "confirmed, expired, failed"})


# --- bookings and cancellations ---------------------------------------------------------------

class BookingQuerySchema(SpanQuerySchema):
    child_id = Id(load_default=None)
    activity = Id(load_default=None)
    status = fields.String(load_default=None, validate=validate.OneOf(
        ("pending_payment", "confirmed", "cancelled", "released")))
    cursor = fields.String(load_default=None)


class BookingPageSchema(Schema):
    items = fields.List(fields.Nested(BookingSchema))
    next = fields.String(allow_none=True)


class CancellationInSchema(Schema):
    booking_ids = fields.List(Id(), required=True, validate=validate.Length(
        min=1, max=400, error="Entre 1 et 400 réservations."), error_messages=REQUIRED)
    reason = text(2000, load_default=None, allow_none=True)


class CancellationSchema(Schema):
    id = fields.String()
    child_id = fields.String()
    child_first_name = fields.String()
    family_id = fields.String()
    activity_id = fields.String()
    activity_label = fields.String()
    booking_ids = fields.List(fields.String())
    dates = fields.List(fields.String())
    reason = fields.String(allow_none=True)
    status = fields.String(metadata={"description": "done (annulée aussitôt), pending, "
                                     "accepted, refused"})
    within_deadline = fields.Boolean()
    refund = Money(attribute="refund_cents")
    created_at = fields.DateTime()
    decided_at = fields.DateTime(allow_none=True)
    agent_message = fields.String(allow_none=True)


class CancellationResultSchema(Schema):
    cancelled = fields.List(fields.Nested(BookingSchema))
    requests = fields.List(fields.Nested(CancellationSchema))
    cancellations = fields.List(fields.Nested(CancellationSchema))
    already_cancelled = fields.List(fields.String())
    refund_due = Money(attribute="refund_cents")


class CancellationQuerySchema(Schema):
    status = fields.String(load_default=None, validate=validate.OneOf(
        ("done", "pending", "accepted", "refused")))
    cursor = fields.String(load_default=None)


class CancellationPageSchema(Schema):
    items = fields.List(fields.Nested(CancellationSchema))
    next = fields.String(allow_none=True)


class WaitingQuerySchema(Schema):
    child_id = Id(load_default=None)
    activity = Id(load_default=None)
    status = fields.String(load_default=None, validate=validate.OneOf(
        ("waiting", "offered", "promoted", "lapsed", "withdrawn")))


class WaitingPageSchema(Schema):
    items = fields.List(fields.Nested(WaitingEntrySchema))
    next = fields.String(allow_none=True)


# --- attendance, occupancy --------------------------------------------------------------------

class AttendanceQuerySchema(Schema):
    site = Id(required=True, error_messages=REQUIRED)
    date = fields.Date(required=True, error_messages=REQUIRED)


class MarkSchema(Schema):
    child_id = Id(required=True, error_messages=REQUIRED)
    activity_id = Id(required=True, error_messages=REQUIRED)
    status = fields.String(required=True, validate=validate.OneOf(ATTENDANCE),
                           error_messages=REQUIRED)


class AttendanceInSchema(Schema):
    marks = fields.List(fields.Nested(MarkSchema), required=True, validate=validate.Length(
        min=1, max=2000), error_messages=REQUIRED)


class AttendanceLineSchema(Schema):
    booking_id = fields.String()
    child_id = fields.String()
    first_name = fields.String()
    last_name = fields.String(allow_none=True)
    class_name = fields.String(allow_none=True)
    school = fields.String(allow_none=True)
    allergies = fields.Boolean(metadata={"description": "allergie / PAI signalé"})
    family_id = fields.String()
    activity_id = fields.String()
    activity_code = fields.String()
    activity_label = fields.String()
    status = fields.String(allow_none=True, metadata={"description": "present, absent, "
                                                      "excused, ou null (pas encore pointé)"})
    expected = fields.Boolean(metadata={"description": "faux pour un enfant ajouté au "
                                        "pointage sans réservation"})
    recorded_at = fields.DateTime(allow_none=True)


class AttendanceCountSchema(Schema):
    activity_id = fields.String()
    code = fields.String()
    label = fields.String()
    expected = fields.Integer()
    present = fields.Integer()
    absent = fields.Integer()
    excused = fields.Integer()
    unmarked = fields.Integer()
    allergies = fields.Integer()


class AttendanceSchema(Schema):
    site_id = fields.String()
    site_name = fields.String()
    date = fields.Date()
    locked = fields.Boolean()
    items = fields.List(fields.Nested(AttendanceLineSchema))
    totals = fields.List(fields.Nested(AttendanceCountSchema))
    next = fields.String(allow_none=True)


class LockInSchema(Schema):
    month = fields.String(required=True, validate=validate.Regexp(
        _MONTH, error="Format attendu : AAAA-MM."), error_messages=REQUIRED)


class LockSchema(Schema):
    month = fields.String()
    locked_at = fields.DateTime()


class LockPageSchema(Schema):
    items = fields.List(fields.Nested(LockSchema))
    next = fields.String(allow_none=True)


class OccupancyQuerySchema(SpanQuerySchema):
    activity = Id(load_default=None)
    site = Id(load_default=None)


class OccupancyLineSchema(Schema):
    activity_id = fields.String()
    activity_label = fields.String()
    site_id = fields.String()
    date = fields.Date()
    capacity = fields.Integer(allow_none=True)
    booked = fields.Integer(metadata={"description": "réservations confirmées"})
    pending_payment = fields.Integer()
    offered = fields.Integer()
    waiting = fields.Integer()
    available = fields.Integer(allow_none=True)
    present = fields.Integer()
    absent = fields.Integer()
    excused = fields.Integer()


class OccupancyPageSchema(Schema):
    items = fields.List(fields.Nested(OccupancyLineSchema))
    next = fields.String(allow_none=True)


class ChildQuerySchema(Schema):
    q = fields.String(load_default="")


class ChildSchema(Schema):
    id = fields.String()
    first_name = fields.String()
    last_name = fields.String()
    birth_date = fields.String()
    school = fields.String(allow_none=True)
    class_name = fields.String(allow_none=True)
    allergies = fields.Boolean()
    family_id = fields.String()
    family_name = fields.String(allow_none=True)


class ChildPageSchema(Schema):
    items = fields.List(fields.Nested(ChildSchema))
    next = fields.String(allow_none=True)


# --- PATCH bodies: the same fields, each optional (loaded with partial=True) -------------------

class ActivityPatchSchema(ActivityInSchema):
    pass


class ServicePatchSchema(ServiceInSchema):
    pass


class SitePatchSchema(SiteInSchema):
    pass
