"""The event catalogue of DESIGN section 5: one marshmallow schema per event type and version.

This module is the single place where the ``data`` object of every domain event is described.
The envelope (``services.common.events``) validates the data of each new event here before it
is written to the outbox, and every consumer validates what it receives here too.

Rules (DESIGN section 4, "Schema evolution"):

- An event type is ``<service>.<entity>.<verb>``; each type has numbered versions, starting at 1.
  ``SCHEMAS[type][version]`` is the schema class of that version.
- Within a version, only additive changes: a new *optional* field (``load_default``). Never
  remove or rename a field, make an optional field required, narrow an enumeration, or change
  a type or format: that is a breaking change, and a breaking change is a new version, added
  beside the old one and published in parallel until no consumer needs the old one.
- The publisher is strict (``validate(..., strict=True)``): unknown fields are refused, so a
  field that is not in the catalogue never reaches the bus; the data is returned unchanged.
- The consumer is lenient (``validate(..., strict=False)``): unknown fields are ignored, at
  every nesting level, so a consumer keeps working when a publisher adds a field; it gets the
  loaded data back, with python types (``datetime.date``, ``datetime.datetime``, ``Decimal``)
  and the defaults of absent optional fields filled in.
- Data is JSON as published: ids are UUIDs as strings (loaded as ``str``), dates are ISO
  ``YYYY-MM-DD``, datetimes ISO 8601 with a time zone, amounts are strings in euros with exactly
  two decimals (``"82.00"``; never a float), enumerations are lowercase strings.
- The commune an event belongs to travels in the envelope (``commune_id``), not in ``data``;
  ``data`` repeats a commune only where the catalogue says so (commune events, invitations,
  memberships).
- Events that notifications turns into e-mails to a family carry ``family_id`` and
  ``recipients`` (the e-mail addresses to write to, possibly empty), plus the few labels the
  message needs (child first name, activity name...), since notifications keeps no copy of
  other services' data.
- Snapshots that consumers keep as read models carry a ``version`` (int >= 1, incremented on
  each change): a consumer overwrites its copy only with a higher version, since order is not
  guaranteed on the bus.
"""

from __future__ import annotations

import json
import re
import uuid
from contextvars import ContextVar
from decimal import Decimal
from typing import Any

import marshmallow
from marshmallow import EXCLUDE, RAISE, Schema, ValidationError, fields, validate, validates_schema

__all__ = ["SCHEMAS", "InvalidEvent", "event_types", "schema_for", "validate"]


class InvalidEvent(ValueError):
    """Event data that does not match the catalogue (or an unknown type or version).

    ``errors`` holds the marshmallow messages keyed by field (``_schema`` for the whole object).
    A consumer never retries such an event: it goes to the dead-letter queue.
    """

    def __init__(self, event_type: str, version: Any, errors: dict[str, Any]):
        self.event_type = event_type
        self.version = version
        self.errors = errors
        super().__init__(f"événement {event_type} v{version} invalide : {errors}")


# --------------------------------------------------------------------------------------------
# Building blocks
# --------------------------------------------------------------------------------------------

# How unknown fields are treated by the load in progress, so that nested schemas follow the
# outermost one (marshmallow itself would apply each nested schema's own Meta.unknown).
_unknown_mode: ContextVar[str] = ContextVar("catalogue_unknown_mode", default=RAISE)


class EventSchema(Schema):
    """Base of every schema here (event data and their nested parts).

    ``load(..., unknown=...)`` applies the chosen mode at every nesting level.
    """

    class Meta:
        unknown = RAISE

    def load(self, data, *, many=None, partial=None, unknown=None):
        token = _unknown_mode.set(self.unknown if unknown is None else unknown)
        try:
            return super().load(data, many=many, partial=partial, unknown=unknown)
        finally:
            _unknown_mode.reset(token)


class _Nested(fields.Nested):
    """A nested schema that follows the unknown-field mode of the enclosing load."""

    def _deserialize(self, value, attr, data, partial=None, **kwargs):
        try:
            return self.schema.load(value, unknown=_unknown_mode.get(), partial=partial)
        except ValidationError as error:
            raise ValidationError(error.messages, valid_data=error.valid_data) from error


class _Boolean(fields.Boolean):
    """A JSON boolean: only ``true`` and ``false`` (not 1, "yes", "on"...)."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class _Date(fields.Date):
    """An ISO date string ``YYYY-MM-DD`` (loaded as ``datetime.date``)."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str) or not _ISO_DATE.match(value):
            raise self.make_error("invalid", input=value, obj_type=self.OBJ_TYPE)
        return super()._deserialize(value, attr, data, **kwargs)


class _AwareDateTime(fields.AwareDateTime):
    """An ISO 8601 datetime string with a time zone (loaded as an aware ``datetime``)."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str):
            raise self.make_error("invalid", input=value, obj_type=self.OBJ_TYPE)
        return super()._deserialize(value, attr, data, **kwargs)


_AMOUNT = re.compile(r"^(0|[1-9]\d*)\.\d{2}$")


class Amount(fields.Decimal):
    """An amount in euros: a string with exactly two decimals, never negative (``"82.00"``).

    Loaded as ``Decimal``. Floats, integers, ``"82.0"``, ``"82"``, ``"-1.00"`` are refused.
    """

    default_error_messages = {
        "amount": 'Not a valid amount: a string in euros with two decimals, such as "82.00".'
    }

    def __init__(self, **kwargs):
        super().__init__(places=2, as_string=True, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str) or not _AMOUNT.match(value):
            raise self.make_error("amount")
        return super()._deserialize(value, attr, data, **kwargs)


def _uuid_string(value: str) -> None:
    try:
        ok = str(uuid.UUID(value)) == value.lower()
    except (ValueError, AttributeError, TypeError):
        ok = False
    if not ok:
        raise ValidationError("Not a valid UUID string.")


def _unique(values: list) -> None:
    if len(set(values)) != len(values):
        raise ValidationError("Duplicate values.")


def _unique_ids(items: list[dict]) -> None:
    _unique([item["id"] for item in items])


def Id(**kwargs) -> fields.String:  # noqa: N802 (reads like a field class)
    """A UUID as a string, in its canonical form (loaded as ``str``)."""
    kwargs.setdefault("required", True)
    return fields.String(validate=_uuid_string, **kwargs)


def OptId() -> fields.String:  # noqa: N802
    return Id(required=False, allow_none=True, load_default=None)


def Ids(*, min_length: int = 1, **kwargs) -> fields.List:  # noqa: N802
    """A list of distinct UUID strings (at least one unless told otherwise)."""
    kwargs.setdefault("required", True)
    return fields.List(Id(), validate=[validate.Length(min=min_length), _unique], **kwargs)


def Text(**kwargs) -> fields.String:  # noqa: N802
    """A required, non-empty string."""
    kwargs.setdefault("required", True)
    return fields.String(validate=validate.Length(min=1), **kwargs)


def OptText() -> fields.String:  # noqa: N802
    return fields.String(load_default=None, allow_none=True)


def Dates(**kwargs) -> fields.List:  # noqa: N802
    """A non-empty list of distinct ISO dates."""
    kwargs.setdefault("required", True)
    return fields.List(_Date(), validate=[validate.Length(min=1), _unique], **kwargs)


def Recipients() -> fields.List:  # noqa: N802
    """The e-mail addresses notifications writes to (the family's guardians); may be empty."""
    return fields.List(fields.Email(), required=True)


def Version(**kwargs) -> fields.Integer:  # noqa: N802
    """Snapshot version, >= 1, incremented on each change (out-of-order protection)."""
    kwargs.setdefault("required", True)
    return fields.Integer(strict=True, validate=validate.Range(min=1), **kwargs)


def Url() -> fields.Url:  # noqa: N802
    # No TLD required: local and compose host names (http://localhost:8000, http://portal).
    return fields.Url(required=True, require_tld=False, schemes={"http", "https"})


def _same_length(data: dict, first: str, second: str) -> None:
    if len(data[first]) != len(data[second]):
        raise ValidationError(
            f"{first} and {second} must have the same length ({first}[i] is for {second}[i]).",
            second,
        )


# Enumerations shared by several events.
PAYMENT_MODES = ("prepaid", "monthly")
ATTENDANCE_STATUSES = ("present", "absent", "excused")
REQUEST_STATUSES = (
    "submitted",
    "in_progress",
    "waiting_for_family",
    "accepted",
    "refused",
    "closed",
)
REQUEST_CATEGORY_KINDS = ("absence_justification", "address_change", "allergy")
COMMUNE_MODULES = ("reservations", "invoices", "requests")
PAYMENT_FAILURE_STATUSES = ("denied", "cancelled", "expired", "error")
CREDIT_NOTE_ORIGINS = ("booking_cancellation", "invoice_correction", "manual")

SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")
TIMEZONE = re.compile(r"^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*$")
PERIOD = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


# --------------------------------------------------------------------------------------------
# Nested parts
# --------------------------------------------------------------------------------------------


class AddressSchema(EventSchema):
    line1 = Text()
    line2 = OptText()
    postal_code = Text()
    city = Text()


class RetentionSchema(EventSchema):
    """Addition (issue 8): how long the commune keeps what has no other legal period, in
    months; null (or absent) for the platform's default (audit log 12, sent e-mails 12,
    records of erasure requests 36)."""

    audit_log_months = fields.Integer(strict=True, load_default=None, allow_none=True,
                                      validate=validate.Range(min=1, max=120))
    notifications_months = fields.Integer(strict=True, load_default=None, allow_none=True,
                                          validate=validate.Range(min=1, max=120))
    erasure_records_months = fields.Integer(strict=True, load_default=None, allow_none=True,
                                            validate=validate.Range(min=1, max=120))


class CommuneSettingsSchema(EventSchema):
    timezone = fields.String(load_default="Europe/Paris", validate=validate.Regexp(TIMEZONE))
    modules = fields.List(
        fields.String(validate=validate.OneOf(COMMUNE_MODULES)), required=True, validate=_unique
    )
    contact_email = fields.Email(load_default=None, allow_none=True)
    phone = OptText()
    address = _Nested(AddressSchema, load_default=None, allow_none=True)
    # Additions (issue 3): the logo shown on the portal and the reference of the commune's
    # payment configuration held by billing.
    logo_url = fields.Url(load_default=None, allow_none=True)
    payment_config_ref = OptText()
    # Addition (issue 8): the commune's retention durations.
    retention = _Nested(RetentionSchema, load_default=None, allow_none=True)


class GuardianSchema(EventSchema):
    id = Id()
    first_name = Text()
    last_name = Text()
    email = fields.Email(load_default=None, allow_none=True)
    phones = fields.List(fields.String(validate=validate.Length(min=1)), load_default=list)
    pays = _Boolean(required=True)


class ChildSchema(EventSchema):
    id = Id()
    first_name = Text()
    last_name = Text()
    birth_date = _Date(required=True)
    school = OptText()
    class_name = OptText()
    allergies = _Boolean(required=True)


class FamilyCommuneSchema(EventSchema):
    commune_id = Id()
    slug = fields.String(required=True, validate=validate.Regexp(SLUG))
    family_code = Text()


class BasketLineSchema(EventSchema):
    child_id = Id()
    activity_id = Id()
    dates = Dates()
    unit_price = Amount(required=True)
    amount = Amount(required=True)
    # booking_ids[i] is the booking of dates[i] when given.
    booking_ids = Ids(min_length=0, required=False, load_default=list)
    activity_name = OptText()

    @validates_schema
    def _pairing(self, data, **kwargs):
        if data["booking_ids"]:
            _same_length(data, "dates", "booking_ids")


class RefundLineSchema(EventSchema):
    booking_id = Id()
    date = _Date(required=True)
    amount = Amount(required=True)


# --------------------------------------------------------------------------------------------
# accounts
# --------------------------------------------------------------------------------------------


class CommuneCreatedV1(EventSchema):
    """accounts.commune.created: a commune joins the platform (a created commune is version 1
    of its snapshot for consumers comparing with accounts.commune.updated)."""

    commune_id = Id()
    slug = fields.String(required=True, validate=validate.Regexp(SLUG))
    name = Text()
    settings = _Nested(CommuneSettingsSchema, required=True)


class CommuneUpdatedV1(CommuneCreatedV1):
    """accounts.commune.updated — ADDITION to DESIGN section 5 (communes change their name or
    settings). The full commune snapshot, as in accounts.commune.created, plus ``version``."""

    version = Version()


class FamilyInvitedV1(EventSchema):
    """accounts.family.invited: an agent created a family; notifications sends the invitation."""

    family_id = Id()
    email = fields.Email(required=True)
    activation_url = Url()
    commune_id = Id()
    commune_name = Text()
    commune_slug = fields.String(required=True, validate=validate.Regexp(SLUG))
    family_name = OptText()
    family_code = OptText()
    expires_at = _AwareDateTime(load_default=None, allow_none=True)


class FamilyActivatedV1(EventSchema):
    """accounts.family.activated: the invited parent set a password."""

    family_id = Id()
    email = fields.Email(required=True)
    account_id = OptId()


class FamilyUpdatedV1(EventSchema):
    """accounts.family.updated: the full household snapshot (read models of other services)."""

    family_id = Id()
    family_name = Text()
    guardians = fields.List(
        _Nested(GuardianSchema), required=True, validate=[validate.Length(min=1), _unique_ids]
    )
    children = fields.List(_Nested(ChildSchema), required=True, validate=_unique_ids)
    address = _Nested(AddressSchema, load_default=None, allow_none=True)
    communes = fields.List(_Nested(FamilyCommuneSchema), required=True)
    version = Version()


class MembershipCreatedV1(EventSchema):
    """accounts.membership.created: a family joined a commune (or was created in it)."""

    family_id = Id()
    commune_id = Id()
    family_code = Text()
    commune_slug = fields.String(load_default=None, allow_none=True, validate=validate.Regexp(SLUG))


class PasswordResetRequestedV1(EventSchema):
    """accounts.password_reset.requested: notifications sends the reset link."""

    email = fields.Email(required=True)
    reset_url = Url()
    account_id = OptId()
    family_id = OptId()
    expires_at = _AwareDateTime(load_default=None, allow_none=True)


class HouseholdErasedV1(EventSchema):
    """accounts.household.erased — ADDITION (issue 8, GDPR right to erasure): an agent of each
    of the household's communes accepted its erasure request. Every service erases or
    anonymises what it holds about ``family_id``, except what accounting must keep (billing's
    invoices, payments and credit notes, with the payer's name only). ``version`` is the
    household's final snapshot version: a late ``accounts.family.updated`` never revives it."""

    family_id = Id()
    commune_ids = Ids(min_length=0)
    version = Version()
    erased_at = _AwareDateTime(required=True)
    request_id = OptId()


class AccessRecordedV1(EventSchema):
    """<service>.access.recorded — ADDITION (issue 8, audit log): an agent read a household's
    data or documents in that service. Accounts keeps them for the commune's data-protection
    officer. The commune is the envelope's ``commune_id``."""

    account_id = Text()
    email = OptText()
    family_id = Id()
    action = Text()
    object_id = OptText()
    at = _AwareDateTime(required=True)


# --------------------------------------------------------------------------------------------
# reservations
# --------------------------------------------------------------------------------------------


class BookingConfirmedV1(EventSchema):
    """reservations.booking.confirmed: bookings of one child for one activity are firm.

    ``booking_ids[i]`` is the booking of ``dates[i]``. Billing invoices them (monthly) or links
    them to the basket's payment (prepaid); notifications tells the family.
    """

    booking_ids = Ids()
    family_id = Id()
    child_id = Id()
    activity_id = Id()
    dates = Dates()
    unit_price = Amount(required=True)
    payment_mode = fields.String(required=True, validate=validate.OneOf(PAYMENT_MODES))
    child_first_name = Text()
    activity_name = Text()
    recipients = Recipients()
    basket_id = OptId()

    @validates_schema
    def _pairing(self, data, **kwargs):
        _same_length(data, "booking_ids", "dates")


class BasketCheckedOutV1(EventSchema):
    """reservations.basket.checked_out: the family validated its basket; ``amount`` is what it
    has to pay (``payment_mode`` prepaid) or what will be invoiced (monthly)."""

    basket_id = Id()
    family_id = Id()
    lines = fields.List(_Nested(BasketLineSchema), required=True, validate=validate.Length(min=1))
    amount = Amount(required=True)
    payment_mode = fields.String(required=True, validate=validate.OneOf(PAYMENT_MODES))
    payment_id = OptId()


class BasketExpiredV1(EventSchema):
    """reservations.basket.expired: an unpaid basket was released (its places are free)."""

    basket_id = Id()
    family_id = OptId()
    payment_id = OptId()
    booking_ids = Ids(min_length=0, required=False, load_default=list)


class BookingCancelledV1(EventSchema):
    """reservations.booking.cancelled: bookings of one child for one activity are cancelled.

    ``booking_ids[i]`` is the booking of ``dates[i]``. ``refund_due`` is the total to give back
    ("0.00" when none), detailed by ``refund_lines`` when given.
    """

    booking_ids = Ids()
    family_id = Id()
    child_id = Id()
    activity_id = Id()
    dates = Dates()
    payment_mode = fields.String(required=True, validate=validate.OneOf(PAYMENT_MODES))
    within_deadline = _Boolean(required=True)
    refund_due = Amount(required=True)
    child_first_name = Text()
    activity_name = Text()
    recipients = Recipients()
    refund_lines = fields.List(_Nested(RefundLineSchema), load_default=None, allow_none=True)
    cancellation_id = OptId()
    reason = OptText()
    agent_message = OptText()

    @validates_schema
    def _consistency(self, data, **kwargs):
        _same_length(data, "booking_ids", "dates")
        lines = data.get("refund_lines")
        refunded = sum((line["amount"] for line in lines or ()), Decimal("0.00"))
        if lines is not None and refunded != data["refund_due"]:
            raise ValidationError("The refund lines must add up to refund_due.", "refund_lines")


class AttendanceRecordedV1(EventSchema):
    """reservations.attendance.recorded: the agent's pointage for one child, activity and day
    (a correction is a new event; the latest ``occurred_at`` wins)."""

    child_id = Id()
    activity_id = Id()
    date = _Date(required=True)
    status = fields.String(required=True, validate=validate.OneOf(ATTENDANCE_STATUSES))
    family_id = Id()
    booking_id = OptId()
    recorded_at = _AwareDateTime(load_default=None, allow_none=True)


# --------------------------------------------------------------------------------------------
# billing
# --------------------------------------------------------------------------------------------


class InvoiceIssuedV1(EventSchema):
    """billing.invoice.issued: an invoice is open for payment."""

    invoice_id = Id()
    number = Text()
    family_id = Id()
    amount = Amount(required=True)
    due_date = _Date(required=True)
    recipients = Recipients()
    issue_date = _Date(load_default=None, allow_none=True)
    period = fields.String(load_default=None, allow_none=True, validate=validate.Regexp(PERIOD))


class PaymentSucceededV1(EventSchema):
    """billing.payment.succeeded: the provider confirmed a payment (status ``paid``).

    A payment settles invoices (``invoice_ids``), a basket (``basket_id``), or both.
    """

    payment_id = Id()
    family_id = Id()
    invoice_ids = Ids(min_length=0)
    basket_id = OptId()
    amount = Amount(required=True, validate=validate.Range(min=Decimal("0.01")))
    provider_reference = Text()
    recipients = Recipients()
    provider = OptText()
    paid_at = _AwareDateTime(load_default=None, allow_none=True)
    invoice_numbers = fields.List(fields.String(), load_default=list)

    @validates_schema
    def _settles_something(self, data, **kwargs):
        if not data["invoice_ids"] and data["basket_id"] is None:
            raise ValidationError("A payment settles invoices or a basket.", "invoice_ids")


class PaymentFailedV1(EventSchema):
    """billing.payment.failed: the payment ended without money (its final status)."""

    payment_id = Id()
    family_id = Id()
    basket_id = OptId()
    status = fields.String(required=True, validate=validate.OneOf(PAYMENT_FAILURE_STATUSES))
    reason = Text()
    recipients = Recipients()
    invoice_ids = Ids(min_length=0, required=False, load_default=list)
    amount = Amount(load_default=None, allow_none=True)


class CreditNoteIssuedV1(EventSchema):
    """billing.credit_note.issued: money owed to the family (e.g. a cancellation refund)."""

    credit_note_id = Id()
    family_id = Id()
    amount = Amount(required=True, validate=validate.Range(min=Decimal("0.01")))
    origin = fields.String(required=True, validate=validate.OneOf(CREDIT_NOTE_ORIGINS))
    recipients = Recipients()
    number = OptText()
    origin_id = OptId()  # the cancellation or invoice it comes from
    invoice_id = OptId()
    booking_ids = Ids(min_length=0, required=False, load_default=list)


# --------------------------------------------------------------------------------------------
# requests
# --------------------------------------------------------------------------------------------


class RequestSubmittedV1(EventSchema):
    """requests.request.submitted: a family sent a request to the town hall."""

    request_id = Id()
    family_id = Id()
    category_id = Id()
    category_label = Text()
    recipients = Recipients()
    category_kind = fields.String(
        load_default=None, allow_none=True, validate=validate.OneOf(REQUEST_CATEGORY_KINDS)
    )
    reference = OptText()


class RequestStatusChangedV1(EventSchema):
    """requests.request.status_changed: an agent moved a request along its workflow.

    ``category_kind`` tells the requests other services act on (reservations marks an
    ``absence_justification`` accepted as excused); ``payload`` carries what they need (for
    an absence: child_id, activity_id, dates).
    """

    request_id = Id()
    family_id = Id()
    old_status = fields.String(required=True, validate=validate.OneOf(REQUEST_STATUSES))
    new_status = fields.String(required=True, validate=validate.OneOf(REQUEST_STATUSES))
    recipients = Recipients()
    agent_message = OptText()
    category_kind = fields.String(
        load_default=None, allow_none=True, validate=validate.OneOf(REQUEST_CATEGORY_KINDS)
    )
    payload = fields.Dict(keys=fields.String(), load_default=None, allow_none=True)
    category_id = OptId()
    category_label = OptText()

    @validates_schema
    def _a_change(self, data, **kwargs):
        if data["old_status"] == data["new_status"]:
            raise ValidationError("new_status must differ from old_status.", "new_status")


# --------------------------------------------------------------------------------------------
# The catalogue
# --------------------------------------------------------------------------------------------

SCHEMAS: dict[str, dict[int, type[marshmallow.Schema]]] = {
    "accounts.commune.created": {1: CommuneCreatedV1},
    "accounts.commune.updated": {1: CommuneUpdatedV1},  # addition to DESIGN section 5
    "accounts.family.invited": {1: FamilyInvitedV1},
    "accounts.family.activated": {1: FamilyActivatedV1},
    "accounts.family.updated": {1: FamilyUpdatedV1},
    "accounts.membership.created": {1: MembershipCreatedV1},
    "accounts.password_reset.requested": {1: PasswordResetRequestedV1},
    "accounts.household.erased": {1: HouseholdErasedV1},  # addition (issue 8)
    "reservations.access.recorded": {1: AccessRecordedV1},  # addition (issue 8)
    "billing.access.recorded": {1: AccessRecordedV1},  # addition (issue 8)
    "requests.access.recorded": {1: AccessRecordedV1},  # addition (issue 8)
    "reservations.booking.confirmed": {1: BookingConfirmedV1},
    "reservations.basket.checked_out": {1: BasketCheckedOutV1},
    "reservations.basket.expired": {1: BasketExpiredV1},
    "reservations.booking.cancelled": {1: BookingCancelledV1},
    "reservations.attendance.recorded": {1: AttendanceRecordedV1},
    "billing.invoice.issued": {1: InvoiceIssuedV1},
    "billing.payment.succeeded": {1: PaymentSucceededV1},
    "billing.payment.failed": {1: PaymentFailedV1},
    "billing.credit_note.issued": {1: CreditNoteIssuedV1},
    "requests.request.submitted": {1: RequestSubmittedV1},
    "requests.request.status_changed": {1: RequestStatusChangedV1},
}


def event_types() -> list[str]:
    """Every event type of the catalogue, sorted."""
    return sorted(SCHEMAS)


def schema_for(event_type: str, version: int) -> marshmallow.Schema:
    """A schema instance for this type and version; InvalidEvent if either is unknown."""
    versions = SCHEMAS.get(event_type)
    if versions is None:
        raise InvalidEvent(event_type, version, {"type": [f"Unknown event type {event_type!r}."]})
    schema_class = None
    if isinstance(version, int) and not isinstance(version, bool):
        schema_class = versions.get(version)
    if schema_class is None:
        raise InvalidEvent(
            event_type,
            version,
            {"version": [f"Unknown version {version!r} (known: {sorted(versions)})."]},
        )
    return schema_class()


def validate(event_type: str, version: int, data: dict, *, strict: bool,
             schema: marshmallow.Schema | None = None) -> dict:
    """Check ``data`` against the schema of ``event_type`` version ``version``.

    ``strict=True`` (publisher): unknown fields are refused and the data must be plain JSON;
    returns ``data`` itself, unchanged. ``strict=False`` (consumer): unknown fields are
    ignored; returns the loaded data (python types, defaults filled in).
    Raises InvalidEvent on any error. ``schema``: one from ``schema_for`` reused for many
    events of that type (building it costs as much as the check).
    """
    schema = schema or schema_for(event_type, version)
    if not isinstance(data, dict):
        raise InvalidEvent(
            event_type,
            version,
            {"_schema": [f"Event data must be an object, not {type(data).__name__}."]},
        )
    try:
        loaded = schema.load(data, unknown=RAISE if strict else EXCLUDE)
    except ValidationError as exc:
        raise InvalidEvent(event_type, version, exc.normalized_messages()) from exc
    if not strict:
        return loaded
    try:
        json.dumps(data, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidEvent(
            event_type, version, {"_schema": [f"Event data is not plain JSON: {exc}."]}
        ) from exc
    return data
