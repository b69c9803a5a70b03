"""Accounts' HTTP payloads, with French validation messages."""

from __future__ import annotations

import re
from datetime import date

from marshmallow import Schema, ValidationError, fields, validate, validates

from services.common.fields import REQUIRED, UUID_PATTERN, Text

from .domain import MODULES, SLUG

_PHONE = re.compile(r"^\+?[0-9][0-9 .()-]{5,24}$")
_POSTAL_CODE = re.compile(r"^\d{5}$")
_UUID = UUID_PATTERN



def name_field(max_length: int = 100, **kwargs) -> Text:
    return Text(validate=validate.Length(max=max_length,
                                         error=f"Au plus {max_length} caractères."),
                error_messages=REQUIRED, **kwargs)


def optional_text(max_length: int, *, default: bool = True) -> Text:
    """A text that may be left empty (null); filled in with null when absent, unless
    ``default`` is false (a PATCH carries only what was sent)."""
    extra = {"load_default": None} if default else {}
    return Text(allow_none=True, validate=validate.Length(
        max=max_length, error=f"Au plus {max_length} caractères."), **extra)


class Email(fields.Email):
    default_error_messages = {"invalid": "Adresse e-mail invalide."}

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, str):
            value = value.strip().lower()
            if not value and self.allow_none:
                return None  # an optional address left empty in a form
        return super()._deserialize(value, attr, data, **kwargs)

    def _validate(self, value):
        if value is not None:
            super()._validate(value)


class Id(fields.String):
    default_error_messages = {"invalid_id": "Identifiant invalide."}

    def _deserialize(self, value, attr, data, **kwargs):
        value = super()._deserialize(value, attr, data, **kwargs)
        if not _UUID.match(value):
            raise self.make_error("invalid_id")
        return value.lower()


def phones_field(**kwargs) -> fields.List:
    return fields.List(
        Text(validate=validate.Regexp(_PHONE, error="Numéro de téléphone invalide.")),
        validate=validate.Length(max=5, error="Au plus 5 numéros."), **kwargs)


# Inputs --------------------------------------------------------------------------------------
class AddressSchema(Schema):
    line1 = name_field(200, required=True)
    line2 = optional_text(200)
    postal_code = Text(required=True, error_messages=REQUIRED, validate=validate.Regexp(
        _POSTAL_CODE, error="Code postal à 5 chiffres."))
    city = name_field(100, required=True)


class GuardianInSchema(Schema):
    first_name = name_field(required=True)
    last_name = name_field(required=True)
    relation = optional_text(60)
    email = Email(load_default=None, allow_none=True)
    phones = phones_field(load_default=list)
    pays = fields.Boolean(load_default=False)


class ChildInSchema(Schema):
    first_name = name_field(required=True)
    last_name = name_field(required=True)
    birth_date = fields.Date(required=True, error_messages=REQUIRED)
    school = optional_text(200)
    class_name = optional_text(60)
    allergies = fields.Boolean(load_default=False)
    allergy_notes = optional_text(2000)

    @validates("birth_date")
    def _not_in_future(self, value: date, **kwargs):
        if value > date.today():
            raise ValidationError("La date de naissance ne peut pas être dans le futur.")
        if value.year < 1990:
            raise ValidationError("Date de naissance invalide.")


class FamilyCreateSchema(Schema):
    family_name = name_field(required=True)
    email = Email(required=True, error_messages=REQUIRED)
    guardians = fields.List(fields.Nested(GuardianInSchema), required=True,
                            error_messages=REQUIRED, validate=validate.Length(
                                min=1, max=4, error="Entre 1 et 4 responsables."))
    children = fields.List(fields.Nested(ChildInSchema), load_default=list,
                           validate=validate.Length(max=15, error="Au plus 15 enfants."))
    address = fields.Nested(AddressSchema, load_default=None, allow_none=True)


class GuardianPatchSchema(Schema):
    id = Id(required=True, error_messages=REQUIRED)
    first_name = name_field()
    last_name = name_field()
    relation = optional_text(60, default=False)
    email = Email(allow_none=True)
    phones = phones_field()
    pays = fields.Boolean()


class ChildPatchSchema(Schema):
    """Children are not changed by parents; accepted only to say so (or to ignore a form
    that sends them back unchanged)."""

    id = fields.String()
    first_name = fields.String()
    last_name = fields.String()
    birth_date = fields.Date()
    school = fields.String(allow_none=True)
    class_name = fields.String(allow_none=True)
    allergies = fields.Boolean()
    allergy_notes = fields.String(allow_none=True)


class FamilyPatchSchema(Schema):
    guardians = fields.List(fields.Nested(GuardianPatchSchema))
    family_name = fields.String()
    address = fields.Nested(AddressSchema, allow_none=True)
    children = fields.List(fields.Nested(ChildPatchSchema))
    version = fields.Integer(strict=True)


class ChildAgentPatchSchema(Schema):
    """A child as an agent corrects it; without ``id``, a child added to the household."""

    id = fields.String(load_default=None)
    first_name = name_field()
    last_name = name_field()
    birth_date = fields.Date()
    school = optional_text(200, default=False)
    class_name = optional_text(60, default=False)
    allergies = fields.Boolean()
    allergy_notes = optional_text(2000, default=False)


class AgentFamilyPatchSchema(Schema):
    """What an agent applies, e.g. after accepting a request with its proof: the address, the
    family name, children's details and allergies (PAI)."""

    family_name = name_field(200)
    address = fields.Nested(AddressSchema, allow_none=True)
    children = fields.List(fields.Nested(ChildAgentPatchSchema))
    version = fields.Integer(strict=True)


class FamilyQuerySchema(Schema):
    q = fields.String(load_default="", validate=validate.Length(max=100))
    cursor = fields.String(load_default=None)


class CursorQuerySchema(Schema):
    cursor = fields.String(load_default=None)


class TokenSchema(Schema):
    token = fields.String(required=True, error_messages=REQUIRED,
                          validate=validate.Length(max=200))


class TokenPasswordSchema(TokenSchema):
    password = fields.String(required=True, error_messages=REQUIRED)


class EmailSchema(Schema):
    email = Email(required=True, error_messages=REQUIRED)


class PasswordChangeSchema(Schema):
    current_password = fields.String(required=True, error_messages=REQUIRED,
                                     validate=validate.Length(max=1024))
    new_password = fields.String(required=True, error_messages=REQUIRED)


class JoinCommuneSchema(Schema):
    commune = fields.String(required=True, error_messages=REQUIRED,
                            validate=validate.Length(max=63))
    family_code = fields.String(required=True, error_messages=REQUIRED,
                                validate=validate.Length(min=1, max=30))


class NewsInSchema(Schema):
    title = name_field(200, required=True)
    body = name_field(20000, required=True)


class RetentionSchema(Schema):
    """Issue 8: the commune's retention durations, in months (empty: the default)."""

    audit_log_months = fields.Integer(load_default=None, allow_none=True, strict=True,
                                      validate=validate.Range(1, 120, error="Entre 1 et 120 "
                                                                            "mois."))
    notifications_months = fields.Integer(load_default=None, allow_none=True, strict=True,
                                          validate=validate.Range(1, 120, error="Entre 1 et "
                                                                                "120 mois."))
    erasure_records_months = fields.Integer(load_default=None, allow_none=True, strict=True,
                                            validate=validate.Range(1, 120, error="Entre 1 "
                                                                                  "et 120 mois."))


class CommuneSettingsSchema(Schema):
    timezone = fields.String(load_default="Europe/Paris",
                             validate=validate.OneOf(["Europe/Paris"]))
    modules = fields.List(fields.String(validate=validate.OneOf(MODULES)),
                          load_default=list(MODULES))
    contact_email = Email(load_default=None, allow_none=True)
    phone = optional_text(30)
    address = fields.Nested(AddressSchema, load_default=None, allow_none=True)
    logo_url = fields.Url(load_default=None, allow_none=True, schemes={"https", "http"})
    payment_config_ref = optional_text(100)
    retention = fields.Nested(RetentionSchema, load_default=None, allow_none=True)


class CommuneSettingsPatchSchema(Schema):
    timezone = fields.String(validate=validate.OneOf(["Europe/Paris"]))
    modules = fields.List(fields.String(validate=validate.OneOf(MODULES)))
    contact_email = Email(allow_none=True)
    phone = optional_text(30, default=False)
    address = fields.Nested(AddressSchema, allow_none=True)
    logo_url = fields.Url(allow_none=True, schemes={"https", "http"})
    payment_config_ref = optional_text(100, default=False)
    retention = fields.Nested(RetentionSchema, allow_none=True)


class CommuneCreateSchema(Schema):
    slug = fields.String(required=True, validate=validate.Regexp(
        SLUG, error="Lettres minuscules, chiffres et tirets (2 à 63 caractères)."))
    name = fields.String(required=True, validate=validate.Length(min=2, max=200))
    settings = fields.Nested(CommuneSettingsSchema,
                             load_default=lambda: CommuneSettingsSchema().load({}))


class CommunePatchSchema(Schema):
    name = name_field(200)
    settings = fields.Nested(CommuneSettingsPatchSchema)


class CredentialsSchema(Schema):
    email = fields.String(required=True, validate=validate.Length(min=3, max=254))
    password = fields.String(required=True, validate=validate.Length(min=1, max=1024))


class CodeSchema(Schema):
    """A code of the second factor: 6 digits of the app, or a recovery code."""

    code = fields.String(required=True, validate=validate.Length(min=1, max=64))


# Outputs -------------------------------------------------------------------------------------
class CommuneSchema(Schema):
    id = fields.String(dump_only=True)
    slug = fields.String()
    name = fields.String()
    settings = fields.Dict()
    version = fields.Integer()


class AddressOutSchema(Schema):
    line1 = fields.String()
    line2 = fields.String(allow_none=True)
    postal_code = fields.String()
    city = fields.String()


class GuardianSchema(Schema):
    id = fields.String()
    first_name = fields.String()
    last_name = fields.String()
    relation = fields.String(allow_none=True)
    email = fields.String(allow_none=True)
    phones = fields.List(fields.String())
    pays = fields.Boolean()


class ChildSchema(Schema):
    id = fields.String()
    first_name = fields.String()
    last_name = fields.String()
    birth_date = fields.Date()
    school = fields.String(allow_none=True)
    class_name = fields.String(allow_none=True)
    allergies = fields.Boolean()
    allergy_notes = fields.String(allow_none=True)


class FamilySchema(Schema):
    id = fields.String()
    family_name = fields.String()
    address = fields.Nested(AddressOutSchema, allow_none=True)
    guardians = fields.List(fields.Nested(GuardianSchema))
    children = fields.List(fields.Nested(ChildSchema))
    version = fields.Integer()


class AgentFamilySchema(FamilySchema):
    family_code = fields.String()
    email = fields.String(allow_none=True)
    status = fields.String(metadata={"description": "invited, active ou disabled"})
    invited_at = fields.DateTime(allow_none=True)
    membership_status = fields.String(metadata={
        "description": "active, ou pending : foyer déjà inscrit ailleurs, qui doit rejoindre "
                       "la commune avec son code famille"})
    joined_at = fields.DateTime(allow_none=True)


class FamilyListItemSchema(Schema):
    id = fields.String()
    family_name = fields.String()
    family_code = fields.String()
    email = fields.String(allow_none=True)
    status = fields.String()
    children_count = fields.Integer()
    membership_status = fields.String()


class FamilyPageSchema(Schema):
    items = fields.List(fields.Nested(FamilyListItemSchema))
    next = fields.String(allow_none=True)


class InvitationSchema(Schema):
    expires_at = fields.DateTime()


class ActivationInfoSchema(Schema):
    status = fields.String()
    email = fields.String()
    family_name = fields.String(allow_none=True)
    guardians = fields.List(fields.Nested(GuardianSchema))
    children = fields.List(fields.Nested(ChildSchema))
    expires_at = fields.DateTime()


class ResetInfoSchema(Schema):
    status = fields.String()
    email = fields.String()
    expires_at = fields.DateTime()


class AccountStateSchema(Schema):
    status = fields.String()
    account_id = fields.String()
    email = fields.String()
    family_id = fields.String(allow_none=True)
    detail = fields.String()


class MessageSchema(Schema):
    detail = fields.String()


class MeCommuneSchema(Schema):
    slug = fields.String()
    name = fields.String()
    roles = fields.List(fields.String())
    family_code = fields.String()


class MeSchema(Schema):
    account_id = fields.String()
    email = fields.String()
    family_id = fields.String(allow_none=True)
    platform_admin = fields.Boolean()
    communes = fields.List(fields.Nested(MeCommuneSchema))


class MyCommuneSchema(Schema):
    slug = fields.String()
    name = fields.String()
    family_code = fields.String()
    joined_at = fields.DateTime(allow_none=True)


class MyCommunesSchema(Schema):
    items = fields.List(fields.Nested(MyCommuneSchema))


class NewsSchema(Schema):
    id = fields.String()
    title = fields.String()
    body = fields.String()
    published_at = fields.DateTime()


class NewsPageSchema(Schema):
    items = fields.List(fields.Nested(NewsSchema))
    next = fields.String(allow_none=True)


class PrincipalSchema(Schema):
    account_id = fields.String()
    email = fields.String()
    family_id = fields.String(allow_none=True)
    platform_admin = fields.Boolean()
    communes = fields.Dict()
