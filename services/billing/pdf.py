"""PDF documents (invoice, credit note, annual attestation) with fpdf2: no system library, no
font file. The PDF core fonts cover Latin-1, which French needs, but not "€" or typographic
spaces: text is brought into Latin-1 first ("€" becomes "EUR")."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from decimal import Decimal

from fpdf import FPDF

from .domain import euros

_REPLACE = {"€": "EUR", "\u202f": " ", "\u00a0": " ", "—": "-", "–": "-", "’": "'",
            "œ": "oe", "Œ": "OE", "…": "..."}


def latin1(text: str | None) -> str:
    text = "".join(_REPLACE.get(ch, ch) for ch in str(text or ""))
    text = unicodedata.normalize("NFC", text)
    return text.encode("latin-1", "replace").decode("latin-1")


def amount(value: Decimal) -> str:
    return latin1(euros(value))


@dataclass
class Party:
    name: str
    lines: list[str] = field(default_factory=list)


@dataclass
class Row:
    label: str
    quantity: str
    unit_price: str
    amount: str
    extra: str = ""


@dataclass
class Document:
    """What one PDF shows: a title, the commune (issuer), the household, lines, totals, notes."""

    title: str
    reference: str
    commune: Party
    household: Party
    facts: list[tuple[str, str]]
    rows: list[Row]
    totals: list[tuple[str, str]]
    notes: list[str] = field(default_factory=list)
    columns: tuple[str, str, str, str] = ("Désignation", "Quantité", "Prix unitaire", "Montant")
    extra_column: str | None = None


class _Pdf(FPDF):
    def footer(self):
        self.set_y(-15)
        self.set_font("Helvetica", size=8)
        self.set_text_color(90, 90, 90)
        self.cell(0, 10, latin1(f"Page {self.page_no()}/{{nb}}"), align="C")


def render(doc: Document) -> bytes:
    pdf = _Pdf(format="A4")
    pdf.set_title(latin1(f"{doc.title} {doc.reference}"))
    pdf.set_subject(latin1(doc.reference))
    pdf.set_author(latin1(doc.commune.name))
    pdf.set_creator("Portail Famille")
    pdf.set_lang("fr-FR")
    pdf.alias_nb_pages()
    pdf.set_auto_page_break(True, margin=20)
    pdf.add_page()

    pdf.set_font("Helvetica", "B", 14)
    pdf.cell(95, 7, latin1(doc.commune.name), new_x="RIGHT", new_y="TOP")
    pdf.set_font("Helvetica", "B", 16)
    pdf.cell(95, 7, latin1(doc.title), align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", size=9)
    top = pdf.get_y()
    for line in doc.commune.lines:
        pdf.cell(95, 5, latin1(line), new_x="LMARGIN", new_y="NEXT")
    pdf.set_xy(105, top)
    pdf.set_font("Helvetica", "B", 10)
    pdf.cell(95, 5, latin1(f"Référence : {doc.reference}"), align="R", new_x="LEFT",
             new_y="NEXT")
    pdf.set_font("Helvetica", size=9)
    for label, value in doc.facts:
        pdf.set_x(105)
        pdf.cell(95, 5, latin1(f"{label} : {value}"), align="R", new_x="LEFT", new_y="NEXT")

    pdf.set_y(max(pdf.get_y(), top + 30) + 4)
    pdf.set_x(110)
    pdf.set_font("Helvetica", "B", 11)
    pdf.cell(90, 6, latin1(doc.household.name), new_x="LEFT", new_y="NEXT")
    pdf.set_font("Helvetica", size=10)
    for line in doc.household.lines:
        pdf.set_x(110)
        pdf.cell(90, 5, latin1(line), new_x="LEFT", new_y="NEXT")
    pdf.ln(8)

    widths = (100, 25, 30, 35) if not doc.extra_column else (75, 20, 25, 30, 40)
    headers = list(doc.columns) + ([doc.extra_column] if doc.extra_column else [])
    pdf.set_font("Helvetica", "B", 9)
    pdf.set_fill_color(230, 230, 230)
    for width, header in zip(widths, headers, strict=True):
        pdf.cell(width, 7, latin1(header), border=1, fill=True,
                 align="L" if header == headers[0] else "R")
    pdf.ln()
    pdf.set_font("Helvetica", size=9)
    for row in doc.rows:
        cells = [row.label, row.quantity, row.unit_price, row.amount]
        if doc.extra_column:
            cells.append(row.extra)
        for index, (width, value) in enumerate(zip(widths, cells, strict=True)):
            text = latin1(value)
            while index == 0 and pdf.get_string_width(text) > width - 2 and len(text) > 4:
                text = text[:-4] + "..."
            pdf.cell(width, 6, text, border=1, align="L" if index == 0 else "R")
        pdf.ln()
    pdf.ln(3)
    for label, value in doc.totals:
        pdf.set_x(pdf.l_margin + sum(widths) - 90)
        pdf.set_font("Helvetica", "B", 10)
        pdf.cell(55, 6, latin1(label), align="R")
        pdf.cell(35, 6, latin1(value), align="R", new_x="LMARGIN", new_y="NEXT")
    if doc.notes:
        pdf.ln(6)
        pdf.set_font("Helvetica", size=9)
        for note in doc.notes:
            pdf.multi_cell(0, 5, latin1(note), new_x="LMARGIN", new_y="NEXT")
            pdf.ln(1)
    return bytes(pdf.output())
