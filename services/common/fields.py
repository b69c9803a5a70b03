"""marshmallow pieces every service's schemas use, with French messages."""

from __future__ import annotations

import re

from marshmallow import ValidationError, fields

REQUIRED = {"required": "Ce champ est obligatoire.", "null": "Ce champ ne peut pas être vide."}
UUID_PATTERN = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
                          r"[0-9a-fA-F]{12}$")


class Text(fields.String):
    """A string trimmed of surrounding spaces; left empty, it is null where null is allowed
    and refused elsewhere (a form's blank field means "nothing", not "a space")."""

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs).strip()
        if not text:
            if self.allow_none:
                return None
            raise ValidationError("Ce champ ne peut pas être vide.")
        return text

    def _validate(self, value):
        if value is not None:
            super()._validate(value)
