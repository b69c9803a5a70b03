"""The event catalogue (services/common/catalogue.py) against DESIGN section 5.

``EXAMPLES`` holds one complete, valid ``data`` object per event type (version 1): it is the
documentation of what each event carries, and every test below starts from it.
"""

from __future__ import annotations

import copy
import json
from datetime import date, datetime
from decimal import Decimal

import pytest

from services.common import catalogue
from services.common.catalogue import InvalidEvent

# The contract: every type of DESIGN section 5, copied from the table.
DESIGN_TYPES = [
    "accounts.commune.created",
    "accounts.family.invited",
    "accounts.family.activated",
    "accounts.family.updated",
    "accounts.membership.created",
    "accounts.password_reset.requested",
    "reservations.booking.confirmed",
    "reservations.basket.checked_out",
    "reservations.basket.expired",
    "reservations.booking.cancelled",
    "reservations.attendance.recorded",
    "billing.invoice.issued",
    "billing.payment.succeeded",
    "billing.payment.failed",
    "billing.credit_note.issued",
    "requests.request.submitted",
    "requests.request.status_changed",
]
# Additions made since, documented in the catalogue module.
ADDED_TYPES = ["accounts.commune.updated", "accounts.household.erased",
               "reservations.access.recorded", "billing.access.recorded",
               "requests.access.recorded"]

# Required fields of each type (version 1). Making a field required, or dropping one, is a
# breaking change: it needs a version 2, not an edit of this list.
REQUIRED = {
    "accounts.commune.created": {"commune_id", "slug", "name", "settings"},
    "accounts.commune.updated": {"commune_id", "slug", "name", "settings", "version"},
    "accounts.family.invited": {
        "family_id",
        "email",
        "activation_url",
        "commune_id",
        "commune_name",
        "commune_slug",
    },
    "accounts.family.activated": {"family_id", "email"},
    "accounts.family.updated": {
        "family_id",
        "family_name",
        "guardians",
        "children",
        "communes",
        "version",
    },
    "accounts.membership.created": {"family_id", "commune_id", "family_code"},
    "accounts.password_reset.requested": {"email", "reset_url"},
    "accounts.household.erased": {"family_id", "commune_ids", "version", "erased_at"},
    **{f"{service}.access.recorded": {"account_id", "family_id", "action", "at"}
       for service in ("reservations", "billing", "requests")},
    "reservations.booking.confirmed": {
        "booking_ids",
        "family_id",
        "child_id",
        "activity_id",
        "dates",
        "unit_price",
        "payment_mode",
        "child_first_name",
        "activity_name",
        "recipients",
    },
    "reservations.basket.checked_out": {
        "basket_id",
        "family_id",
        "lines",
        "amount",
        "payment_mode",
    },
    "reservations.basket.expired": {"basket_id"},
    "reservations.booking.cancelled": {
        "booking_ids",
        "family_id",
        "child_id",
        "activity_id",
        "dates",
        "payment_mode",
        "within_deadline",
        "refund_due",
        "child_first_name",
        "activity_name",
        "recipients",
    },
    "reservations.attendance.recorded": {
        "child_id",
        "activity_id",
        "date",
        "status",
        "family_id",
    },
    "billing.invoice.issued": {
        "invoice_id",
        "number",
        "family_id",
        "amount",
        "due_date",
        "recipients",
    },
    "billing.payment.succeeded": {
        "payment_id",
        "family_id",
        "invoice_ids",
        "amount",
        "provider_reference",
        "recipients",
    },
    "billing.payment.failed": {"payment_id", "family_id", "status", "reason", "recipients"},
    "billing.credit_note.issued": {
        "credit_note_id",
        "family_id",
        "amount",
        "origin",
        "recipients",
    },
    "requests.request.submitted": {
        "request_id",
        "family_id",
        "category_id",
        "category_label",
        "recipients",
    },
    "requests.request.status_changed": {
        "request_id",
        "family_id",
        "old_status",
        "new_status",
        "recipients",
    },
}

COMMUNE = "0b6a3c1e-5d7f-4e21-9a3b-1c2d3e4f5a01"  # jolieville
COMMUNE_2 = "0b6a3c1e-5d7f-4e21-9a3b-1c2d3e4f5a02"  # dammartin
FAMILY = "f0000000-0000-4000-8000-000000000001"  # CASSEREAU
ACCOUNT = "acc00000-0000-4000-8000-000000000001"
GUARDIAN_1 = "9a000000-0000-4000-8000-000000000001"
GUARDIAN_2 = "9a000000-0000-4000-8000-000000000002"
CHILD_1 = "c0000000-0000-4000-8000-000000000001"
CHILD_2 = "c0000000-0000-4000-8000-000000000002"
ACTIVITY = "ac000000-0000-4000-8000-000000000001"  # centre de loisirs mercredi
ACTIVITY_2 = "ac000000-0000-4000-8000-000000000002"  # accueil périscolaire soir
BOOKING_1 = "b0000000-0000-4000-8000-000000000001"
BOOKING_2 = "b0000000-0000-4000-8000-000000000002"
BOOKING_3 = "b0000000-0000-4000-8000-000000000003"
BASKET = "ba000000-0000-4000-8000-000000000001"
PAYMENT = "da000000-0000-4000-8000-000000000001"
INVOICE = "1e000000-0000-4000-8000-000000000001"
CREDIT_NOTE = "cd000000-0000-4000-8000-000000000001"
CANCELLATION = "ca000000-0000-4000-8000-000000000001"
REQUEST = "7e000000-0000-4000-8000-000000000001"
CATEGORY = "ca7e0000-0000-4000-8000-000000000001"
PARENT_EMAIL = "parent@famille.test"
RECIPIENTS = [PARENT_EMAIL, "second.parent@famille.test"]

SETTINGS = {
    "timezone": "Europe/Paris",
    "modules": ["reservations", "invoices", "requests"],
    "contact_email": "enfance@jolieville.test",
    "phone": "01 23 45 67 89",
    "address": {
        "line1": "Mairie, 1 place de la République",
        "line2": None,
        "postal_code": "77000",
        "city": "JolieVille",
    },
    "logo_url": "https://jolieville.test/logo.png",
    "payment_config_ref": "payfip-jolieville",
}

_ACCESS = {
    "account_id": "acc00000-0000-4000-8000-000000000009",
    "email": "agent@jolieville.test",
    "family_id": FAMILY,
    "action": "invoices.list",
    "object_id": None,
    "at": "2026-10-05T08:30:00+00:00",
}

EXAMPLES: dict[str, dict] = {
    "accounts.household.erased": {
        "family_id": FAMILY,
        "commune_ids": [COMMUNE, COMMUNE_2],
        "version": 7,
        "erased_at": "2026-11-02T09:00:00+00:00",
        "request_id": "e0000000-0000-4000-8000-000000000001",
    },
    "reservations.access.recorded": dict(_ACCESS),
    "billing.access.recorded": dict(_ACCESS),
    "requests.access.recorded": dict(_ACCESS),
    "accounts.commune.created": {
        "commune_id": COMMUNE,
        "slug": "jolieville",
        "name": "JolieVille Test",
        "settings": SETTINGS,
    },
    "accounts.commune.updated": {
        "commune_id": COMMUNE,
        "slug": "jolieville",
        "name": "JolieVille",
        "settings": {**SETTINGS, "modules": ["reservations", "invoices"]},
        "version": 2,
    },
    "accounts.family.invited": {
        "family_id": FAMILY,
        "email": PARENT_EMAIL,
        "activation_url": "http://localhost:8000/activation?token=abc123",
        "commune_id": COMMUNE,
        "commune_name": "JolieVille Test",
        "commune_slug": "jolieville",
        "family_name": "CASSEREAU",
        "family_code": "JV-0042",
        "expires_at": "2026-10-12T08:00:00Z",
    },
    "accounts.family.activated": {
        "family_id": FAMILY,
        "email": PARENT_EMAIL,
        "account_id": ACCOUNT,
    },
    "accounts.family.updated": {
        "family_id": FAMILY,
        "family_name": "CASSEREAU",
        "guardians": [
            {
                "id": GUARDIAN_1,
                "first_name": "Claire",
                "last_name": "CASSEREAU",
                "email": PARENT_EMAIL,
                "phones": ["06 12 34 56 78"],
                "pays": True,
            },
            {
                "id": GUARDIAN_2,
                "first_name": "Marc",
                "last_name": "CASSEREAU",
                "email": None,
                "phones": [],
                "pays": False,
            },
        ],
        "children": [
            {
                "id": CHILD_1,
                "first_name": "Léa",
                "last_name": "CASSEREAU",
                "birth_date": "2018-03-14",
                "school": "École élémentaire Jean Jaurès",
                "class_name": "CE2",
                "allergies": True,
            },
            {
                "id": CHILD_2,
                "first_name": "Tom",
                "last_name": "CASSEREAU",
                "birth_date": "2021-09-02",
                "school": None,
                "class_name": None,
                "allergies": False,
            },
        ],
        "address": {
            "line1": "12 rue des Lilas",
            "line2": "Bâtiment B",
            "postal_code": "77000",
            "city": "JolieVille",
        },
        "communes": [
            {"commune_id": COMMUNE, "slug": "jolieville", "family_code": "JV-0042"},
            {"commune_id": COMMUNE_2, "slug": "dammartin", "family_code": "DST-0007"},
        ],
        "version": 3,
    },
    "accounts.membership.created": {
        "family_id": FAMILY,
        "commune_id": COMMUNE_2,
        "family_code": "DST-0007",
        "commune_slug": "dammartin",
    },
    "accounts.password_reset.requested": {
        "email": PARENT_EMAIL,
        "reset_url": "https://portail.example.fr/mot-de-passe/nouveau?token=xyz",
        "account_id": ACCOUNT,
        "family_id": FAMILY,
        "expires_at": "2026-10-05T09:30:00+02:00",
    },
    "reservations.booking.confirmed": {
        "booking_ids": [BOOKING_1, BOOKING_2],
        "family_id": FAMILY,
        "child_id": CHILD_1,
        "activity_id": ACTIVITY,
        "dates": ["2026-10-07", "2026-10-14"],
        "unit_price": "12.50",
        "payment_mode": "prepaid",
        "child_first_name": "Léa",
        "activity_name": "Centre de loisirs mercredi",
        "recipients": RECIPIENTS,
        "basket_id": BASKET,
    },
    "reservations.basket.checked_out": {
        "basket_id": BASKET,
        "family_id": FAMILY,
        "lines": [
            {
                "child_id": CHILD_1,
                "activity_id": ACTIVITY,
                "dates": ["2026-10-07", "2026-10-14"],
                "unit_price": "12.50",
                "amount": "25.00",
                "booking_ids": [BOOKING_1, BOOKING_2],
                "activity_name": "Centre de loisirs mercredi",
            },
            {
                "child_id": CHILD_2,
                "activity_id": ACTIVITY_2,
                "dates": ["2026-10-05"],
                "unit_price": "3.20",
                "amount": "3.20",
                "booking_ids": [],
                "activity_name": None,
            },
        ],
        "amount": "28.20",
        "payment_mode": "prepaid",
        "payment_id": PAYMENT,
    },
    "reservations.basket.expired": {
        "basket_id": BASKET,
        "family_id": FAMILY,
        "payment_id": PAYMENT,
        "booking_ids": [BOOKING_1, BOOKING_2],
    },
    "reservations.booking.cancelled": {
        "booking_ids": [BOOKING_1, BOOKING_2],
        "family_id": FAMILY,
        "child_id": CHILD_1,
        "activity_id": ACTIVITY,
        "dates": ["2026-10-07", "2026-10-14"],
        "payment_mode": "prepaid",
        "within_deadline": True,
        "refund_due": "25.00",
        "child_first_name": "Léa",
        "activity_name": "Centre de loisirs mercredi",
        "recipients": RECIPIENTS,
        "refund_lines": [
            {"booking_id": BOOKING_1, "date": "2026-10-07", "amount": "12.50"},
            {"booking_id": BOOKING_2, "date": "2026-10-14", "amount": "12.50"},
        ],
        "cancellation_id": CANCELLATION,
        "reason": "Rendez-vous médical",
        "agent_message": None,
    },
    "reservations.attendance.recorded": {
        "child_id": CHILD_1,
        "activity_id": ACTIVITY_2,
        "date": "2026-10-05",
        "status": "excused",
        "family_id": FAMILY,
        "booking_id": BOOKING_3,
        "recorded_at": "2026-10-05T17:45:12.123456Z",
    },
    "billing.invoice.issued": {
        "invoice_id": INVOICE,
        "number": "F2026-10-0042",
        "family_id": FAMILY,
        "amount": "82.00",
        "due_date": "2026-11-15",
        "recipients": [PARENT_EMAIL],
        "issue_date": "2026-11-01",
        "period": "2026-10",
    },
    "billing.payment.succeeded": {
        "payment_id": PAYMENT,
        "family_id": FAMILY,
        "invoice_ids": [INVOICE],
        "basket_id": None,
        "amount": "82.00",
        "provider_reference": "SIM-20261103-0001",
        "recipients": [PARENT_EMAIL],
        "provider": "simulator",
        "paid_at": "2026-11-03T10:15:00+01:00",
        "invoice_numbers": ["F2026-10-0042"],
    },
    "billing.payment.failed": {
        "payment_id": PAYMENT,
        "family_id": FAMILY,
        "basket_id": BASKET,
        "status": "denied",
        "reason": "Paiement refusé par la banque",
        "recipients": [PARENT_EMAIL],
        "invoice_ids": [],
        "amount": "28.20",
    },
    "billing.credit_note.issued": {
        "credit_note_id": CREDIT_NOTE,
        "family_id": FAMILY,
        "amount": "25.00",
        "origin": "booking_cancellation",
        "recipients": [PARENT_EMAIL],
        "number": "A2026-0003",
        "origin_id": CANCELLATION,
        "invoice_id": None,
        "booking_ids": [BOOKING_1, BOOKING_2],
    },
    "requests.request.submitted": {
        "request_id": REQUEST,
        "family_id": FAMILY,
        "category_id": CATEGORY,
        "category_label": "Absence justifiée",
        "recipients": [PARENT_EMAIL],
        "category_kind": "absence_justification",
        "reference": "D2026-0101",
    },
    "requests.request.status_changed": {
        "request_id": REQUEST,
        "family_id": FAMILY,
        "old_status": "in_progress",
        "new_status": "accepted",
        "recipients": [PARENT_EMAIL],
        "agent_message": "Absence justifiée, elle ne sera pas facturée.",
        "category_kind": "absence_justification",
        "payload": {"child_id": CHILD_1, "activity_id": ACTIVITY_2, "dates": ["2026-10-05"]},
        "category_id": CATEGORY,
        "category_label": "Absence justifiée",
    },
}

ALL_TYPES = DESIGN_TYPES + ADDED_TYPES


def example(event_type: str) -> dict:
    return copy.deepcopy(EXAMPLES[event_type])


def errors_of(event_type: str, data, *, strict: bool = True, version: int = 1) -> dict:
    with pytest.raises(InvalidEvent) as info:
        catalogue.validate(event_type, version, data, strict=strict)
    assert info.value.event_type == event_type
    assert info.value.version == version
    return info.value.errors


# ---- the catalogue covers the contract -------------------------------------------------------


def test_every_design_type_has_a_version_1():
    types = catalogue.event_types()
    assert sorted(ALL_TYPES) == types
    for event_type in ALL_TYPES:
        assert 1 in catalogue.SCHEMAS[event_type]


def test_event_types_are_named_service_entity_verb():
    for event_type in catalogue.event_types():
        service, entity, verb = event_type.split(".")
        assert service in {"accounts", "reservations", "billing", "requests"}
        assert entity and verb


def test_examples_cover_every_type_and_every_field():
    assert set(EXAMPLES) == set(catalogue.event_types())
    for event_type, data in EXAMPLES.items():
        schema = catalogue.schema_for(event_type, 1)
        assert set(data) == set(schema.fields), event_type


@pytest.mark.parametrize("event_type", ALL_TYPES)
def test_required_fields_are_the_documented_ones(event_type):
    schema = catalogue.schema_for(event_type, 1)
    required = {name for name, field in schema.fields.items() if field.required}
    assert required == REQUIRED[event_type]


# ---- valid examples ---------------------------------------------------------------------------


@pytest.mark.parametrize("event_type", ALL_TYPES)
def test_example_passes_strict_and_is_returned_unchanged(event_type):
    data = example(event_type)
    before = json.dumps(data, sort_keys=True)
    result = catalogue.validate(event_type, 1, data, strict=True)
    assert result is data
    assert json.dumps(data, sort_keys=True) == before


@pytest.mark.parametrize("event_type", ALL_TYPES)
def test_example_passes_lenient(event_type):
    data = example(event_type)
    loaded = catalogue.validate(event_type, 1, data, strict=False)
    assert isinstance(loaded, dict)
    assert set(loaded) == set(data)
    assert json.dumps(data, sort_keys=True) == json.dumps(EXAMPLES[event_type], sort_keys=True)


@pytest.mark.parametrize("event_type", ALL_TYPES)
def test_minimal_example_passes_and_defaults_are_filled(event_type):
    data = {k: v for k, v in example(event_type).items() if k in REQUIRED[event_type]}
    assert catalogue.validate(event_type, 1, data, strict=True) is data
    loaded = catalogue.validate(event_type, 1, data, strict=False)
    assert set(loaded) == set(catalogue.schema_for(event_type, 1).fields)


def test_lenient_load_returns_python_types():
    loaded = catalogue.validate(
        "reservations.booking.confirmed",
        1,
        example("reservations.booking.confirmed"),
        strict=False,
    )
    assert loaded["unit_price"] == Decimal("12.50")
    assert isinstance(loaded["unit_price"], Decimal)
    assert loaded["dates"] == [date(2026, 10, 7), date(2026, 10, 14)]
    assert loaded["booking_ids"] == [BOOKING_1, BOOKING_2]
    assert all(isinstance(i, str) for i in loaded["booking_ids"])

    invoice = catalogue.validate(
        "billing.invoice.issued", 1, example("billing.invoice.issued"), strict=False
    )
    assert invoice["amount"] == Decimal("82.00")
    assert str(invoice["amount"]) == "82.00"
    assert invoice["due_date"] == date(2026, 11, 15)

    family = catalogue.validate(
        "accounts.family.updated", 1, example("accounts.family.updated"), strict=False
    )
    assert family["children"][0]["birth_date"] == date(2018, 3, 14)
    assert family["children"][0]["allergies"] is True

    paid = catalogue.validate(
        "billing.payment.succeeded", 1, example("billing.payment.succeeded"), strict=False
    )
    assert isinstance(paid["paid_at"], datetime)
    assert paid["paid_at"].utcoffset() is not None

    cancelled = catalogue.validate(
        "reservations.booking.cancelled",
        1,
        example("reservations.booking.cancelled"),
        strict=False,
    )
    assert cancelled["refund_lines"][0]["amount"] == Decimal("12.50")
    assert cancelled["refund_lines"][0]["date"] == date(2026, 10, 7)


def test_lenient_fills_defaults():
    data = example("accounts.commune.created")
    data["settings"] = {"modules": ["reservations"]}
    loaded = catalogue.validate("accounts.commune.created", 1, data, strict=False)
    assert loaded["settings"] == {
        "timezone": "Europe/Paris",
        "modules": ["reservations"],
        "contact_email": None,
        "phone": None,
        "address": None,
        "logo_url": None,
        "payment_config_ref": None,
        "retention": None,
    }
    assert "timezone" not in data["settings"]  # the published data is not modified


# ---- required fields --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event_type", "field"),
    [(t, f) for t in ALL_TYPES for f in sorted(REQUIRED[t])],
)
@pytest.mark.parametrize("strict", [True, False])
def test_missing_required_field_is_refused(event_type, field, strict):
    data = example(event_type)
    del data[field]
    errors = errors_of(event_type, data, strict=strict)
    assert field in errors
    assert set(errors) == {field}


def test_missing_nested_required_field_names_the_path():
    data = example("accounts.family.updated")
    del data["children"][1]["birth_date"]
    errors = errors_of("accounts.family.updated", data, strict=False)
    assert "birth_date" in errors["children"][1]


@pytest.mark.parametrize(
    ("event_type", "field", "value"),
    [
        ("accounts.family.updated", "guardians", []),
        ("reservations.booking.confirmed", "booking_ids", []),
        ("reservations.booking.confirmed", "dates", []),
        ("reservations.basket.checked_out", "lines", []),
        ("accounts.family.updated", "family_name", ""),
        ("billing.invoice.issued", "number", ""),
        ("reservations.booking.confirmed", "family_id", None),
        ("billing.invoice.issued", "due_date", None),
    ],
)
def test_empty_or_null_essentials_are_refused(event_type, field, value):
    data = example(event_type)
    data[field] = value
    assert field in errors_of(event_type, data)


# ---- unknown fields: strict refuses, lenient drops --------------------------------------------


@pytest.mark.parametrize("event_type", ALL_TYPES)
def test_unknown_field_refused_strict_dropped_lenient(event_type):
    data = example(event_type)
    data["surprise"] = "new in a later release"
    assert errors_of(event_type, data, strict=True) == {"surprise": ["Unknown field."]}
    loaded = catalogue.validate(event_type, 1, data, strict=False)
    assert "surprise" not in loaded
    assert set(loaded) == set(EXAMPLES[event_type])


def test_unknown_nested_field_refused_strict_dropped_lenient():
    data = example("accounts.family.updated")
    data["children"][0]["favourite_colour"] = "vert"
    data["communes"][1]["since"] = "2026-09-01"
    errors = errors_of("accounts.family.updated", data, strict=True)
    assert "favourite_colour" in errors["children"][0]
    assert "since" in errors["communes"][1]

    loaded = catalogue.validate("accounts.family.updated", 1, data, strict=False)
    assert "favourite_colour" not in loaded["children"][0]
    assert "since" not in loaded["communes"][1]
    assert loaded["children"][0]["first_name"] == "Léa"

    # the lenient load did not leave the nested schemas lenient
    assert (
        "favourite_colour" in errors_of("accounts.family.updated", data, strict=True)["children"][0]
    )


def test_unknown_field_two_levels_down():
    data = example("accounts.commune.created")
    data["settings"]["address"]["cedex"] = "CEDEX 3"
    errors = errors_of("accounts.commune.created", data, strict=True)
    assert "cedex" in errors["settings"]["address"]
    loaded = catalogue.validate("accounts.commune.created", 1, data, strict=False)
    assert "cedex" not in loaded["settings"]["address"]


def test_schema_for_load_applies_unknown_mode_to_nested_schemas():
    from marshmallow import EXCLUDE

    data = example("reservations.basket.checked_out")
    data["lines"][0]["discount"] = "1.00"
    loaded = catalogue.schema_for("reservations.basket.checked_out", 1).load(data, unknown=EXCLUDE)
    assert "discount" not in loaded["lines"][0]


# ---- unknown type or version, bad data --------------------------------------------------------


@pytest.mark.parametrize(
    ("event_type", "version"),
    [
        ("accounts.family.deleted", 1),
        ("", 1),
        ("billing.invoice.issued", 2),
        ("billing.invoice.issued", 0),
        ("billing.invoice.issued", "1"),
        ("billing.invoice.issued", True),
    ],
)
def test_unknown_type_or_version_is_refused(event_type, version):
    with pytest.raises(InvalidEvent) as info:
        catalogue.schema_for(event_type, version)
    assert info.value.event_type == event_type
    assert info.value.errors
    data = example("billing.invoice.issued")
    for strict in (True, False):
        with pytest.raises(InvalidEvent):
            catalogue.validate(event_type, version, data, strict=strict)


def test_schema_for_returns_a_fresh_schema_instance():
    schema = catalogue.schema_for("billing.invoice.issued", 1)
    assert isinstance(schema, catalogue.SCHEMAS["billing.invoice.issued"][1])


@pytest.mark.parametrize("data", [None, [], "{}", 42, [("invoice_id", INVOICE)]])
@pytest.mark.parametrize("strict", [True, False])
def test_data_that_is_not_an_object_is_refused(data, strict):
    errors = errors_of("billing.invoice.issued", data, strict=strict)
    assert "_schema" in errors


def test_invalid_event_is_a_value_error_with_details():
    data = example("billing.invoice.issued")
    data["amount"] = "12"
    with pytest.raises(ValueError, match="billing.invoice.issued") as info:
        catalogue.validate("billing.invoice.issued", 1, data, strict=True)
    assert isinstance(info.value, InvalidEvent)
    assert info.value.version == 1
    assert list(info.value.errors) == ["amount"]


def test_strict_refuses_data_that_is_not_plain_json():
    data = example("requests.request.status_changed")
    data["payload"] = {"dates": {date(2026, 10, 5)}}
    assert "_schema" in errors_of("requests.request.status_changed", data, strict=True)


# ---- amounts -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "amount",
    [
        "82.0",
        "82",
        "82.000",
        "abc",
        "",
        "-1.00",
        "082.00",
        "8,20",
        "NaN",
        82.0,
        82,
        Decimal("82.00"),
        None,
        True,
    ],
)
@pytest.mark.parametrize("strict", [True, False])
def test_malformed_amounts_are_refused(amount, strict):
    data = example("reservations.booking.confirmed")
    data["unit_price"] = amount
    assert "unit_price" in errors_of("reservations.booking.confirmed", data, strict=strict)


@pytest.mark.parametrize(
    ("event_type", "field"),
    [
        ("reservations.basket.checked_out", "amount"),
        ("reservations.booking.cancelled", "refund_due"),
        ("billing.invoice.issued", "amount"),
        ("billing.payment.succeeded", "amount"),
        ("billing.credit_note.issued", "amount"),
    ],
)
def test_every_amount_field_refuses_floats_and_one_decimal(event_type, field):
    for bad in (28.2, "28.2"):
        data = example(event_type)
        data[field] = bad
        assert field in errors_of(event_type, data)


def test_nested_amounts_are_checked():
    data = example("reservations.basket.checked_out")
    data["lines"][1]["amount"] = 3.2
    errors = errors_of("reservations.basket.checked_out", data)
    assert "amount" in errors["lines"][1]


def test_zero_amounts_where_they_make_sense():
    nothing_to_refund = example("reservations.booking.cancelled")
    nothing_to_refund.update(within_deadline=False, refund_due="0.00", refund_lines=None)
    loaded = catalogue.validate(
        "reservations.booking.cancelled", 1, nothing_to_refund, strict=False
    )
    assert loaded["refund_due"] == Decimal("0.00")

    for event_type in ("billing.payment.succeeded", "billing.credit_note.issued"):
        data = example(event_type)
        data["amount"] = "0.00"
        assert "amount" in errors_of(event_type, data)


def test_large_amounts_are_fine():
    data = example("billing.invoice.issued")
    data["amount"] = "1234567.89"
    loaded = catalogue.validate("billing.invoice.issued", 1, data, strict=False)
    assert loaded["amount"] == Decimal("1234567.89")


# ---- other formats ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "not-a-uuid",
        "1234",
        1234,
        "F0000000-0000-4000-8000-00000000000Z",
        "{f0000000-0000-4000-8000-000000000001}",
        "f0000000000040008000000000000001",
    ],
)
def test_ids_must_be_uuid_strings(value):
    data = example("billing.invoice.issued")
    data["family_id"] = value
    assert "family_id" in errors_of("billing.invoice.issued", data)


def test_uppercase_uuid_is_accepted_and_kept_as_string():
    data = example("billing.invoice.issued")
    data["family_id"] = FAMILY.upper()
    loaded = catalogue.validate("billing.invoice.issued", 1, data, strict=False)
    assert loaded["family_id"] == FAMILY.upper()


@pytest.mark.parametrize(
    "value",
    [
        "2026/11/15",
        "15/11/2026",
        "20261115",
        "2026-02-30",
        "2026-11-15T00:00:00",
        date(2026, 11, 15),
        20261115,
    ],
)
def test_dates_must_be_iso_strings(value):
    data = example("billing.invoice.issued")
    data["due_date"] = value
    assert "due_date" in errors_of("billing.invoice.issued", data)


@pytest.mark.parametrize(
    "value",
    ["2026-11-03T10:15:00", "2026-11-03", "yesterday", datetime(2026, 11, 3, 10, 15).isoformat()],
)
def test_datetimes_must_be_aware_iso_strings(value):
    data = example("billing.payment.succeeded")
    data["paid_at"] = value
    assert "paid_at" in errors_of("billing.payment.succeeded", data)


@pytest.mark.parametrize(
    ("event_type", "field", "value"),
    [
        ("reservations.booking.confirmed", "payment_mode", "cash"),
        ("reservations.basket.checked_out", "payment_mode", "PREPAID"),
        ("reservations.attendance.recorded", "status", "late"),
        ("requests.request.status_changed", "new_status", "done"),
        ("requests.request.status_changed", "old_status", "nouvelle"),
        ("requests.request.status_changed", "category_kind", "other"),
        ("requests.request.submitted", "category_kind", "Allergie"),
        ("billing.payment.failed", "status", "paid"),
        ("billing.credit_note.issued", "origin", "gift"),
    ],
)
def test_enumerations_are_closed(event_type, field, value):
    data = example(event_type)
    data[field] = value
    assert field in errors_of(event_type, data)


@pytest.mark.parametrize("kind", ["absence_justification", "address_change", "allergy", None])
def test_request_category_kinds(kind):
    data = example("requests.request.status_changed")
    data["category_kind"] = kind
    assert catalogue.validate("requests.request.status_changed", 1, data, strict=True) is data


def test_status_change_must_change_the_status():
    data = example("requests.request.status_changed")
    data["old_status"] = data["new_status"] = "accepted"
    assert "new_status" in errors_of("requests.request.status_changed", data)


@pytest.mark.parametrize("value", ["true", 1, 0, "yes", None])
def test_booleans_must_be_json_booleans(value):
    data = example("reservations.booking.cancelled")
    data["within_deadline"] = value
    assert "within_deadline" in errors_of("reservations.booking.cancelled", data)


@pytest.mark.parametrize("value", [0, -1, "2", 2.5, True, None])
def test_snapshot_version_is_a_positive_integer(value):
    data = example("accounts.family.updated")
    data["version"] = value
    assert "version" in errors_of("accounts.family.updated", data)


@pytest.mark.parametrize(
    "slug", ["JolieVille", "-jolieville", "j", "jolie ville", "jolie_ville", "a" * 64]
)
def test_commune_slug_format(slug):
    data = example("accounts.commune.created")
    data["slug"] = slug
    assert "slug" in errors_of("accounts.commune.created", data)


def test_commune_modules_are_a_subset_of_the_known_ones():
    data = example("accounts.commune.updated")
    data["settings"]["modules"] = ["reservations", "cantine"]
    assert "modules" in errors_of("accounts.commune.updated", data)["settings"]
    data["settings"]["modules"] = ["invoices", "invoices"]
    assert "modules" in errors_of("accounts.commune.updated", data)["settings"]
    data["settings"]["modules"] = []
    assert catalogue.validate("accounts.commune.updated", 1, data, strict=True) is data


def test_emails_and_urls_are_checked():
    data = example("accounts.family.invited")
    data["email"] = "not an e-mail"
    data["activation_url"] = "javascript:alert(1)"
    errors = errors_of("accounts.family.invited", data)
    assert {"email", "activation_url"} <= set(errors)

    data = example("billing.invoice.issued")
    data["recipients"] = [PARENT_EMAIL, "nobody"]
    assert 1 in errors_of("billing.invoice.issued", data)["recipients"]

    data = example("billing.invoice.issued")
    data["recipients"] = []
    assert catalogue.validate("billing.invoice.issued", 1, data, strict=True) is data


# ---- consistency rules ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "event_type", ["reservations.booking.confirmed", "reservations.booking.cancelled"]
)
def test_booking_ids_and_dates_go_in_pairs(event_type):
    data = example(event_type)
    data["dates"] = data["dates"][:1]
    if event_type == "reservations.booking.cancelled":
        data["refund_lines"] = None
    assert "dates" in errors_of(event_type, data)


def test_duplicate_ids_and_dates_are_refused():
    data = example("reservations.booking.confirmed")
    data["booking_ids"] = [BOOKING_1, BOOKING_1]
    assert "booking_ids" in errors_of("reservations.booking.confirmed", data)

    data = example("reservations.booking.confirmed")
    data["dates"] = ["2026-10-07", "2026-10-07"]
    assert "dates" in errors_of("reservations.booking.confirmed", data)

    data = example("accounts.family.updated")
    data["children"][1]["id"] = CHILD_1
    assert "children" in errors_of("accounts.family.updated", data)


def test_basket_line_booking_ids_pair_with_dates_when_given():
    data = example("reservations.basket.checked_out")
    data["lines"][0]["booking_ids"] = [BOOKING_1]
    errors = errors_of("reservations.basket.checked_out", data)
    assert "booking_ids" in errors["lines"][0]


def test_refund_lines_add_up_to_refund_due():
    data = example("reservations.booking.cancelled")
    data["refund_due"] = "20.00"
    assert "refund_lines" in errors_of("reservations.booking.cancelled", data)


def test_payment_settles_invoices_or_a_basket():
    data = example("billing.payment.succeeded")
    data["invoice_ids"] = []
    data["basket_id"] = None
    assert "invoice_ids" in errors_of("billing.payment.succeeded", data)

    data["basket_id"] = BASKET
    assert catalogue.validate("billing.payment.succeeded", 1, data, strict=True) is data


# ---- through the envelope ----------------------------------------------------------------------


def test_the_envelope_validates_against_the_catalogue():
    from services.common.events import Event

    event = Event.new(
        "billing.invoice.issued",
        example("billing.invoice.issued"),
        producer="billing",
        commune_id=COMMUNE,
    )
    assert Event.from_json(event.to_json()).data == EXAMPLES["billing.invoice.issued"]

    bad = example("billing.invoice.issued")
    bad["amount"] = 82.0
    with pytest.raises(InvalidEvent):
        Event.new("billing.invoice.issued", bad, producer="billing")
