"""The agents' forms of « Demandes »: processing a request, and editing a category.

A request's page carries several small forms (status, question, assignment, message, the
household's record); each has a prefix so their fields keep distinct ids on one page. Their
CSRF token is the plain ``csrf_token`` input of the page (checked for every POST by
CSRFProtect), so the forms themselves do not carry one.

The parents' request form is generated from the category (see ``requests_pages``), not here.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from typing import Any

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    Form,
    FormField,
    HiddenField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.utils import unset_value
from wtforms.validators import DataRequired, Length, Optional, Regexp, ValidationError
from wtforms.widgets import CheckboxInput, ListWidget

from .forms import Rows, _RowRequired, _strip, row_is_blank

try:  # WTForms 3.3 deprecates (value, label) pairs for SelectField choices
    from wtforms.fields.choices import SelectChoice
except ImportError:  # pragma: no cover - older WTForms
    def SelectChoice(value: str, label: str) -> tuple[str, str]:  # type: ignore[no-redef]
        return value, label

MB = 1024 * 1024
MESSAGE_MAX = 5000
MAX_FIELD_ROWS = 8
MAX_DOCUMENT_ROWS = 4
MAX_FIELDS = 40  # the requests service's limits
MAX_DOCUMENTS = 10
DEFAULT_MAX_SIZE_MB = 10
UPLOAD_MAX_MB = 25

STATUS_LABELS = {
    "submitted": "nouvelle",
    "in_progress": "en cours",
    "waiting_for_family": "en attente de votre réponse",
    "accepted": "acceptée",
    "refused": "refusée",
    "closed": "clôturée",
}
# On the agents' pages "votre réponse" would be the agent's: the same status, their words.
AGENT_STATUS_LABELS = {**STATUS_LABELS, "waiting_for_family": "en attente de la famille"}
# Statuses whose change sends a message the family must read (the service refuses it empty).
MESSAGE_NEEDED = ("waiting_for_family", "refused")

FIELD_TYPES = {
    "text": "Texte court",
    "long_text": "Texte long",
    "date": "Date",
    "choice": "Choix dans une liste",
    "yes_no": "Oui / non",
    "child": "Enfant du foyer",
    "phone": "Téléphone",
    "email": "Adresse e-mail",
}
FILE_TYPES = {"pdf": "PDF", "jpeg": "JPEG", "png": "PNG", "heic": "HEIC"}
DEFAULT_FILE_TYPES = ["pdf", "jpeg", "png"]
KINDS = {
    "absence_justification": "Justification d'absence",
    "address_change": "Changement d'adresse",
    "allergy": "Allergie alimentaire / PAI",
}
KIND_HINTS = {
    "absence_justification": "champs « child » (enfant), « from » (date) obligatoires ; "
                             "« to » (date), « reason » facultatifs. Une fois acceptée, les "
                             "jours sont excusés et remboursés.",
    "address_change": "champs « line1 », « postal_code », « city » (texte) obligatoires ; "
                      "« line2 » (texte), « from » (date) facultatifs. Une fois acceptée, "
                      "l'agent applique l'adresse au dossier de la famille.",
    "allergy": "champs « child » (enfant) et « notes » (texte) obligatoires. Une fois "
               "acceptée, l'agent applique l'allergie au dossier de la famille.",
}
RESERVED_NAMES = ("category", "body", "documents", "message")
_NAME = r"^[a-z][a-z0-9_]{0,39}$"
NAME_MESSAGE = ("Lettres minuscules sans accent, chiffres et « _ », en commençant par une "
                "lettre (40 caractères au plus).")


def choices(pairs: Iterable[tuple[str, str]]) -> list[Any]:
    return [SelectChoice(value, label) for value, label in pairs]


def choice_values(field: Any) -> list[str]:
    return [c.value if hasattr(c, "value") else c[0] for c in field.choices or []]


def choice_label(field: Any, value: str) -> str | None:
    for choice in field.choices or []:
        found, label = (choice.value, choice.label) if hasattr(choice, "value") else choice[:2]
        if found == value:
            return label
    return None


class _NoCsrf(FlaskForm):
    class Meta:
        csrf = False


# --- Processing a request ------------------------------------------------------------------


class TransitionForm(_NoCsrf):
    status = SelectField("Nouveau statut", choices=[], validate_choice=False,
                         validators=[DataRequired("Choisissez le nouveau statut.")])
    # No Optional(): it would stop the chain before validate_message.
    message = TextAreaField("Message à la famille", filters=[_strip], validators=[
        Length(max=MESSAGE_MAX, message="Au plus 5 000 caractères.")],
        render_kw={"rows": 4})

    def validate_status(self, field) -> None:
        if field.data not in [value for value in choice_values(self.status) if value]:
            raise ValidationError("Choisissez l'un des statuts proposés.")

    def validate_message(self, field) -> None:
        if self.status.data in MESSAGE_NEEDED and not field.data:
            raise ValidationError(
                "Indiquez à la famille le motif du refus." if self.status.data == "refused"
                else "Écrivez à la famille ce qu'il manque ou la question à laquelle répondre.")


class QuestionForm(_NoCsrf):
    message = TextAreaField("Question ou document manquant", filters=[_strip], validators=[
        DataRequired("Écrivez à la famille ce qu'il manque ou la question à laquelle "
                     "répondre."),
        Length(max=MESSAGE_MAX, message="Au plus 5 000 caractères.")],
        render_kw={"rows": 4})


class AssignForm(_NoCsrf):
    agent = SelectField("Agent", choices=[], validate_choice=False)

    def validate_agent(self, field) -> None:
        if field.data not in choice_values(self.agent):  # "" is "personne"
            raise ValidationError("Choisissez l'un des agents proposés.")


class ApplyAddressForm(_NoCsrf):
    line1 = StringField("Adresse", filters=[_strip], validators=[
        DataRequired("Indiquez l'adresse."), Length(max=200, message="Au plus 200 caractères.")],
        render_kw={"autocomplete": "off"})
    line2 = StringField("Complément d'adresse", filters=[_strip], validators=[
        Optional(), Length(max=200, message="Au plus 200 caractères.")],
        render_kw={"autocomplete": "off"})
    postal_code = StringField("Code postal", filters=[_strip], validators=[
        DataRequired("Indiquez le code postal."),
        Regexp(r"^[0-9]{5}$", message="Code postal invalide (5 chiffres).")],
        render_kw={"autocomplete": "off", "inputmode": "numeric"})
    city = StringField("Ville", filters=[_strip], validators=[
        DataRequired("Indiquez la ville."), Length(max=100, message="Au plus 100 caractères.")],
        render_kw={"autocomplete": "off"})

    def payload(self) -> dict[str, Any]:
        return {"address": {"line1": self.line1.data, "line2": self.line2.data or None,
                            "postal_code": self.postal_code.data, "city": self.city.data}}

    @staticmethod
    def api_path(key: str) -> str | None:
        parts = key.split(".")
        if parts[0] == "address" and len(parts) > 1:
            return parts[1]
        return None


class ApplyAllergyForm(_NoCsrf):
    child = SelectField("Enfant", choices=[], validate_choice=False,
                        validators=[DataRequired("Choisissez l'enfant.")])
    allergies = BooleanField("Allergie / PAI", default=True)
    notes = TextAreaField("Précisions (allergie, PAI)", filters=[_strip], validators=[
        Optional(), Length(max=2000, message="Au plus 2 000 caractères.")],
        render_kw={"rows": 3})

    def validate_child(self, field) -> None:
        if field.data not in [value for value in choice_values(self.child) if value]:
            raise ValidationError("Choisissez un enfant du foyer.")

    def payload(self) -> dict[str, Any]:
        return {"children": [{"id": self.child.data, "allergies": bool(self.allergies.data),
                              "allergy_notes": self.notes.data or None}]}

    @staticmethod
    def api_path(key: str) -> str | None:
        parts = key.split(".")
        if parts[0] == "children" and len(parts) > 2:
            return {"id": "child", "allergies": "allergies",
                    "allergy_notes": "notes"}.get(parts[2])
        return None


# --- Categories ------------------------------------------------------------------------------


def name_from_label(label: str, taken: set[str]) -> str:
    """``Nom de l'enfant`` → ``nom_de_l_enfant``: the technical name an agent left blank."""
    ascii_text = unicodedata.normalize("NFKD", label).encode("ascii", "ignore").decode()
    name = re.sub(r"[^a-z0-9]+", "_", ascii_text.lower()).strip("_")[:36] or "champ"
    if not name[0].isalpha():
        name = f"c_{name}"[:36]
    candidate, n = name, 2
    while candidate in taken or candidate in RESERVED_NAMES:
        candidate, n = f"{name}_{n}", n + 1
    return candidate


def parse_options(line: str | None) -> list[str]:
    return [part.strip() for part in (line or "").split(",") if part.strip()]


def parse_megabytes(value: str | None) -> Decimal | None:
    try:
        found = Decimal((value or "").strip().replace(",", ".").replace(" ", ""))
    except InvalidOperation:
        return None
    return found if found.is_finite() else None


def _valid_size(form: Form, field) -> None:
    if not (field.data or "").strip():
        return
    size = parse_megabytes(field.data)
    if size is None or size <= 0:
        raise ValidationError("Indiquez une taille en Mo (exemple : 5 ou 2,5).")
    if size > UPLOAD_MAX_MB:
        raise ValidationError(f"Au plus {UPLOAD_MAX_MB} Mo (la limite d'un envoi).")


class FieldRow(Form):
    label = StringField("Libellé", filters=[_strip], validators=[
        _RowRequired("Indiquez le libellé du champ."), Optional(),
        Length(max=200, message="Au plus 200 caractères.")], render_kw={"autocomplete": "off"})
    name = StringField("Nom technique", filters=[_strip], validators=[
        Optional(), Regexp(_NAME, message=NAME_MESSAGE)],
        render_kw={"autocomplete": "off", "spellcheck": "false", "autocapitalize": "none"})
    type = SelectField("Type", choices=choices(FIELD_TYPES.items()), default="text")
    required = BooleanField("Obligatoire")
    help = StringField("Aide", filters=[_strip], validators=[
        Optional(), Length(max=500, message="Au plus 500 caractères.")],
        render_kw={"autocomplete": "off"})
    options = StringField("Options", filters=[_strip], validators=[  # no Optional(): see below
        Length(max=2000, message="Au plus 2 000 caractères.")],
        render_kw={"autocomplete": "off"})

    def validate_options(self, field) -> None:
        if row_is_blank(self):
            return
        if self.type.data == "choice" and not parse_options(field.data):
            raise ValidationError("Indiquez les options, séparées par des virgules.")
        if self.type.data != "choice" and field.data:
            raise ValidationError("Seul un champ « Choix dans une liste » a des options.")


class DocumentRow(Form):
    label = StringField("Libellé", filters=[_strip], validators=[
        _RowRequired("Indiquez le libellé du document."), Optional(),
        Length(max=200, message="Au plus 200 caractères.")], render_kw={"autocomplete": "off"})
    name = StringField("Nom technique", filters=[_strip], validators=[
        Optional(), Regexp(_NAME, message=NAME_MESSAGE)],
        render_kw={"autocomplete": "off", "spellcheck": "false", "autocapitalize": "none"})
    required = BooleanField("Obligatoire")
    types = SelectMultipleField("Types de fichiers acceptés", choices=choices(FILE_TYPES.items()),
                                default=DEFAULT_FILE_TYPES, validate_choice=False,
                                widget=ListWidget(prefix_label=False),
                                option_widget=CheckboxInput())
    max_size = StringField("Taille maximale (Mo)", filters=[_strip], validators=[_valid_size],
                           render_kw={"autocomplete": "off", "inputmode": "decimal"})
    help = StringField("Aide", filters=[_strip], validators=[
        Optional(), Length(max=500, message="Au plus 500 caractères.")],
        render_kw={"autocomplete": "off"})

    def validate_types(self, field) -> None:
        if row_is_blank(self):
            return
        if not field.data:
            raise ValidationError("Cochez au moins un type de fichier.")
        if any(t not in FILE_TYPES for t in field.data):
            raise ValidationError("Type de fichier inconnu.")


FIELD_ROW = ("label", "name", "type", "required", "help", "options")
DOCUMENT_ROW = ("label", "name", "required", "types", "max_size", "help")


class FilledRows(Rows):
    """Rows that a category being edited fills in (``Rows`` itself only reads a form sent)."""

    def process(self, formdata, data=unset_value, extra_filters=None):
        if extra_filters:
            raise TypeError("FilledRows does not accept filters: put them on the row's fields.")
        self.last_index = -1
        self.entries = []
        self.object_data = data
        given = list(data) if not formdata and isinstance(data, list | tuple) else []
        for index in range(self.min_entries):
            self._add_entry(formdata, given[index] if index < len(given) else unset_value)


def category_form(n_fields: int = MAX_FIELD_ROWS,
                  n_documents: int = MAX_DOCUMENT_ROWS) -> type[FlaskForm]:
    """The category form with that many rows (more than the default when a category
    already has more fields: editing it must not drop any)."""

    class CategoryForm(FlaskForm):
        label = StringField("Libellé", filters=[_strip], validators=[
            DataRequired("Indiquez le libellé de la catégorie."),
            Length(max=200, message="Au plus 200 caractères.")],
            render_kw={"autocomplete": "off"})
        description = TextAreaField("Description", filters=[_strip], validators=[
            Optional(), Length(max=2000, message="Au plus 2 000 caractères.")],
            render_kw={"rows": 3})
        kind = SelectField("Effet d'une demande acceptée",
                           choices=choices([("", "Aucun (demande simple)"), *KINDS.items()]),
                           default="")
        active = BooleanField("Proposée aux familles", default=True)
        version = HiddenField()
        fields = FilledRows(FormField(FieldRow), "Champ", min_entries=n_fields,
                            max_entries=n_fields)
        documents = FilledRows(FormField(DocumentRow), "Document", min_entries=n_documents,
                               max_entries=n_documents)

        def filled_fields(self) -> list[int]:
            """Indexes of the field rows filled in: the API's ``fields.N`` is the Nth."""
            return [i for i, e in enumerate(self.fields) if not row_is_blank(e.form)]

        def filled_documents(self) -> list[int]:
            return [i for i, e in enumerate(self.documents) if not row_is_blank(e.form)]

        def payload(self, previous: dict[str, Any] | None = None) -> dict[str, Any]:
            """The body of ``POST|PATCH .../categories``. What the form does not show of a
            category being edited (options' values, a document's ``max_files``) is kept."""
            previous = previous or {}
            old_fields = {f.get("name"): f for f in previous.get("fields") or []
                          if isinstance(f, dict)}
            old_docs = {d.get("name"): d for d in previous.get("required_attachments") or []
                        if isinstance(d, dict)}
            rows = [self.fields.entries[i].form for i in self.filled_fields()]
            docs = [self.documents.entries[i].form for i in self.filled_documents()]
            taken = {row.name.data for row in rows + docs if row.name.data}
            fields = []
            for row in rows:
                name = row.name.data or name_from_label(row.label.data, taken)
                taken.add(name)
                spec: dict[str, Any] = {"name": name, "label": row.label.data,
                                        "type": row.type.data,
                                        "required": bool(row.required.data),
                                        "help": row.help.data or None}
                if row.type.data == "choice":
                    known = {o.get("label"): o.get("value")
                             for o in (old_fields.get(name) or {}).get("options") or []
                             if isinstance(o, dict)}
                    spec["options"] = [{"value": known.get(label) or label, "label": label}
                                       for label in parse_options(row.options.data)]
                fields.append(spec)
            documents = []
            for row in docs:
                name = row.name.data or name_from_label(row.label.data, taken)
                taken.add(name)
                size = parse_megabytes(row.max_size.data) or Decimal(DEFAULT_MAX_SIZE_MB)
                spec = {"name": name, "label": row.label.data,
                        "required": bool(row.required.data),
                        "accepted_types": [t for t in FILE_TYPES if t in (row.types.data or [])],
                        "max_size": int(size * MB), "help": row.help.data or None}
                max_files = (old_docs.get(name) or {}).get("max_files")
                if isinstance(max_files, int) and max_files > 1:
                    spec["max_files"] = max_files
                documents.append(spec)
            body: dict[str, Any] = {
                "label": self.label.data, "description": self.description.data or None,
                "kind": self.kind.data or None, "active": bool(self.active.data),
                "fields": fields, "required_attachments": documents}
            if (self.version.data or "").isdigit():
                body["version"] = int(self.version.data)
            return body

        def api_path(self, key: str) -> str | None:
            """The form's field for an error of the API (``fields.2.options``); None: the
            error goes on top of the form."""
            parts = key.split(".")
            groups = {"fields": ("fields", self.filled_fields, FIELD_ROW),
                      "required_attachments": ("documents", self.filled_documents,
                                               DOCUMENT_ROW)}
            if parts[0] in groups and len(parts) > 2 and parts[1].isdigit():
                group, filled, names = groups[parts[0]]
                rows = filled()
                index = int(parts[1])
                name = {"accepted_types": "types"}.get(parts[2], parts[2])
                if index >= len(rows) or name not in names:
                    return None
                return f"{group}.{rows[index]}.{name}"
            if len(parts) == 1 and key in ("label", "description", "kind", "active"):
                return key
            return None

    return CategoryForm


def category_data(category: dict[str, Any]) -> dict[str, Any]:
    """A category as the API gives it → the form's data (to edit it)."""
    fields = []
    for spec in category.get("fields") or []:
        if not isinstance(spec, dict):
            continue
        options = [o.get("label") or o.get("value") if isinstance(o, dict) else str(o)
                   for o in spec.get("options") or []]
        fields.append({"name": spec.get("name") or "", "label": spec.get("label") or "",
                       "type": spec.get("type") or "text",
                       "required": bool(spec.get("required")), "help": spec.get("help") or "",
                       "options": ", ".join(o for o in options if o)})
    documents = []
    for spec in category.get("required_attachments") or []:
        if not isinstance(spec, dict):
            continue
        size = spec.get("max_size")
        megabytes = ""
        if isinstance(size, int) and size > 0:
            value = Decimal(size) / MB
            megabytes = (f"{value:.0f}" if value == value.to_integral_value()
                         else f"{value:.2f}".rstrip("0").replace(".", ","))
        documents.append({"name": spec.get("name") or "", "label": spec.get("label") or "",
                          "required": bool(spec.get("required")),
                          "types": list(spec.get("accepted_types") or DEFAULT_FILE_TYPES),
                          "max_size": megabytes, "help": spec.get("help") or ""})
    return {"label": category.get("label") or "",
            "description": category.get("description") or "",
            "kind": category.get("kind") or "", "active": category.get("active", True),
            "version": str(category.get("version") or ""),
            "fields": fields, "documents": documents}
