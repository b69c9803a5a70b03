"""Requests' HTTP payloads, with French validation messages.

Submissions and replies are multipart (parsed in ``api``, checked in ``domain``); what is JSON
is described here, and every answer too (the OpenAPI document is built from these).
"""

from __future__ import annotations

from marshmallow import Schema, ValidationError, validate
from marshmallow import fields as f

from services.common.fields import REQUIRED, Text

from .domain import (
    FIELD_TYPES,
    FILE_TYPES,
    KINDS,
    MAX_FILES_PER_DOCUMENT,
    NAME,
    RETENTION_MAX_MONTHS,
    RETENTION_MIN_MONTHS,
    STATUSES,
)


def text(max_length: int, **kwargs) -> Text:
    kwargs.setdefault("error_messages", REQUIRED)
    return Text(validate=validate.Length(max=max_length, error=f"Au plus {max_length} "
                                                                "caractères."), **kwargs)


def one_of(choices, label: str) -> validate.OneOf:
    return validate.OneOf(choices, error=f"{label} : l'une des valeurs {', '.join(choices)}.")


_NAME = validate.Regexp(NAME, error="Lettres minuscules, chiffres et « _ », en commençant par "
                                    "une lettre (40 caractères au plus).")


class OptionSchema(Schema):
    value = text(200, required=True)
    label = text(200, load_default=None, allow_none=True)


class Option(f.Field):
    """An option of a choice: a string, or ``{value, label}``."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, str):
            value = value.strip()
            if not value or len(value) > 200:
                raise ValidationError("Option vide ou trop longue (200 caractères au plus).")
            return value
        if isinstance(value, dict):
            return OptionSchema().load(value)
        raise ValidationError("Une option est un texte ou {value, label}.")


class FieldSpecSchema(Schema):
    name = f.String(required=True, validate=_NAME, error_messages=REQUIRED)
    label = text(200, required=True)
    type = f.String(required=True, validate=one_of(FIELD_TYPES, "Type"),
                         error_messages=REQUIRED)
    required = f.Boolean(load_default=False)
    help = text(500, load_default=None, allow_none=True)
    options = f.List(Option(), load_default=list, validate=validate.Length(
        max=100, error="Au plus 100 options."))


class AttachmentSpecSchema(Schema):
    name = f.String(required=True, validate=_NAME, error_messages=REQUIRED)
    label = text(200, required=True)
    required = f.Boolean(load_default=False)
    accepted_types = f.List(
        f.String(validate=one_of(FILE_TYPES, "Type de fichier")),
        load_default=None, validate=validate.Length(min=1, error="Au moins un type."))
    max_size = f.Integer(load_default=None, strict=True, validate=validate.Range(
        min=1024, error="Au moins 1 Ko (en octets)."))
    max_files = f.Integer(load_default=1, strict=True, validate=validate.Range(
        min=1, max=MAX_FILES_PER_DOCUMENT,
        error=f"Entre 1 et {MAX_FILES_PER_DOCUMENT} fichiers."))
    help = text(500, load_default=None, allow_none=True)


class CategoryInSchema(Schema):
    label = text(200, required=True)
    description = text(2000, load_default=None, allow_none=True)
    kind = f.String(load_default=None, allow_none=True, validate=one_of(KINDS, "Type"))
    fields = f.List(f.Nested(FieldSpecSchema), load_default=list)
    required_attachments = f.List(f.Nested(AttachmentSpecSchema), load_default=list)
    statuses = f.List(f.String(validate=one_of(STATUSES, "Statut")),
                           load_default=None)
    transitions = f.Dict(keys=f.String(validate=one_of(STATUSES, "Statut")),
                              values=f.List(f.String(validate=one_of(STATUSES,
                                                                               "Statut"))),
                              load_default=None)
    active = f.Boolean(load_default=True)
    position = f.Integer(load_default=0, strict=True)


class CategoryPatchSchema(Schema):
    label = text(200)
    description = text(2000, allow_none=True)
    kind = f.String(allow_none=True, validate=one_of(KINDS, "Type"))
    fields = f.List(f.Nested(FieldSpecSchema))
    required_attachments = f.List(f.Nested(AttachmentSpecSchema))
    statuses = f.List(f.String(validate=one_of(STATUSES, "Statut")))
    transitions = f.Dict(keys=f.String(validate=one_of(STATUSES, "Statut")),
                              values=f.List(f.String(validate=one_of(STATUSES,
                                                                               "Statut"))))
    active = f.Boolean()
    position = f.Integer(strict=True)
    version = f.Integer(strict=True, metadata={
        "description": "la version lue : 409 si la catégorie a changé entre-temps"})


class CategoryQuerySchema(Schema):
    all = f.Boolean(load_default=False, metadata={
        "description": "agents : aussi les catégories désactivées"})


class RequestQuerySchema(Schema):
    status = f.String(load_default=None, metadata={
        "description": "un ou plusieurs statuts séparés par des virgules (agents)"})
    category = f.String(load_default=None, metadata={"description": "id de catégorie"})
    assigned = f.String(load_default=None, metadata={
        "description": "agents : « me », « none » ou l'id de compte d'un agent"})
    cursor = f.String(load_default=None)
    limit = f.Integer(load_default=50, validate=validate.Range(min=1, max=100))


class TransitionSchema(Schema):
    status = f.String(required=True, validate=one_of(STATUSES, "Statut"),
                           error_messages=REQUIRED)
    message = text(5000, load_default=None, allow_none=True)


class AssignSchema(Schema):
    agent_account_id = text(64, required=True, allow_none=True, metadata={
        "description": "un agent de la commune (voir GET .../agents), ou null pour retirer"})


class SettingsInSchema(Schema):
    retention_months = f.Integer(required=True, strict=True, error_messages=REQUIRED,
                                      validate=validate.Range(
                                          min=RETENTION_MIN_MONTHS, max=RETENTION_MAX_MONTHS,
                                          error=f"Entre {RETENTION_MIN_MONTHS} et "
                                                f"{RETENTION_MAX_MONTHS} mois."))


# Outputs -------------------------------------------------------------------------------------
class OptionOutSchema(Schema):
    value = f.String()
    label = f.String()


class FieldOutSchema(Schema):
    name = f.String()
    label = f.String()
    type = f.String()
    required = f.Boolean()
    help = f.String(allow_none=True)
    options = f.List(f.Nested(OptionOutSchema))


class AttachmentOutSchema(Schema):
    name = f.String()
    label = f.String()
    required = f.Boolean()
    accepted_types = f.List(f.String())
    max_size = f.Integer(metadata={"description": "en octets"})
    max_size_label = f.String(metadata={"description": "« 5 Mo »"})
    max_files = f.Integer()
    accept = f.String(metadata={"description": "pour l'attribut accept d'un champ fichier"})
    help = f.String(allow_none=True)


class CategorySchema(Schema):
    id = f.String()
    label = f.String()
    description = f.String(allow_none=True)
    kind = f.String(allow_none=True)
    fields = f.List(f.Nested(FieldOutSchema))
    required_attachments = f.List(f.Nested(AttachmentOutSchema))
    statuses = f.List(f.String())
    transitions = f.Dict(keys=f.String(), values=f.List(f.String()))
    active = f.Boolean()
    position = f.Integer()
    version = f.Integer()


class CategoryPageSchema(Schema):
    items = f.List(f.Nested(CategorySchema))
    next = f.String(allow_none=True)


class PersonSchema(Schema):
    kind = f.String(metadata={"description": "family, agent ou system"})
    account_id = f.String(allow_none=True)
    email = f.String(allow_none=True)


class AnswerSchema(Schema):
    name = f.String()
    label = f.String()
    type = f.String()
    value = f.Raw()
    display = f.String()


class DocumentOutSchema(Schema):
    id = f.String()
    name = f.String(allow_none=True, metadata={
        "description": "le document de la catégorie, ou null (joint à un message)"})
    label = f.String()
    filename = f.String()
    content_type = f.String()
    size = f.Integer()
    uploaded_by = f.String(metadata={"description": "family ou agent"})
    uploaded_at = f.DateTime()
    message_id = f.String(allow_none=True)
    url = f.String()


class MessageOutSchema(Schema):
    id = f.String()
    author = f.Nested(PersonSchema)
    body = f.String()
    created_at = f.DateTime()
    document_ids = f.List(f.String())


class HistoryOutSchema(Schema):
    at = f.DateTime()
    actor = f.Nested(PersonSchema)
    action = f.String(metadata={
        "description": "submitted, status_changed, message, assigned"})
    old_status = f.String(allow_none=True)
    old_status_label = f.String(allow_none=True)
    new_status = f.String(allow_none=True)
    new_status_label = f.String(allow_none=True)
    message = f.String(allow_none=True)
    details = f.Dict()


class CategoryRefSchema(Schema):
    id = f.String()
    label = f.String()
    kind = f.String(allow_none=True)


class AgentOutSchema(Schema):
    account_id = f.String()
    email = f.String()
    last_seen_at = f.DateTime()


class AgentPageSchema(Schema):
    items = f.List(f.Nested(AgentOutSchema))


class ChildOutSchema(Schema):
    id = f.String()
    first_name = f.String()
    last_name = f.String()
    birth_date = f.String()
    school = f.String(allow_none=True)
    class_name = f.String(allow_none=True)
    allergies = f.Boolean()


class HouseholdOutSchema(Schema):
    family_id = f.String()
    family_name = f.String(allow_none=True)
    family_code = f.String(allow_none=True)
    address = f.Dict(allow_none=True)
    guardians = f.List(f.Dict())
    children = f.List(f.Nested(ChildOutSchema))


class RequestSummarySchema(Schema):
    id = f.String()
    reference = f.String()
    category = f.Nested(CategoryRefSchema)
    status = f.String()
    status_label = f.String()
    created_at = f.DateTime()
    updated_at = f.DateTime()
    family_id = f.String()
    family_name = f.String(allow_none=True, metadata={"description": "agents"})
    assigned_to = f.Nested(AgentOutSchema, allow_none=True)
    waiting_for_family = f.Boolean()


class RequestPageSchema(Schema):
    items = f.List(f.Nested(RequestSummarySchema))
    next = f.String(allow_none=True)


class RequestSchema(RequestSummarySchema):
    fields = f.List(f.Nested(AnswerSchema))
    documents = f.List(f.Nested(DocumentOutSchema))
    messages = f.List(f.Nested(MessageOutSchema))
    history = f.List(f.Nested(HistoryOutSchema))
    allowed_transitions = f.List(f.String(), metadata={
        "description": "agents : les statuts vers lesquels la catégorie permet d'aller"})
    can_reply = f.Boolean(metadata={"description": "la famille peut écrire un message"})
    household = f.Nested(HouseholdOutSchema, allow_none=True, metadata={
        "description": "agents : le foyer et ses enfants"})


class SettingsSchema(Schema):
    retention_months = f.Integer()
