"""The portal's forms (WTForms through Flask-WTF, so each carries its CSRF token)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField
from wtforms.validators import DataRequired, Length, Regexp

# A light check only: whether the address exists is the accounts service's business, and
# email_validator would add a dependency for little gain here.
_EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"


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
