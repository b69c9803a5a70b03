"""Notifications' HTTP payloads."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from .models import STATUSES


class PageQuerySchema(Schema):
    cursor = fields.String(load_default=None,
                           metadata={"description": "Le `next` de la page précédente."})


class CommuneMessagesQuerySchema(PageQuerySchema):
    status = fields.String(load_default=None, validate=validate.OneOf(STATUSES),
                           metadata={"description": "pending, sent ou failed"})


class MessageSchema(Schema):
    """A message sent (or to be sent) to the household."""

    id = fields.String()
    subject = fields.String()
    to = fields.String(attribute="recipient")
    status = fields.String(metadata={"description": "pending, sent ou failed"})
    created_at = fields.DateTime()
    sent_at = fields.DateTime(allow_none=True)
    kind = fields.String(metadata={"description": "le modèle : invitation, invoice_issued…"})
    text = fields.Method("_text", metadata={
        "type": "string",
        "description": "la partie texte (les liens d'activation et de réinitialisation, "
                       "secrets, y sont masqués)"})

    def _text(self, message) -> str:
        return message.history_text or message.text_body


class AgentMessageSchema(MessageSchema):
    """The same, with what an agent needs to understand a failure."""

    family_id = fields.String(allow_none=True)
    event_id = fields.String()
    event_type = fields.String()
    attempts = fields.Integer()
    next_attempt_at = fields.DateTime(allow_none=True)
    failed_at = fields.DateTime(allow_none=True)
    last_error = fields.String(allow_none=True)


class MessagePageSchema(Schema):
    items = fields.List(fields.Nested(MessageSchema))
    next = fields.String(allow_none=True, metadata={"description": "curseur de la page suivante"})


class AgentMessagePageSchema(Schema):
    items = fields.List(fields.Nested(AgentMessageSchema))
    next = fields.String(allow_none=True)
