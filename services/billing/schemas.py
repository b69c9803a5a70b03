"""Billing's HTTP payloads (French validation messages); amounts travel as strings ``"82.00"``.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from services.common.fields import REQUIRED, UUID_PATTERN

_UUID = UUID_PATTERN
_AMOUNT = re.compile(r"^\d{1,9}([.,]\d{1,2})?$")
PERIOD = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
CODE = re.compile(r"^[A-Za-z0-9_-]{1,40}$")


class Amount(fields.Field):
    """Euros: ``"82.00"``, ``"82"``, ``"24,60"`` or a number, at most two decimals, >= 0."""

    default_error_messages = {"invalid": "Montant invalide (par exemple 24.60)."}

    def __init__(self, *, positive: bool = False, **kwargs):
        self.positive = positive
        # What the OpenAPI document shows (a custom field has no type of its own); numbers
        # are accepted too but the documented form is the string.
        kwargs["metadata"] = {"type": "string", "pattern": _AMOUNT.pattern, "example": "24.60",
                              **kwargs.get("metadata", {})}
        super().__init__(**kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or value is None:
            raise self.make_error("invalid")
        text = str(value).strip().replace("\u00a0", "").replace(" ", "")
        if isinstance(value, float):
            text = f"{value:.10f}".rstrip("0").rstrip(".")
        if not _AMOUNT.match(text):
            raise self.make_error("invalid")
        try:
            amount = Decimal(text.replace(",", "."))
        except InvalidOperation as exc:
            raise self.make_error("invalid") from exc
        if self.positive and amount <= 0:
            raise ValidationError("Le montant doit être supérieur à zéro.")
        return amount.quantize(Decimal("0.01"))

    def _serialize(self, value, attr, obj, **kwargs):
        return None if value is None else f"{Decimal(value):.2f}"


class Id(fields.String):
    default_error_messages = {"invalid_id": "Identifiant invalide."}

    def _deserialize(self, value, attr, data, **kwargs):
        value = super()._deserialize(value, attr, data, **kwargs)
        if not _UUID.match(value):
            raise self.make_error("invalid_id")
        return value.lower()


def text(max_length: int, **kwargs) -> fields.String:
    return fields.String(validate=validate.Length(min=1, max=max_length), **kwargs)


# --- inputs ------------------------------------------------------------------------------------


class BracketSchema(Schema):
    max_quotient = fields.Integer(load_default=None, allow_none=True,
                                  validate=validate.Range(min=0),
                                  metadata={"description": "plafond de quotient familial "
                                                           "(null : la tranche la plus haute)"})
    price = Amount(required=True, error_messages=REQUIRED)


class TariffInSchema(Schema):
    label = text(200, required=True, error_messages=REQUIRED)
    activity_id = Id(load_default=None, allow_none=True,
                     metadata={"description": "l'activité de reservations que ce tarif prix"})
    unit_price = Amount(load_default=None, allow_none=True)
    brackets = fields.List(fields.Nested(BracketSchema), load_default=list,
                           validate=validate.Length(max=20))
    reduced_from_child = fields.Integer(load_default=None, allow_none=True,
                                        validate=validate.Range(min=2, max=20))
    # minimum/maximum restated as numbers: apispec wrote the Decimal bounds as strings
    # ("0.00"), an invalid JSON Schema no client generator could use.
    reduced_rate = fields.Decimal(load_default=Decimal("0"), places=2,
                                  validate=validate.Range(min=0, max=100),
                                  metadata={"description": "pourcentage de réduction",
                                            "minimum": 0, "maximum": 100, "default": 0})
    unbooked_surcharge = Amount(load_default=Decimal("0.00"))


class SettingsInSchema(Schema):
    bill_unjustified_absence = fields.Boolean()
    bill_unrecorded_bookings = fields.Boolean()
    due_days = fields.Integer(validate=validate.Range(min=0, max=365))
    online_payment_days = fields.Integer(validate=validate.Range(min=0, max=365))
    payment_instructions = fields.String(allow_none=True, validate=validate.Length(max=2000))


class QuotientSchema(Schema):
    quotient = fields.Integer(required=True, allow_none=True, validate=validate.Range(min=0),
                              error_messages={"required": "Ce champ est obligatoire."})


class RunInSchema(Schema):
    period = fields.String(required=True, error_messages=REQUIRED, validate=validate.Regexp(
        PERIOD, error="Période invalide (format attendu AAAA-MM)."))


class InvoiceQuerySchema(Schema):
    status = fields.String(load_default=None, validate=validate.OneOf(
        ("open", "paid", "partially_paid", "cancelled")),
        metadata={"description": "open (à payer, y compris partiellement payées) ou paid"})
    hidden = fields.Boolean(load_default=None)
    cursor = fields.String(load_default=None)
    period = fields.String(load_default=None, validate=validate.Regexp(PERIOD))
    family_id = Id(load_default=None, metadata={"description": "agents seulement"})


class ClaimSchema(Schema):
    reference = text(40, required=True, error_messages=REQUIRED)
    amount = Amount(required=True, error_messages=REQUIRED)


class PaymentInSchema(Schema):
    invoice_ids = fields.List(Id(), required=True, error_messages=REQUIRED,
                              validate=validate.Length(min=1, max=50))
    return_url = fields.Url(required=True, require_tld=False, schemes={"http", "https"},
                            error_messages=REQUIRED)


class PaymentQuerySchema(Schema):
    status = fields.String(load_default=None, validate=validate.OneOf(
        ("created", "waiting", "paid", "denied", "cancelled", "expired", "error")))
    cursor = fields.String(load_default=None)


class CheckoutLineSchema(Schema):
    booking_ids = fields.List(Id(), load_default=list)
    child_id = Id(required=True)
    child_name = fields.String(load_default=None, allow_none=True)
    activity_id = Id(required=True)
    activity_name = fields.String(load_default=None, allow_none=True)
    dates = fields.List(fields.Date(), required=True, validate=validate.Length(min=1))
    unit_price = Amount(required=True)
    amount = Amount(required=True)


class CheckoutSchema(Schema):
    basket_id = Id(required=True)
    family_id = Id(required=True)
    commune_id = Id(required=True)
    lines = fields.List(fields.Nested(CheckoutLineSchema), required=True,
                        validate=validate.Length(min=1))
    amount = Amount(required=True, positive=True)
    return_url = fields.Url(required=True, require_tld=False, schemes={"http", "https"})


class ManualLineSchema(Schema):
    label = text(300, required=True, error_messages=REQUIRED)
    quantity = fields.Integer(load_default=1, validate=validate.Range(min=1, max=10000))
    unit = fields.String(load_default="jours", validate=validate.Length(min=1, max=20))
    unit_price = Amount(required=True, error_messages=REQUIRED)
    child_name = fields.String(load_default=None, allow_none=True)


class ManualInvoiceSchema(Schema):
    family_id = Id(load_default=None, allow_none=True,
                   metadata={"description": "null : facture hors portail, que le foyer "
                                            "pourra rattacher (référence et montant)"})
    payer_name = fields.String(load_default=None, allow_none=True,
                               validate=validate.Length(max=200))
    label = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=200))
    period = fields.String(load_default=None, allow_none=True, validate=validate.Regexp(PERIOD))
    issue_date = fields.Date(load_default=None, allow_none=True)
    due_date = fields.Date(load_default=None, allow_none=True)
    lines = fields.List(fields.Nested(ManualLineSchema), required=True,
                        validate=validate.Length(min=1, max=200))

    @validates_schema
    def _payer(self, data, **kwargs):
        if not data.get("family_id") and not data.get("payer_name"):
            raise ValidationError("Indiquez le foyer ou le nom du payeur.", "payer_name")


class ManualPaymentSchema(Schema):
    amount = Amount(required=True, positive=True, error_messages=REQUIRED)
    method = fields.String(required=True, error_messages=REQUIRED, validate=validate.OneOf(
        ("cash", "cheque", "cesu", "transfer")))
    reference = fields.String(load_default=None, allow_none=True,
                              validate=validate.Length(max=200))


class CreditNoteInSchema(Schema):
    family_id = Id(required=True, error_messages=REQUIRED)
    amount = Amount(required=True, positive=True, error_messages=REQUIRED)
    reason = text(500, required=True, error_messages=REQUIRED)
    invoice_id = Id(load_default=None, allow_none=True)


class CreditNoteQuerySchema(Schema):
    family_id = Id(load_default=None)


class ExportQuerySchema(Schema):
    period = fields.String(load_default=None, validate=validate.Regexp(PERIOD))


# --- outputs -----------------------------------------------------------------------------------


class CommuneRefSchema(Schema):
    id = fields.String()
    slug = fields.String(allow_none=True)
    name = fields.String(allow_none=True)


class LineSchema(Schema):
    id = fields.String()
    child_id = fields.String(allow_none=True)
    child_name = fields.String(allow_none=True)
    activity_id = fields.String(allow_none=True)
    activity_name = fields.String()
    label = fields.String()
    quantity = fields.Integer()
    unit = fields.String()
    unit_price = fields.String()
    amount = fields.String()
    amount_paid = fields.String()
    amount_remaining = fields.String()
    dates = fields.List(fields.String())
    detail = fields.String(metadata={"description": "« 6 jours 24,60 € »"})


class InvoiceSummarySchema(Schema):
    id = fields.String()
    commune = fields.Nested(CommuneRefSchema)
    reference = fields.String()
    number = fields.String()
    label = fields.String()
    kind = fields.String(metadata={"description": "monthly, basket ou manual"})
    period = fields.String(allow_none=True)
    family_id = fields.String(allow_none=True)
    payer_name = fields.String()
    issue_date = fields.Date()
    due_date = fields.Date()
    payment_deadline = fields.Date(metadata={"description": "date limite du paiement en ligne"})
    status = fields.String(metadata={"description": "open, partially_paid, paid, cancelled"})
    amount = fields.String()
    amount_paid = fields.String()
    amount_credited = fields.String()
    amount_remaining = fields.String()
    hidden = fields.Boolean()
    can_pay_online = fields.Boolean()
    services = fields.List(fields.String())


class InvoiceSchema(InvoiceSummarySchema):
    lines = fields.List(fields.Nested(LineSchema))


class InvoicePageSchema(Schema):
    items = fields.List(fields.Nested(InvoiceSummarySchema))
    next = fields.String(allow_none=True)


class PaymentCreatedSchema(Schema):
    payment_id = fields.String()
    payment_url = fields.String()
    amount = fields.String()
    status = fields.String()


class CallbackSchema(Schema):
    id = fields.String()
    received_at = fields.DateTime()
    verified = fields.Boolean()
    outcome = fields.String()
    body = fields.String()


class PaymentSchema(Schema):
    id = fields.String()
    status = fields.String()
    amount = fields.String()
    invoice_ids = fields.List(fields.String())
    basket_id = fields.String(allow_none=True)
    provider = fields.String()
    method = fields.String()
    created_at = fields.DateTime()
    paid_at = fields.DateTime(allow_none=True)
    reason = fields.String(allow_none=True)
    family_id = fields.String(allow_none=True, metadata={"description": "agents"})
    provider_reference = fields.String(allow_none=True, metadata={"description": "agents"})
    callbacks = fields.List(fields.Nested(CallbackSchema), metadata={"description": "agents"})


class PaymentPageSchema(Schema):
    items = fields.List(fields.Nested(PaymentSchema))
    next = fields.String(allow_none=True)


class TariffSchema(Schema):
    id = fields.String()
    activity_code = fields.String()
    activity_id = fields.String(allow_none=True)
    label = fields.String()
    unit_price = fields.String(allow_none=True)
    brackets = fields.List(fields.Dict())
    reduced_from_child = fields.Integer(allow_none=True)
    reduced_rate = fields.String()
    unbooked_surcharge = fields.String()
    updated_at = fields.DateTime()


class TariffPageSchema(Schema):
    items = fields.List(fields.Nested(TariffSchema))
    next = fields.String(allow_none=True)


class SettingsSchema(Schema):
    bill_unjustified_absence = fields.Boolean()
    bill_unrecorded_bookings = fields.Boolean()
    due_days = fields.Integer()
    online_payment_days = fields.Integer()
    payment_instructions = fields.String(allow_none=True)


class QuotientOutSchema(Schema):
    family_id = fields.String()
    quotient = fields.Integer(allow_none=True)


class RunSummarySchema(Schema):
    id = fields.String()
    period = fields.String()
    status = fields.String(metadata={"description": "draft ou finalised"})
    total = fields.String()
    invoice_count = fields.Integer()
    anomaly_count = fields.Integer()
    created_at = fields.DateTime()
    updated_at = fields.DateTime()
    finalised_at = fields.DateTime(allow_none=True)


class RunSchema(RunSummarySchema):
    invoices = fields.List(fields.Dict(), metadata={
        "description": "brouillon : {family_id, family_name, total, lines: [{child_id, "
                       "child_name, activity_id, activity_name, quantity, unit_price, amount, "
                       "dates, booking_ids, label, surcharge, detail}]}"})
    anomalies = fields.List(fields.Dict(), metadata={
        "description": "{kind: presence_without_booking | booking_without_attendance | "
                       "no_price, family_id, child_id, activity_id, date, label}"})


class RunPageSchema(Schema):
    items = fields.List(fields.Nested(RunSummarySchema))
    next = fields.String(allow_none=True)


class CreditNoteSchema(Schema):
    id = fields.String()
    number = fields.String()
    reference = fields.String()
    family_id = fields.String()
    origin = fields.String()
    origin_id = fields.String(allow_none=True)
    invoice_id = fields.String(allow_none=True)
    reason = fields.String()
    amount = fields.String()
    remaining = fields.String()
    status = fields.String(metadata={"description": "available, used, to_refund"})
    issue_date = fields.Date()
    booking_ids = fields.List(fields.String())
    lines = fields.List(fields.Dict())


class CreditNotePageSchema(Schema):
    items = fields.List(fields.Nested(CreditNoteSchema))
    next = fields.String(allow_none=True)
