"""Accounts' HTTP payloads."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from .domain import MODULES, SLUG


class CommuneSettingsSchema(Schema):
    timezone = fields.String(load_default="Europe/Paris",
                             validate=validate.OneOf(["Europe/Paris"]))
    modules = fields.List(fields.String(validate=validate.OneOf(MODULES)),
                          load_default=list(MODULES))
    contact_email = fields.Email(load_default=None, allow_none=True)
    phone = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=30))
    address = fields.String(load_default=None, allow_none=True,
                            validate=validate.Length(max=300))


class CommuneCreateSchema(Schema):
    slug = fields.String(required=True, validate=validate.Regexp(
        SLUG, error="Lettres minuscules, chiffres et tirets (2 à 63 caractères)."))
    name = fields.String(required=True, validate=validate.Length(min=2, max=200))
    settings = fields.Nested(CommuneSettingsSchema,
                             load_default=lambda: CommuneSettingsSchema().load({}))


class CommuneSchema(Schema):
    id = fields.String(dump_only=True)
    slug = fields.String()
    name = fields.String()
    settings = fields.Dict()


class CredentialsSchema(Schema):
    email = fields.String(required=True, validate=validate.Length(min=3, max=254))
    password = fields.String(required=True, validate=validate.Length(min=1, max=1024))


class PrincipalSchema(Schema):
    account_id = fields.String()
    email = fields.String()
    family_id = fields.String(allow_none=True)
    platform_admin = fields.Boolean()
    communes = fields.Dict()
