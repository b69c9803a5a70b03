"""Demo data of DESIGN section 7 owned by requests: the request categories of the two demo
communes. Idempotent (run at every ``portail seed``); a category an agent changed since is
left as it is.

The communes are named by the same stable ids as in accounts' seed (the same uuid5 namespace),
so the categories exist even before accounts' ``commune.created`` events have arrived.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from services.common.db import Database

from .domain import MB, check_category
from .models import Category

_NS = uuid.UUID("6f0b8a4e-6d43-4c36-9b62-6a1f0c2f3e11")
COMMUNES = ("jolieville", "dammartin")


def demo_id(kind: str, key: str) -> str:
    """Stable ids, so that every service's demo data refers to the same commune or family."""
    return str(uuid.uuid5(_NS, f"{kind}:{key}"))


def _field(name: str, label: str, type_: str, required: bool = True, help: str | None = None,
           options: list[str] | None = None) -> dict[str, Any]:
    return {"name": name, "label": label, "type": type_, "required": required, "help": help,
            "options": options or []}


def _document(name: str, label: str, required: bool, types: list[str], size_mb: int,
              help: str | None = None) -> dict[str, Any]:
    return {"name": name, "label": label, "required": required, "accepted_types": types,
            "max_size": size_mb * MB, "max_files": 1, "help": help}


CATEGORIES: list[tuple[str, dict[str, Any]]] = [
    ("pickup_authorisation", {
        "label": "Autorisation de récupération d'un enfant",
        "description": "Autoriser une autre personne à venir chercher votre enfant à la sortie "
                       "de l'école, de l'accueil périscolaire ou du centre de loisirs.",
        "kind": None,
        "fields": [
            _field("child", "Enfant", "child"),
            _field("person_name", "Nom et prénom de la personne autorisée", "text"),
            _field("relation", "Lien avec l'enfant", "text",
                   help="Par exemple : grand-mère, voisin, baby-sitter."),
            _field("phone", "Téléphone de la personne autorisée", "phone"),
            _field("from", "À partir du", "date"),
        ],
        "required_attachments": [
            _document("identity_document", "Pièce d'identité de la personne autorisée", True,
                      ["pdf", "jpeg", "png"], 5,
                      help="Carte d'identité, passeport ou permis de conduire, recto verso."),
        ],
    }),
    ("address_change", {
        "label": "Changement d'adresse",
        "description": "Signaler votre nouvelle adresse : la mairie met votre dossier à jour "
                       "après vérification du justificatif.",
        "kind": "address_change",
        "fields": [
            _field("line1", "Adresse", "text", help="Numéro et nom de la voie."),
            _field("line2", "Complément d'adresse", "text", required=False,
                   help="Bâtiment, étage, lieu-dit…"),
            _field("postal_code", "Code postal", "text"),
            _field("city", "Commune", "text"),
            _field("from", "Date du déménagement", "date", required=False),
        ],
        "required_attachments": [
            _document("proof_of_address", "Justificatif de domicile de moins de 3 mois", True,
                      ["pdf", "jpeg", "png", "heic"], 10,
                      help="Facture d'électricité, de gaz, d'eau, de téléphone, ou quittance "
                           "de loyer."),
        ],
    }),
    ("food_allergy", {
        "label": "Allergie alimentaire",
        "description": "Signaler une allergie ou une intolérance alimentaire de votre enfant "
                       "pour la restauration scolaire et les accueils.",
        "kind": "allergy",
        "fields": [
            _field("child", "Enfant", "child"),
            _field("notes", "Description de l'allergie", "long_text",
                   help="Aliments en cause, réactions, traitement éventuel."),
        ],
        "required_attachments": [
            _document("medical_certificate", "Certificat médical", True,
                      ["pdf", "jpeg", "png"], 10),
        ],
    }),
    ("absence", {
        "label": "Absence justifiée",
        "description": "Justifier l'absence de votre enfant (maladie, rendez-vous médical…) : "
                       "une fois acceptée, les jours d'absence ne sont pas facturés.",
        "kind": "absence_justification",
        "fields": [
            _field("child", "Enfant", "child"),
            _field("from", "Premier jour d'absence", "date"),
            _field("to", "Dernier jour d'absence", "date", required=False,
                   help="Laissez vide pour une absence d'un jour."),
            _field("reason", "Motif", "choice",
                   options=["Maladie", "Rendez-vous médical", "Raison familiale", "Autre"]),
        ],
        "required_attachments": [
            _document("certificate", "Certificat médical ou justificatif", False,
                      ["pdf", "jpeg", "png", "heic"], 10),
        ],
    }),
]


def seed(db: Database) -> list[str]:
    """Create the categories that are missing; returns what was created."""
    created: list[str] = []
    moment = datetime.now(UTC)
    with db.transaction() as session:
        for slug in COMMUNES:
            commune_id = demo_id("commune", slug)
            for position, (key, definition) in enumerate(CATEGORIES):
                category_id = demo_id("category", f"{slug}:{key}")
                if session.get(Category, category_id) is not None:
                    continue
                taken = session.scalar(select(Category.id).where(
                    Category.commune_id == commune_id, Category.label == definition["label"]))
                if taken is not None:
                    continue
                checked = check_category(definition, max_upload=25 * MB)
                session.add(Category(
                    id=category_id, commune_id=commune_id, label=checked["label"],
                    description=checked["description"], kind=checked["kind"],
                    fields=checked["fields"], documents=checked["documents"],
                    statuses=checked["statuses"], transitions=checked["transitions"],
                    active=True, position=position, version=1, created_at=moment,
                    updated_at=moment))
                created.append(f"catégorie de demande « {checked['label']} » ({slug})")
    return created
