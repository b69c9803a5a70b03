"""The forms of the invoice pages (parents) and of the agents' billing pages.

As in ``forms.py``: French messages, and only what a person can fix at once is checked here
(a missing amount, a month typed wrong); the billing rules come back as the service's 422.
Amounts are typed the French way (``24,60``, ``24,60 €``) and sent as the API's ``"24.60"``.
"""

from __future__ import annotations

import re
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

from flask_wtf import FlaskForm
from wtforms import BooleanField, Form, FormField, SelectField, StringField, TextAreaField
from wtforms.utils import unset_value
from wtforms.validators import AnyOf, DataRequired, Length, Optional, Regexp, ValidationError
from wtforms.widgets import DateInput, MonthInput

from .forms import Rows, _RowRequired, _strip, parse_date, row_is_blank
from .formtools import add_error

try:  # WTForms 3.3 deprecates (value, label) pairs for SelectField choices
    from wtforms.fields.choices import SelectChoice
except ImportError:  # pragma: no cover - older WTForms
    def SelectChoice(value: str, label: str) -> tuple[str, str]:  # type: ignore[no-redef]
        return value, label

_AMOUNT = re.compile(r"^\d{1,9}([.,]\d{1,2})?$")
_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
_MONTH_FR = re.compile(r"^(0?[1-9]|1[0-2])/(\d{4})$")
_DECIMAL_KW = {"inputmode": "decimal", "autocomplete": "off", "spellcheck": "false"}
_NUMBER_KW = {"inputmode": "numeric", "autocomplete": "off", "spellcheck": "false"}


def _amount_text(value: Any) -> Any:
    """``24,60 €`` → ``24,60``: spaces and the euro sign are only typing habits."""
    if not isinstance(value, str):
        return value
    return re.sub(r"[\s\u00a0\u202f€]", "", value)


def api_amount(value: str | None) -> str | None:
    """A checked amount as the API writes it (``"24.60"``); None when empty."""
    if not value:
        return None
    return f"{Decimal(value.replace(',', '.')):.2f}"


class _Amount:
    def __init__(self, message: str = "Montant invalide (par exemple 24,60).",
                 positive: bool = False):
        self.message = message
        self.positive = positive

    def __call__(self, form: Form, field) -> None:
        if not field.data:
            return
        if not _AMOUNT.match(field.data):
            raise ValidationError(self.message)
        if self.positive and Decimal(field.data.replace(",", ".")) <= 0:
            raise ValidationError("Le montant doit être supérieur à zéro.")


def _month(value: Any) -> Any:
    """``10/2026`` (typed where the browser has no month field) → ``2026-10``."""
    value = _strip(value)
    match = _MONTH_FR.match(value) if isinstance(value, str) else None
    return f"{match.group(2)}-{int(match.group(1)):02d}" if match else value


def _amount_field(label: str, required: str | None, *, positive: bool = False) -> StringField:
    first = DataRequired(required) if required else Optional()
    return StringField(label, filters=[_amount_text], validators=[first, _Amount(
        positive=positive)], render_kw=_DECIMAL_KW)


# --- parents ------------------------------------------------------------------------------------


class ClaimForm(FlaskForm):
    """« Je ne trouve pas ma facture » : its reference and amount, as on the paper copy."""

    reference = StringField(
        "Référence de la facture", filters=[_strip, lambda v: v.upper() if v else v],
        validators=[DataRequired("Indiquez la référence de la facture."),
                    Length(max=40, message="Au plus 40 caractères.")],
        render_kw={"autocomplete": "off", "spellcheck": "false", "autocapitalize": "characters"})
    amount = _amount_field("Montant de la facture", "Indiquez le montant de la facture.",
                           positive=True)

    def payload(self) -> dict[str, str]:
        return {"reference": self.reference.data, "amount": api_amount(self.amount.data) or ""}


# --- agents: invoicing runs ---------------------------------------------------------------------


def valid_period(value: str | None) -> bool:
    """``2026-10``: a month as the API names it."""
    return bool(value and _MONTH.match(value))


class RunForm(FlaskForm):
    period = StringField(
        "Mois à facturer", filters=[_month], widget=MonthInput(),
        validators=[DataRequired("Indiquez le mois à facturer."),
                    Regexp(_MONTH, message="Mois invalide (par exemple 10/2026).")],
        render_kw={"autocomplete": "off"})


class FinaliseForm(FlaskForm):
    confirm = BooleanField(
        "J'ai vérifié les totaux et les anomalies : émettre les factures et les envoyer aux "
        "familles", validators=[DataRequired("Cochez la case pour confirmer la validation.")])


# --- agents: tariffs ----------------------------------------------------------------------------


class BracketRow(Form):
    max_quotient = StringField("Quotient familial jusqu'à", filters=[_strip], validators=[
        Optional(), Regexp(r"^\d{1,7}$", message="Un nombre entier, par exemple 600.")],
        render_kw=_NUMBER_KW)
    price = StringField("Prix (en euros)", filters=[_amount_text], validators=[
        _RowRequired("Indiquez le prix de cette tranche."), Optional(), _Amount()],
        render_kw=_DECIMAL_KW)


MAX_BRACKETS = 5


class FilledRows(Rows):
    """``Rows`` that also show what the form was given (a tariff's brackets) before it is sent.
    """

    def process(self, formdata, data=unset_value, extra_filters=None):
        if extra_filters:
            raise TypeError("FilledRows does not accept filters: put them on the row's fields.")
        self.last_index = -1
        self.entries = []
        self.object_data = data
        given = [] if formdata or data in (unset_value, None) else list(data)
        for index in range(self.min_entries):
            self._add_entry(formdata, given[index] if index < len(given) else unset_value)


class TariffForm(FlaskForm):
    label = StringField("Libellé", filters=[_strip], validators=[
        DataRequired("Indiquez le libellé."), Length(max=200, message="Au plus 200 caractères.")])
    unit_price = _amount_field("Prix unitaire", None)
    brackets = FilledRows(FormField(BracketRow), "Tranche", min_entries=MAX_BRACKETS,
                          max_entries=MAX_BRACKETS)
    reduced_from_child = StringField(
        "Tarif réduit à partir du", filters=[_strip],
        validators=[Optional(), Regexp(r"^([2-9]|1\d|20)$",
                                       message="Un rang d'enfant entre 2 et 20.")],
        render_kw=_NUMBER_KW)
    reduced_rate = StringField(
        "Réduction (en %)", filters=[_amount_text],
        validators=[Optional(), Regexp(r"^(100([.,]0{1,2})?|\d{1,2}([.,]\d{1,2})?)$",
                                       message="Un pourcentage entre 0 et 100.")],
        render_kw=_DECIMAL_KW)
    unbooked_surcharge = _amount_field("Majoration d'une présence sans réservation", None)

    @classmethod
    def with_rows(cls, rows: int) -> type[TariffForm]:
        """The form with ``rows`` bracket rows (never fewer than the tariff already has)."""
        if rows <= MAX_BRACKETS:
            return cls

        class Wider(cls):  # type: ignore[valid-type, misc]
            pass

        Wider.brackets = FilledRows(FormField(BracketRow), "Tranche", min_entries=rows,
                                    max_entries=rows)
        return Wider

    @classmethod
    def data_of(cls, tariff: dict[str, Any]) -> dict[str, Any]:
        """What the form shows of a tariff as the API gives it."""
        brackets = [b for b in tariff.get("brackets") or () if isinstance(b, dict)]
        return {
            "label": tariff.get("label") or "",
            "unit_price": _french(tariff.get("unit_price")),
            # Rows of a FormField read attributes, not keys.
            "brackets": [SimpleNamespace(max_quotient="" if b.get("max_quotient") is None
                                         else str(b["max_quotient"]),
                                         price=_french(b.get("price")))
                         for b in brackets],
            "reduced_from_child": "" if tariff.get("reduced_from_child") is None
            else str(tariff["reduced_from_child"]),
            "reduced_rate": _french(tariff.get("reduced_rate"), zero=""),
            "unbooked_surcharge": _french(tariff.get("unbooked_surcharge"), zero=""),
        }

    def bracket_rows(self) -> list[int]:
        """Indexes of the rows filled in: the API's ``brackets.N`` is the Nth of them."""
        return [i for i, e in enumerate(self.brackets) if not row_is_blank(e.form)]

    def payload(self, activity_id: str | None) -> dict[str, Any]:
        brackets = []
        for i in self.bracket_rows():
            row = self.brackets.entries[i].form
            bound = row.max_quotient.data
            brackets.append({"max_quotient": int(bound) if bound else None,
                             "price": api_amount(row.price.data)})
        rate = self.reduced_rate.data
        return {
            "label": self.label.data,
            "activity_id": activity_id,
            "unit_price": api_amount(self.unit_price.data),
            "brackets": brackets,
            "reduced_from_child": int(self.reduced_from_child.data)
            if self.reduced_from_child.data else None,
            "reduced_rate": rate.replace(",", ".") if rate else "0",
            "unbooked_surcharge": api_amount(self.unbooked_surcharge.data) or "0.00",
        }

    def api_path(self, key: str) -> str | None:
        """The form's field for an error of ``PUT .../tariffs/{code}`` (``brackets.1.price``)."""
        parts = key.split(".")
        if parts[0] == "brackets":
            rows = self.bracket_rows()
            if len(parts) > 2 and parts[1].isdigit() and int(parts[1]) < len(rows):
                return f"brackets.{rows[int(parts[1])]}.{parts[2]}"
            return None
        return key if len(parts) == 1 else None


def _french(value: Any, zero: str | None = None) -> str:
    """``"2.10"`` → ``2,10`` for a field; ``zero`` replaces a nought when given."""
    if value is None or value == "":
        return ""
    text = str(value)
    try:
        if zero is not None and Decimal(text) == 0:
            return zero
    except ArithmeticError:
        return text
    return text.replace(".", ",")


# --- agents: one invoice ------------------------------------------------------------------------

METHODS = {"cash": "Espèces", "cheque": "Chèque", "cesu": "CESU", "transfer": "Virement"}


class CounterPaymentForm(FlaskForm):
    """A payment received at the town hall's counter (field names unique on the page)."""

    pay_amount = _amount_field("Montant reçu", "Indiquez le montant reçu.", positive=True)
    pay_method = SelectField(
        "Moyen de paiement",
        choices=[SelectChoice(value, label) for value, label in (
            ("", "Choisissez le moyen de paiement"), *METHODS.items())],
        validate_choice=False,
        validators=[AnyOf(tuple(METHODS), message="Choisissez le moyen de paiement.")])
    pay_reference = StringField("Référence (numéro de chèque, de virement…)", filters=[_strip],
                                validators=[Optional(), Length(max=200, message="Au plus 200 "
                                                                                "caractères.")],
                                render_kw={"autocomplete": "off"})

    def payload(self) -> dict[str, Any]:
        return {"amount": api_amount(self.pay_amount.data), "method": self.pay_method.data,
                "reference": self.pay_reference.data or None}

    @staticmethod
    def api_path(key: str) -> str | None:
        return {"amount": "pay_amount", "method": "pay_method",
                "reference": "pay_reference"}.get(key)


class CreditNoteForm(FlaskForm):
    note_amount = _amount_field("Montant de l'avoir", "Indiquez le montant de l'avoir.",
                                positive=True)
    note_reason = TextAreaField("Motif", filters=[_strip], validators=[
        DataRequired("Indiquez le motif de l'avoir."),
        Length(max=500, message="Au plus 500 caractères.")], render_kw={"rows": 3})

    def payload(self, family_id: str, invoice_id: str) -> dict[str, Any]:
        return {"family_id": family_id, "invoice_id": invoice_id,
                "amount": api_amount(self.note_amount.data), "reason": self.note_reason.data}

    @staticmethod
    def api_path(key: str) -> str | None:
        return {"amount": "note_amount", "reason": "note_reason"}.get(key)


# --- agents: a manual invoice -------------------------------------------------------------------

MAX_LINES = 6
MAX_QUANTITY = 10000
_QUANTITY = re.compile(r"^\d{1,5}$")


def _quantity(form: Form, field) -> None:
    if field.data and not (_QUANTITY.match(field.data) and 1 <= int(field.data) <= MAX_QUANTITY):
        raise ValidationError("Un nombre entier entre 1 et 10 000.")


def _due_date(form: Form, field) -> None:
    if field.data and parse_date(field.data) is None:
        raise ValidationError("Date invalide (par exemple 30/11/2026).")


class InvoiceLineRow(Form):
    label = StringField("Libellé", filters=[_strip], validators=[
        _RowRequired("Indiquez le libellé de la ligne."), Optional(),
        Length(max=300, message="Au plus 300 caractères.")], render_kw={"autocomplete": "off"})
    quantity = StringField("Quantité", filters=[_strip], validators=[
        _RowRequired("Indiquez la quantité."), Optional(), _quantity], render_kw=_NUMBER_KW)
    unit_price = StringField("Prix unitaire (en euros)", filters=[_amount_text], validators=[
        _RowRequired("Indiquez le prix unitaire."), Optional(), _Amount()],
        render_kw=_DECIMAL_KW)
    child_name = StringField("Enfant concerné (facultatif)", filters=[_strip], validators=[
        Optional(), Length(max=200, message="Au plus 200 caractères.")],
        render_kw={"autocomplete": "off"})


def household_label(household: dict[str, Any]) -> str:
    """``MARTIN (code famille JV-0099)``: how a household found by the search is offered."""
    name = str(household.get("family_name") or "Foyer sans nom")
    code = household.get("family_code")
    return f"{name} (code famille {code})" if code else name


class ManualInvoiceForm(FlaskForm):
    """An invoice typed by an agent: a household found by the search, or a payer's name for a
    paper invoice; then up to ``MAX_LINES`` lines (blank rows are ignored).

    ``households`` are the search's results: the only households the select offers.
    """

    family_id = SelectField("Foyer", choices=[], validate_choice=False)
    payer_name = StringField("Nom du payeur", filters=[_strip], validators=[
        Optional(), Length(max=200, message="Au plus 200 caractères.")],
        render_kw={"autocomplete": "off"})
    label = StringField("Objet de la facture", filters=[_strip], validators=[
        Optional(), Length(max=200, message="Au plus 200 caractères.")],
        render_kw={"autocomplete": "off"})
    period = StringField(
        "Mois concerné", filters=[_month], widget=MonthInput(),
        validators=[Optional(), Regexp(_MONTH, message="Mois invalide (par exemple 10/2026).")],
        render_kw={"autocomplete": "off"})
    due_date = StringField("Date d'échéance", filters=[_strip], widget=DateInput(),
                           validators=[Optional(), _due_date], render_kw={"autocomplete": "off"})
    lines = Rows(FormField(InvoiceLineRow), "Ligne", min_entries=MAX_LINES,
                 max_entries=MAX_LINES)

    def __init__(self, *args: Any, households: list[dict[str, Any]] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.households = {str(h["id"]): h for h in households or () if h.get("id")}
        self.family_id.choices = [SelectChoice("", "Choisissez le foyer"), *(
            SelectChoice(key, household_label(h)) for key, h in self.households.items())]

    def validate(self, extra_validators=None) -> bool:
        ok = super().validate(extra_validators)
        family = self.family_id.data or ""
        if family and family not in self.households:
            add_error(self.family_id, "Ce foyer ne fait pas partie des résultats de la "
                                      "recherche : recherchez-le de nouveau.")
            ok = False
        elif family and self.payer_name.data:
            add_error(self.payer_name, "Laissez ce nom vide : la facture est adressée au foyer "
                                       "choisi.")
            ok = False
        elif not family and not self.payer_name.data and not self.payer_name.errors:
            add_error(self.family_id if self.households else self.payer_name,
                      "Choisissez le foyer ou indiquez le nom du payeur.")
            ok = False
        if not self.line_rows():
            add_error(self.lines.entries[0].form.label, "Indiquez au moins une ligne.")
            ok = False
        return ok

    @property
    def household(self) -> dict[str, Any] | None:
        return self.households.get(self.family_id.data or "")

    def line_rows(self) -> list[int]:
        """Indexes of the rows filled in: the API's ``lines.N`` is the Nth of them."""
        return [i for i, e in enumerate(self.lines) if not row_is_blank(e.form)]

    def invoice_lines(self) -> list[dict[str, Any]]:
        """The lines filled in, amounts as Decimals (for the confirmation's table)."""
        out = []
        for i in self.line_rows():
            row = self.lines.entries[i].form
            quantity = int(row.quantity.data)
            price = Decimal(row.unit_price.data.replace(",", "."))
            out.append({"label": row.label.data, "child_name": row.child_name.data or None,
                        "quantity": quantity, "unit_price": price, "amount": price * quantity})
        return out

    def total(self) -> Decimal:
        return sum((line["amount"] for line in self.invoice_lines()), Decimal("0.00"))

    def payload(self) -> dict[str, Any]:
        due = parse_date(self.due_date.data)
        family = self.family_id.data or None
        return {
            "family_id": family,
            "payer_name": None if family else self.payer_name.data or None,
            "label": self.label.data or None,
            "period": self.period.data or None,
            "due_date": due.isoformat() if due else None,
            "lines": [{"label": line["label"], "quantity": line["quantity"],
                       "unit_price": f"{line['unit_price']:.2f}",
                       "child_name": line["child_name"]} for line in self.invoice_lines()],
        }

    def carried(self) -> list[tuple[str, str]]:
        """What was typed, as the confirmation step's hidden fields (blank ones left out);
        a row keeps its number, so the API's errors still land on the row typed in."""
        fields = [self.family_id, self.payer_name, self.label, self.period, self.due_date]
        for i in self.line_rows():
            fields.extend(self.lines.entries[i].form)
        return [(f.name, str(f.data)) for f in fields if f.data]

    def api_path(self, key: str) -> str | None:
        """The form's field for an error of ``POST .../invoices`` (``lines.1.unit_price``)."""
        parts = key.split(".")
        if parts[0] == "lines":
            rows = self.line_rows()
            if len(parts) > 2 and parts[1].isdigit() and int(parts[1]) < len(rows):
                return f"lines.{rows[int(parts[1])]}.{parts[2]}"
            return None
        if parts[0] == "family_id" and not self.households:
            return None  # no select on the page: the message goes to the summary
        return key if len(parts) == 1 else None
