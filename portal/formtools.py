"""Forms and the API's answers: its French messages go next to the fields they are about.

The services answer ``422`` with ``errors`` keyed by the path of the JSON field
(``guardians.0.email``); each page says how such a path names one of its form's fields.
What names no field is shown at the top of the form, in the error summary.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from flask import Flask
from wtforms import Field, FieldList, FormField
from wtforms.form import BaseForm

from .client import Answer

GENERIC_REFUSAL = "Votre demande n'a pas pu être enregistrée."
RATE_LIMITED = "Vous avez fait trop de demandes : réessayez dans quelques instants."

Rename = Callable[[str], str | None]


def field_at(form: BaseForm, path: str) -> Field | None:
    """The leaf field named by a dotted path, ``guardians.1.email``, or None.

    A trailing list index is about the field itself (``phones.0`` → ``phones``).
    """
    node: Any = form
    for part in path.split("."):
        if isinstance(node, FormField):
            node = node.form
        if isinstance(node, FieldList):
            if not part.isdigit() or int(part) >= len(node.entries):
                return None
            node = node.entries[int(part)]
        elif isinstance(node, BaseForm):
            node = node._fields.get(part)
            if node is None:
                return None
        elif isinstance(node, Field) and part.isdigit():
            continue
        else:
            return None
    if isinstance(node, FormField | FieldList) or not isinstance(node, Field):
        return None
    return node


def add_error(field: Field, message: str) -> None:
    field.errors = [*field.errors, message]


def apply_answer(form: BaseForm, answer: Answer, rename: Rename | None = None) -> list[str]:
    """Put a refusal's field errors on ``form``; returns the messages for the summary.

    ``rename`` turns the API's path into the form's (None: not a field of this form).
    """
    top: list[str] = []
    placed = False
    for key, messages in answer.errors.items():
        name = rename(key) if rename else key
        target = field_at(form, name) if name and name != "csrf_token" else None
        for message in messages:
            if target is not None:
                add_error(target, message)
                placed = True
            else:
                top.append(message)
    if not placed and not top:
        if answer.status == 429:
            top.append(answer.detail or RATE_LIMITED)
        else:
            top.append(answer.detail or GENERIC_REFUSAL)
    return top


def field_errors(form: BaseForm) -> list[tuple[str, str]]:
    """``(field id, message)`` for the error summary, in the order of the form.

    A field inside a repeated group says which one (``Responsable 2 : Indiquez le nom.``).
    """
    return [(f.id, f"{context}{f.errors[0]}") for f, context in _leaves(form, "") if f.errors]


def _leaves(form: BaseForm, context: str) -> Iterator[tuple[Field, str]]:
    for field in form:
        if field.name.endswith("csrf_token"):
            continue
        if isinstance(field, FieldList):
            label = field.label.text
            for index, entry in enumerate(field.entries, start=1):
                inner = f"{context}{label} {index} : "
                if isinstance(entry, FormField):
                    yield from _leaves(entry.form, inner)
                else:
                    yield entry, inner
        elif isinstance(field, FormField):
            yield from _leaves(field.form, context)
        else:
            yield field, context


def install_form_helpers(app: Flask) -> None:
    app.add_template_global(field_errors, "field_errors")
