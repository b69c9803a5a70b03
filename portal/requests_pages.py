"""« Mes demandes » : a household's requests to the town hall, in the current commune.

The categories (and the form each one asks for) come from the requests API, and so does every
check: the portal turns a category's fields into inputs, sends what the parent typed and the
files they chose as multipart (``category``, one part per field by its name, one file part per
document by its name) with the ``Idempotency-Key`` the form was displayed with, and puts the
API's French messages next to the field or the document they are about. Files cannot be put
back into a form, so a refused form says which ones to choose again. Documents are plain links
to the API (the gateway authenticates the browser's own cookie), never proxied.
"""

from __future__ import annotations

import re
import secrets
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from werkzeug.datastructures import FileStorage
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from .account import Commune, current_account, current_commune, login_required
from .client import Answer, GatewayError, LoginRequired, call
from .formtools import GENERIC_REFUSAL, RATE_LIMITED
from .requests_forms import AGENT_STATUS_LABELS, FILE_TYPES, MB, STATUS_LABELS

requests_pages = Blueprint("requests_pages", __name__, url_prefix="/demandes")

API = "/api/requests/communes"
FAMILY = "/api/accounts/me/family"
# The requests service takes 25 Mo a call; a little more here so that its own French answer
# (413) is the one people see, and nothing far bigger is ever read by the portal.
UPLOAD_LIMIT = 26 * MB
UPLOAD_TIMEOUT = (3.0, 60.0)
IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,200}$")
RADIOS_UP_TO = 5
EXTRA_FILES = "documents"
EXTRA_FILES_MAX = 10
EXTRA_FILE_SIZE = "10 Mo"
TOO_LARGE = ("L'envoi est trop volumineux : 25 Mo au plus en tout, tous les fichiers réunis. "
             "Envoyez des fichiers plus légers (photos moins grandes, PDF compressé).")
# Over the portal's own limit nothing of the form was read, not even what was typed.
NOT_READ = (f"{TOO_LARGE} Rien de ce formulaire n'a pu être lu : remplissez-le de nouveau.")
NOT_OFFERED = ("Votre commune ne propose pas les demandes en ligne pour le moment : "
               "adressez-vous à la mairie.")
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")


# --- helpers shared with the agents' pages ----------------------------------------------------


def requests_path(commune: Commune, *parts: str) -> str:
    return "/".join([API, quote(commune.slug, safe=""), *(quote(p, safe="") for p in parts)])


def document_url(commune: Commune, request_id: str, document_id: str) -> str:
    """Where the browser downloads a document: the API itself, through the gateway."""
    return requests_path(commune, "requests", request_id, "documents", document_id)


def status_text(item: Mapping[str, Any], *, agent: bool = False) -> str:
    """A request's status in French: the API's label for the family; on agents' pages,
    theirs ("en attente de la famille" rather than "de votre réponse")."""
    status = item.get("status")
    label = item.get("status_label")
    if agent and status in AGENT_STATUS_LABELS:
        return AGENT_STATUS_LABELS[status]
    if isinstance(label, str) and label:
        return label
    return STATUS_LABELS.get(status, str(status or "—"))


def documents_by_id(commune: Commune, item: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The request's documents by id, each with the link that downloads it."""
    request_id = str(item.get("id") or "")
    return {str(d["id"]): {**d, "href": document_url(commune, request_id, str(d["id"]))}
            for d in item.get("documents") or [] if isinstance(d, dict) and d.get("id")}


def upload_limit() -> int:
    return int(current_app.config.get("PORTAL_UPLOAD_LIMIT", UPLOAD_LIMIT))


def limit_uploads(*endpoints: str) -> Callable[[], None]:
    """A ``before_app_request`` hook: the upload routes take up to ``upload_limit()``.

    It runs before CSRFProtect reads the form, so a body over the limit is refused (413)
    before anything of it is parsed.
    """

    def hook() -> None:
        if request.endpoint in endpoints:
            request.max_content_length = upload_limit()

    return hook


def new_key() -> str:
    return secrets.token_urlsafe(24)


def sent_key() -> str | None:
    key = request.form.get("idempotency_key") or ""
    return key if IDEMPOTENCY_KEY.match(key) else None


def display_filename(name: str | None) -> str:
    """A file name as the browser sent it, fit to show: no folders, no control characters."""
    name = re.split(r"[\\/]", name or "")[-1]
    name = _CONTROL_CHARS.sub("", unicodedata.normalize("NFC", name)).strip()
    return (name[:80] + "…") if len(name) > 81 else (name or "fichier")


def chosen_files(names: Iterable[str] | None = None) -> dict[str, list[FileStorage]]:
    """The files the browser sent, by part name (every part when ``names`` is None); a file
    input left empty sends a part without a file name, which is no file."""
    wanted = set(names) if names is not None else None
    found: dict[str, list[FileStorage]] = {}
    for name, storage in request.files.items(multi=True):
        if (wanted is None or name in wanted) and storage.filename:
            found.setdefault(name, []).append(storage)
    return found


def send_multipart(path: str, texts: Iterable[tuple[str, str]],
                   files: Mapping[str, list[FileStorage]], *, key: str | None = None,
                   accept: tuple[int, ...] = ()) -> Answer:
    """POST a multipart body to the API: the text parts, then the file parts.

    Text parts go as ``(None, value)`` so the body is multipart even without any file.
    """
    parts: list[tuple[str, tuple[Any, ...]]] = [(name, (None, value)) for name, value in texts]
    for name, storages in files.items():
        for storage in storages:
            parts.append((name, (storage.filename, storage.stream,
                                 storage.mimetype or "application/octet-stream")))
    headers = {"Idempotency-Key": key} if key else None
    return call("POST", path, files=parts, headers=headers, timeout=UPLOAD_TIMEOUT,
                accept=accept)


def types_label(types: Iterable[str]) -> str:
    names = [FILE_TYPES.get(t, str(t).upper()) for t in types]
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " ou " + names[-1]


def size_fr(size: Any) -> str:
    """``2621440`` → ``2,5 Mo``; ``123456`` → ``121 Ko``."""
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        return ""
    if size >= MB:
        value = size / MB
        text = f"{value:.0f}" if value == int(value) else f"{value:.1f}".replace(".", ",")
        return f"{text} Mo"
    return f"{max(1, round(size / 1024))} Ko"


@dataclass
class Control:
    """One input of a generated form, as ``requests/_controls.html`` renders it."""

    kind: str  # input, textarea, select, radios, file
    id: str
    name: str
    label: str
    required: bool = False
    type: str = "text"
    hints: list[str] = field(default_factory=list)
    value: str = ""
    options: list[tuple[str, str]] = field(default_factory=list)
    placeholder: str | None = None
    errors: list[str] = field(default_factory=list)
    accept: str | None = None
    multiple: bool = False
    autocomplete: str | None = None
    chosen: list[str] = field(default_factory=list)

    @property
    def again(self) -> str | None:
        """Beside a file input that had files when the form was refused: choose them again."""
        if not self.chosen:
            return None
        names = ", ".join(f"« {name} »" for name in self.chosen)
        if len(self.chosen) == 1:
            return (f"Vous aviez choisi {names} : les fichiers ne sont pas conservés quand le "
                    "formulaire est refusé, choisissez-le de nouveau.")
        return (f"Vous aviez choisi {names} : les fichiers ne sont pas conservés quand le "
                "formulaire est refusé, choisissez-les de nouveau.")

    @property
    def anchor(self) -> str:
        """What the error summary links to: the input itself, or a group's first radio."""
        return f"{self.id}-0" if self.kind == "radios" else self.id


def field_control(spec: Mapping[str, Any], prefix: str, value: str | None,
                  children: list[dict[str, Any]] | None) -> Control:
    name = str(spec.get("name"))
    kind_of = spec.get("type")
    control = Control("input", f"{prefix}{name}", name, str(spec.get("label") or name),
                      required=bool(spec.get("required")), value=value or "")
    if spec.get("help"):
        control.hints.append(str(spec["help"]))
    if kind_of == "long_text":
        control.kind = "textarea"
    elif kind_of == "date":
        control.type = "date"
        control.hints.append("Au format jj/mm/aaaa si votre navigateur ne propose pas de "
                             "calendrier.")
    elif kind_of == "phone":
        control.type, control.autocomplete = "tel", "tel"
    elif kind_of == "email":
        control.type, control.autocomplete = "email", "email"
    elif kind_of == "yes_no":
        control.kind, control.options = "radios", [("oui", "Oui"), ("non", "Non")]
        lowered = control.value.lower()
        control.value = ("oui" if lowered in ("oui", "true", "1", "yes", "on")
                         else "non" if lowered in ("non", "false", "0", "no", "off") else "")
    elif kind_of == "choice":
        for option in spec.get("options") or []:
            if isinstance(option, dict):
                value_of = str(option.get("value") or option.get("label") or "")
                control.options.append((value_of, str(option.get("label") or value_of)))
            elif isinstance(option, str):
                control.options.append((option, option))
        if len(control.options) <= RADIOS_UP_TO:
            control.kind = "radios"
        else:
            control.kind, control.placeholder = "select", "Choisissez"
    elif kind_of == "child":
        control.kind, control.placeholder = "select", "Choisissez un enfant"
        control.options = [(str(c.get("id")), f"{c.get('first_name', '')} "
                                               f"{c.get('last_name', '')}".strip())
                           for c in children or [] if c.get("id")]
        if not control.options:
            control.hints.append("Aucun enfant n'est enregistré dans votre foyer : "
                                 "adressez-vous à la mairie.")
    return control


def document_control(spec: Mapping[str, Any], prefix: str, *,
                     optional: bool = False) -> Control:
    """A file input for one of the category's documents (``optional``: in a reply)."""
    name = str(spec.get("name"))
    types = [t for t in spec.get("accepted_types") or [] if isinstance(t, str)]
    size = spec.get("max_size_label") or size_fr(spec.get("max_size"))
    max_files = spec.get("max_files") if isinstance(spec.get("max_files"), int) else 1
    control = Control("file", f"{prefix}{name}", name, str(spec.get("label") or name),
                      required=bool(spec.get("required")) and not optional,
                      accept=spec.get("accept") or None, multiple=max_files > 1)
    if spec.get("help"):
        control.hints.append(str(spec["help"]))
    hint = f"Formats acceptés : {types_label(types)}." if types else ""
    if size:
        hint += f" {size} au plus{' par fichier' if max_files > 1 else ''}."
    if max_files > 1:
        hint += f" Jusqu'à {max_files} fichiers."
    if hint.strip():
        control.hints.append(hint.strip())
    return control


def extra_files_control(prefix: str) -> Control:
    accept = ".pdf,.jpg,.jpeg,.png,.heic,.heif,application/pdf,image/jpeg,image/png,image/heic"
    return Control("file", f"{prefix}{EXTRA_FILES}", EXTRA_FILES, "Autres documents",
                   accept=accept, multiple=True, hints=[
                       f"Formats acceptés : {types_label(FILE_TYPES)}. {EXTRA_FILE_SIZE} au "
                       f"plus par fichier, {EXTRA_FILES_MAX} fichiers au plus."])


def place_errors(controls: list[Control], answer: Answer | None,
                 files: Mapping[str, list[FileStorage]]) -> list[str]:
    """The API's errors next to their control, the file-again notices; returns what goes
    on top of the form (errors naming no control, or a refusal without errors)."""
    by_name = {c.name: c for c in controls}
    top: list[str] = []
    if answer is not None:
        for key, messages in answer.errors.items():
            target = by_name.get(key.split(".")[0])
            if target is not None:
                target.errors.extend(messages)
            else:
                top.extend(messages)
        if not answer.errors:
            if answer.status == 413:
                top.append(answer.detail or TOO_LARGE)
            elif answer.status == 429:
                top.append(answer.detail or RATE_LIMITED)
            else:
                top.append(answer.detail or GENERIC_REFUSAL)
    for name, storages in files.items():
        control = by_name.get(name)
        if control is not None and control.kind == "file":
            control.chosen = [display_filename(s.filename) for s in storages]
    return top


def summary_items(controls: list[Control]) -> list[tuple[str, str]]:
    return [(c.anchor, f"{c.label} : {c.errors[0]}") for c in controls if c.errors]


def refusal_status(answer: Answer) -> int:
    return 413 if answer.status == 413 else 422


# --- pages ----------------------------------------------------------------------------------


requests_pages.before_app_request(limit_uploads("requests_pages.new", "requests_pages.reply"))
requests_pages.add_app_template_filter(size_fr, "size_fr")


def household_commune() -> Commune:
    """The current commune, for an account with a household (an agent has none: 404)."""
    account = current_account()
    if account is None:
        raise LoginRequired()
    commune = current_commune()
    if not account.family_id or commune is None:
        abort(404)
    return commune


@requests_pages.get("")
@login_required
def index():
    commune = household_commune()
    cursor = request.args.get("suite") or None
    try:
        listing = call("GET", requests_path(commune, "categories"), accept=(403, 404))
        history = call("GET", requests_path(commune, "requests"),
                       params={"cursor": cursor} if cursor else None, accept=(403, 404))
    except GatewayError as exc:
        return render_template("requests/index.html", categories=[], items=None, cursor=cursor,
                               next_cursor=None, notice=exc.message), exc.status
    categories = ([c for c in listing.items() if c.get("active", True) and c.get("id")]
                  if listing.ok else None)
    return render_template("requests/index.html", categories=categories,
                           items=history.items() if history.ok else None, cursor=cursor,
                           next_cursor=history.data.get("next") if history.ok else None,
                           not_offered=NOT_OFFERED)


def _category(commune: Commune, category_id: str) -> dict[str, Any]:
    """An active category of the commune (the parents' list has only those), else 404."""
    listing = call("GET", requests_path(commune, "categories"), accept=(403, 404))
    found = next((c for c in listing.items() if str(c.get("id")) == category_id
                  and c.get("active", True)), None)
    if found is None:
        abort(404)
    return found


def _children() -> list[dict[str, Any]]:
    answer = call("GET", FAMILY, accept=(403, 404))
    children = answer.data.get("children") if answer.ok else None
    return [c for c in children if isinstance(c, dict)] if isinstance(children, list) else []


def _request_controls(category: dict[str, Any], values: Mapping[str, str]) -> list[Control]:
    specs = [s for s in category.get("fields") or [] if isinstance(s, dict) and s.get("name")]
    children = _children() if any(s.get("type") == "child" for s in specs) else None
    controls = [field_control(s, "champ-", values.get(str(s["name"])), children)
                for s in specs]
    controls += [document_control(d, "document-")
                 for d in category.get("required_attachments") or []
                 if isinstance(d, dict) and d.get("name")]
    return controls


def _new_page(category: dict[str, Any], key: str, *, values: Mapping[str, str] | None = None,
              answer: Answer | None = None, files: Mapping[str, list[FileStorage]] | None = None,
              messages: Iterable[str] = (), notice: str | None = None) -> str:
    controls = _request_controls(category, values or {})
    top = [*messages, *place_errors(controls, answer, files or {})]
    return render_template("requests/new.html", category=category, controls=controls,
                           items=summary_items(controls), messages=top, key=key,
                           notice=notice)


@requests_pages.route("/nouvelle/<category_id>", methods=["GET", "POST"])
@login_required
def new(category_id: str):
    commune = household_commune()
    category = _category(commune, category_id)
    if request.method == "GET":
        return _new_page(category, new_key())
    names = [str(s["name"]) for s in category.get("fields") or []
             if isinstance(s, dict) and s.get("name")]
    texts = [("category", str(category["id"]))]
    texts += [(name, request.form.get(name, "")) for name in names if name in request.form]
    documents = [str(d["name"]) for d in category.get("required_attachments") or []
                 if isinstance(d, dict) and d.get("name")]
    files = chosen_files(documents)
    key = sent_key() or new_key()
    try:
        answer = send_multipart(requests_path(commune, "requests"), texts, files, key=key,
                                accept=(404,))
    except GatewayError as exc:
        # Whether it arrived is unknown: the same key, so sending again cannot make two.
        return _new_page(category, key, values=request.form, files=files,
                         notice=exc.message), exc.status
    if answer.ok and answer.data.get("id"):
        reference = answer.data.get("reference") or ""
        flash(f"Votre demande {reference} a été envoyée à la mairie. Vous suivez son "
              "avancement ici et recevez un e-mail à chaque changement de statut.", "success")
        return redirect(url_for("requests_pages.detail", request_id=str(answer.data["id"])),
                        303)
    if answer.status == 404 and not answer.errors:
        answer = Answer(404, {"detail": answer.detail or NOT_OFFERED})
    # Nothing was kept: a new form, a new key.
    return _new_page(category, new_key(), values=request.form, answer=answer,
                     files=files), refusal_status(answer)


@requests_pages.get("/<request_id>")
@login_required
def detail(request_id: str):
    return _detail_page(household_commune(), request_id)


def _reply_controls(commune: Commune, item: dict[str, Any], body: str) -> list[Control]:
    """Message, the category's documents (any of them may be asked for again), others."""
    controls = [Control("textarea", "reponse-body", "body", "Votre message", value=body,
                        hints=["Répondez à la question de la mairie ou précisez votre "
                               "demande."])]
    category_id = str((item.get("category") or {}).get("id") or "")
    listing = call("GET", requests_path(commune, "categories"), accept=(403, 404))
    category = next((c for c in listing.items() if str(c.get("id")) == category_id), {})
    controls += [document_control(d, "reponse-", optional=True)
                 for d in category.get("required_attachments") or []
                 if isinstance(d, dict) and d.get("name")]
    controls.append(extra_files_control("reponse-"))
    return controls


def _detail_page(commune: Commune, request_id: str, *, body: str = "",
                 answer: Answer | None = None,
                 files: Mapping[str, list[FileStorage]] | None = None,
                 messages: Iterable[str] = (), status: int = 200):
    item = call("GET", requests_path(commune, "requests", request_id)).data
    controls = _reply_controls(commune, item, body) if item.get("can_reply") else []
    top = [*messages, *place_errors(controls, answer, files or {})]
    return render_template(
        "requests/detail.html", item=item, request_id=request_id, controls=controls,
        items=summary_items(controls), messages=top, documents=documents_by_id(commune, item),
        status_label=status_text(item)), status


@requests_pages.post("/<request_id>/reponse")
@login_required
def reply(request_id: str):
    commune = household_commune()
    body = request.form.get("body", "")
    files = chosen_files()
    try:
        answer = send_multipart(requests_path(commune, "requests", request_id, "messages"),
                                [("body", body)], files)
    except GatewayError as exc:
        return _detail_page(commune, request_id, body=body, files=files,
                            messages=[exc.message], status=exc.status)
    if answer.ok:
        flash("Votre message a été envoyé à la mairie.", "success")
        return redirect(url_for("requests_pages.detail", request_id=request_id) + "#echanges",
                        303)
    return _detail_page(commune, request_id, body=body, answer=answer, files=files,
                        status=refusal_status(answer))


@requests_pages.errorhandler(RequestEntityTooLarge)
def _too_large(error: RequestEntityTooLarge):
    """More than the portal reads: the form again (empty: nothing of it was read)."""
    args = request.view_args or {}
    return too_large_page(lambda: (
        (_new_page(_category(household_commune(), args["category_id"]), new_key(),
                   messages=[NOT_READ]), 413)
        if request.endpoint == "requests_pages.new"
        else _detail_page(household_commune(), args["request_id"], messages=[NOT_READ],
                          status=413)))


def too_large_page(build: Callable[[], Any]):
    """The page of a refused upload, or a plain error page when it cannot be built."""
    try:
        return build()
    except LoginRequired:
        return redirect(url_for("pages.login"), 303)
    except (GatewayError, HTTPException, KeyError):
        return render_template("error.html", status=413, title="Envoi trop volumineux",
                               detail=NOT_READ), 413
