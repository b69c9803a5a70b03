"""The portal's forms (WTForms through Flask-WTF, so each carries its CSRF token).

Every message is written here in French: WTForms' own defaults are English. The portal checks
only what a person can fix at once (a missing field, two passwords that differ); the rules
themselves (common passwords, a family code) are the services' and come back as their 422.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    EmailField,
    FieldList,
    Form,
    FormField,
    PasswordField,
    StringField,
    TelField,
    TextAreaField,
)
from wtforms.utils import unset_value
from wtforms.validators import (
    DataRequired,
    EqualTo,
    Length,
    Optional,
    Regexp,
    StopValidation,
    ValidationError,
)
from wtforms.widgets import DateInput

# A light check only: whether the address exists is the accounts service's business, and
# email_validator would add a dependency for little gain here.
_EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
_SLUG = r"^[a-z0-9][a-z0-9-]{1,62}$"
_PHONE = r"^[0-9+ ().-]{6,30}$"

PASSWORD_MIN = 12
PASSWORD_MAX = 1024
PASSWORD_HINT = (f"Au moins {PASSWORD_MIN} caractères, sans autre contrainte. Les mots de "
                 "passe trop courants sont refusés : une phrase de quelques mots est facile à "
                 "retenir et sûre.")
EMAIL_MESSAGE = "Adresse e-mail invalide (exemple : nom@domaine.fr)."


def _strip(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


def _email_validators(required: str | None) -> list:
    first = DataRequired(required) if required else Optional()
    return [first, Length(max=254, message="Adresse e-mail trop longue."),
            Regexp(_EMAIL, message=EMAIL_MESSAGE)]


_EMAIL_KW = {"autocomplete": "email", "spellcheck": "false", "autocapitalize": "none"}


def _new_password(label: str) -> PasswordField:
    return PasswordField(label, validators=[
        DataRequired("Choisissez un mot de passe."),
        Length(min=PASSWORD_MIN, message=f"Au moins {PASSWORD_MIN} caractères."),
        Length(max=PASSWORD_MAX, message=f"Au plus {PASSWORD_MAX} caractères."),
    ], render_kw={"autocomplete": "new-password"})


def _confirmation(other: str) -> PasswordField:
    return PasswordField("Confirmation du mot de passe", validators=[
        DataRequired("Saisissez le mot de passe une seconde fois."),
        EqualTo(other, message="Les deux mots de passe ne sont pas identiques."),
    ], render_kw={"autocomplete": "new-password"})


class LoginForm(FlaskForm):
    email = EmailField(
        "Adresse e-mail",
        validators=[
            DataRequired("Indiquez votre adresse e-mail."),
            Length(max=254, message="Adresse e-mail trop longue."),
            Regexp(_EMAIL, message="Adresse e-mail invalide (exemple : nom@domaine.fr)."),
        ],
        render_kw={"autocomplete": "username", "spellcheck": "false",
                   "autocapitalize": "none"},
    )
    password = PasswordField(
        "Mot de passe",
        validators=[
            DataRequired("Indiquez votre mot de passe."),
            Length(max=1024, message="Mot de passe trop long."),
        ],
        render_kw={"autocomplete": "current-password"},
    )


class NewPasswordForm(FlaskForm):
    """Activation and password reset: choose a password, typed twice."""

    password = _new_password("Mot de passe")
    confirmation = _confirmation("password")


class ResetRequestForm(FlaskForm):
    email = EmailField("Adresse e-mail", filters=[_strip],
                       validators=_email_validators("Indiquez votre adresse e-mail."),
                       render_kw={**_EMAIL_KW, "autocomplete": "username"})


class ChangePasswordForm(FlaskForm):
    current_password = PasswordField(
        "Mot de passe actuel",
        validators=[DataRequired("Indiquez votre mot de passe actuel."),
                    Length(max=PASSWORD_MAX, message="Mot de passe trop long.")],
        render_kw={"autocomplete": "current-password"},
    )
    new_password = _new_password("Nouveau mot de passe")
    confirmation = _confirmation("new_password")


class GuardianForm(FlaskForm):
    """A guardian's contact details, as the parent edits them on their profile."""

    first_name = StringField("Prénom", filters=[_strip], validators=[
        DataRequired("Indiquez le prénom."), Length(max=100, message="Au plus 100 caractères.")],
        render_kw={"autocomplete": "off"})
    last_name = StringField("Nom", filters=[_strip], validators=[
        DataRequired("Indiquez le nom."), Length(max=100, message="Au plus 100 caractères.")],
        render_kw={"autocomplete": "off"})
    relation = StringField("Lien avec les enfants", filters=[_strip], validators=[
        Optional(), Length(max=50, message="Au plus 50 caractères.")])
    email = EmailField("Adresse e-mail", filters=[_strip], validators=_email_validators(None),
                       render_kw={**_EMAIL_KW, "autocomplete": "off"})
    phone1 = TelField("Téléphone", filters=[_strip], validators=[
        Optional(), Regexp(_PHONE, message="Numéro de téléphone invalide.")],
        render_kw={"autocomplete": "off"})
    phone2 = TelField("Autre téléphone", filters=[_strip], validators=[
        Optional(), Regexp(_PHONE, message="Numéro de téléphone invalide.")],
        render_kw={"autocomplete": "off"})
    pays = BooleanField("Règle les factures du foyer")


class JoinCommuneForm(FlaskForm):
    commune = StringField(
        "Identifiant de la collectivité", filters=[_strip, lambda v: v.lower() if v else v],
        validators=[DataRequired("Indiquez l'identifiant de la collectivité."),
                    Regexp(_SLUG, message="Identifiant invalide : lettres minuscules, chiffres "
                                          "et tirets, comme « dammartin ».")],
        render_kw={"spellcheck": "false", "autocapitalize": "none", "autocomplete": "off"})
    family_code = StringField(
        "Code famille", filters=[_strip],
        validators=[DataRequired("Indiquez le code famille."),
                    Length(max=50, message="Au plus 50 caractères.")],
        render_kw={"spellcheck": "false", "autocomplete": "off"})


class NewsForm(FlaskForm):
    title = StringField("Titre", filters=[_strip], validators=[
        DataRequired("Indiquez un titre."), Length(max=200, message="Au plus 200 caractères.")])
    body = TextAreaField("Texte", filters=[_strip], validators=[
        DataRequired("Écrivez le texte de l'actualité."),
        Length(max=10000, message="Au plus 10 000 caractères.")],
        render_kw={"rows": 8})


# --- Creating a family (agents) -------------------------------------------------------------


def parse_date(value: str | None) -> date | None:
    """``2018-03-14`` (a date field) or ``14/03/2018`` (typed by hand); None otherwise."""
    value = (value or "").strip()
    for pattern in ("%Y-%m-%d", "%d/%m/%Y"):
        try:
            return datetime.strptime(value, pattern).date()
        except ValueError:
            continue
    return None


class _RowRequired:
    """Required once anything else of its row is filled in; a blank row is simply ignored."""

    def __init__(self, message: str):
        self.message = message

    def __call__(self, form: Form, field) -> None:
        if not (field.data or "").strip() and not row_is_blank(form):
            raise StopValidation(self.message)


def row_is_blank(form: Form) -> bool:
    return not any((f.data or "").strip() for f in form if isinstance(f, StringField))


def _valid_birth_date(form: Form, field) -> None:
    when = parse_date(field.data)
    if when is None:
        raise ValidationError("Date invalide (exemple : 14/03/2018).")
    if when > date.today() or when.year < 1990:
        raise ValidationError("Date de naissance invalide.")


class GuardianRow(Form):
    first_name = StringField("Prénom", filters=[_strip], validators=[
        _RowRequired("Indiquez le prénom."), Optional(),
        Length(max=100, message="Au plus 100 caractères.")], render_kw={"autocomplete": "off"})
    last_name = StringField("Nom", filters=[_strip], validators=[
        _RowRequired("Indiquez le nom."), Optional(),
        Length(max=100, message="Au plus 100 caractères.")], render_kw={"autocomplete": "off"})
    relation = StringField("Lien avec les enfants", filters=[_strip], validators=[
        Optional(), Length(max=50, message="Au plus 50 caractères.")],
        render_kw={"autocomplete": "off"})
    email = EmailField("Adresse e-mail", filters=[_strip], validators=_email_validators(None),
                       render_kw={**_EMAIL_KW, "autocomplete": "off"})
    phone = TelField("Téléphone", filters=[_strip], validators=[
        Optional(), Regexp(_PHONE, message="Numéro de téléphone invalide.")],
        render_kw={"autocomplete": "off"})
    pays = BooleanField("Règle les factures du foyer")


class ChildRow(Form):
    first_name = StringField("Prénom", filters=[_strip], validators=[
        _RowRequired("Indiquez le prénom."), Optional(),
        Length(max=100, message="Au plus 100 caractères.")], render_kw={"autocomplete": "off"})
    last_name = StringField("Nom", filters=[_strip], validators=[
        _RowRequired("Indiquez le nom."), Optional(),
        Length(max=100, message="Au plus 100 caractères.")], render_kw={"autocomplete": "off"})
    birth_date = StringField("Date de naissance", filters=[_strip], widget=DateInput(),
                             validators=[_RowRequired("Indiquez la date de naissance."),
                                         Optional(), _valid_birth_date],
                             render_kw={"autocomplete": "off"})
    school = StringField("École", filters=[_strip], validators=[
        Optional(), Length(max=200, message="Au plus 200 caractères.")],
        render_kw={"autocomplete": "off"})
    class_name = StringField("Classe", filters=[_strip], validators=[
        Optional(), Length(max=50, message="Au plus 50 caractères.")],
        render_kw={"autocomplete": "off"})
    allergies = BooleanField("Allergie / PAI")


MAX_GUARDIANS = 2
MAX_CHILDREN = 4


class Rows(FieldList):
    """A fixed number of rows, row ``i`` read from ``name-i-…`` whatever else was sent.

    WTForms' FieldList renumbers the indexes it receives, so a missing row would shift the
    others (and the filler rows would read a row twice): here a row keeps its number, which is
    also what ties the API's ``children.N`` errors back to the row the agent typed in.
    """

    def process(self, formdata, data=unset_value, extra_filters=None):
        if extra_filters:
            raise TypeError("Rows does not accept filters: put them on the row's fields.")
        self.last_index = -1
        self.entries = []
        self.object_data = data
        for _ in range(self.min_entries):
            self._add_entry(formdata)


class FamilyForm(FlaskForm):
    family_name = StringField("Nom de famille", filters=[_strip], validators=[
        DataRequired("Indiquez le nom de famille."),
        Length(max=200, message="Au plus 200 caractères.")], render_kw={"autocomplete": "off"})
    email = EmailField("Adresse e-mail principale", filters=[_strip],
                       validators=_email_validators("Indiquez l'adresse e-mail du foyer."),
                       render_kw={**_EMAIL_KW, "autocomplete": "off"})
    address_line1 = StringField("Adresse", filters=[_strip], validators=[
        Optional(), Length(max=200, message="Au plus 200 caractères.")],
        render_kw={"autocomplete": "off"})
    address_line2 = StringField("Complément d'adresse", filters=[_strip], validators=[
        Optional(), Length(max=200, message="Au plus 200 caractères.")],
        render_kw={"autocomplete": "off"})
    address_postal_code = StringField("Code postal", filters=[_strip], validators=[
        Optional(), Regexp(r"^[0-9]{5}$", message="Code postal invalide (5 chiffres).")],
        render_kw={"autocomplete": "off", "inputmode": "numeric"})
    address_city = StringField("Ville", filters=[_strip], validators=[
        Optional(), Length(max=100, message="Au plus 100 caractères.")],
        render_kw={"autocomplete": "off"})
    guardians = Rows(FormField(GuardianRow), "Responsable",
                     min_entries=MAX_GUARDIANS, max_entries=MAX_GUARDIANS)
    children = Rows(FormField(ChildRow), "Enfant",
                    min_entries=MAX_CHILDREN, max_entries=MAX_CHILDREN)

    ADDRESS = ("address_line1", "address_postal_code", "address_city")

    def validate(self, extra_validators=None) -> bool:
        ok = super().validate(extra_validators)
        if all(row_is_blank(entry.form) for entry in self.guardians):
            first = self.guardians.entries[0].form
            first.first_name.errors = [*first.first_name.errors,
                                       "Indiquez au moins un responsable."]
            ok = False
        filled = [name for name in self.ADDRESS if self[name].data]
        if filled and len(filled) < len(self.ADDRESS):
            for name in self.ADDRESS:
                if not self[name].data:
                    self[name].errors = [*self[name].errors,
                                         "Complétez l'adresse (ou laissez-la vide)."]
            ok = False
        return ok

    def guardian_rows(self) -> list[int]:
        """Indexes of the guardian rows filled in: the API's ``guardians.N`` is the Nth."""
        return [i for i, e in enumerate(self.guardians) if not row_is_blank(e.form)]

    def child_rows(self) -> list[int]:
        return [i for i, e in enumerate(self.children) if not row_is_blank(e.form)]

    def payload(self) -> dict[str, Any]:
        address = None
        if self.address_line1.data:
            address = {"line1": self.address_line1.data,
                       "line2": self.address_line2.data or None,
                       "postal_code": self.address_postal_code.data,
                       "city": self.address_city.data}
        guardians = []
        for i in self.guardian_rows():
            row = self.guardians.entries[i].form
            guardians.append({
                "first_name": row.first_name.data,
                "last_name": row.last_name.data,
                "relation": row.relation.data or None,
                "email": row.email.data or None,
                "phones": [row.phone.data] if row.phone.data else [],
                "pays": bool(row.pays.data),
            })
        children = []
        for i in self.child_rows():
            row = self.children.entries[i].form
            born = parse_date(row.birth_date.data)
            children.append({
                "first_name": row.first_name.data,
                "last_name": row.last_name.data,
                "birth_date": born.isoformat() if born else row.birth_date.data,
                "school": row.school.data or None,
                "class_name": row.class_name.data or None,
                "allergies": bool(row.allergies.data),
            })
        return {"family_name": self.family_name.data, "email": self.email.data,
                "address": address, "guardians": guardians, "children": children}

    def api_path(self, key: str) -> str | None:
        """The form's field for an error of ``POST .../families`` (``guardians.0.email``)."""
        parts = key.split(".")
        if parts[0] == "address" and len(parts) > 1:
            return f"address_{parts[1]}"
        if parts[0] in ("guardians", "children") and len(parts) > 2 and parts[1].isdigit():
            rows = self.guardian_rows() if parts[0] == "guardians" else self.child_rows()
            index = int(parts[1])
            if index >= len(rows):
                return None
            name = "phone" if parts[2] == "phones" else parts[2]
            return ".".join([parts[0], str(rows[index]), name])
        return key if len(parts) == 1 else None
