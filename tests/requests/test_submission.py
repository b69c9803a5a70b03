"""A household sends a request: checked on the server by content, nothing kept on error,
one request for a repeated submission."""

from __future__ import annotations

from sqlalchemy import func, select

from services.requests.models import Document, HistoryEntry, Request
from tests.requests.support import (
    ADDRESS,
    AGENT,
    DAMMARTIN_PICKUP,
    FAMILY,
    HTML,
    JOLIEVILLE,
    LEA,
    OTHER_CHILD,
    OTHER_PARENT,
    PARENT,
    PICKUP,
    RECIPIENTS,
    absence_form,
    base,
    encrypted_pdf,
    file_part,
    heic,
    jpeg,
    pdf,
    pickup_form,
    png,
    png_header_only,
    submitted,
)

MB = 1024 * 1024


def rows(requests_app, model) -> int:
    with requests_app.db.sessions() as session:
        return session.scalar(select(func.count()).select_from(model))


def assert_nothing_kept(requests_app, files_before: set) -> None:
    assert rows(requests_app, Request) == 0
    assert rows(requests_app, Document) == 0
    assert rows(requests_app, HistoryEntry) == 0
    assert requests_app.events() == []
    assert requests_app.all_files() == files_before


def refused(requests_app, form, status: int = 422, **kwargs) -> dict:
    before = requests_app.all_files()
    response = requests_app.submit(form, **kwargs)
    assert response.status_code == status, response.get_json()
    assert response.mimetype == "application/problem+json"
    assert_nothing_kept(requests_app, before)
    return response.get_json()


# a request that is right -----------------------------------------------------------------------
def test_a_complete_request_is_received_with_its_document(requests_app):
    response = requests_app.submit(pickup_form())
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert response.headers["Location"] == f"{base()}/requests/{body['id']}"
    assert body["status"] == "submitted"
    assert body["status_label"] == "nouvelle"
    assert body["reference"].startswith("D20")
    assert body["category"] == {"id": PICKUP, "label": "Autorisation de récupération d'un "
                                                      "enfant", "kind": None}
    answers = {f["name"]: f for f in body["fields"]}
    assert answers["child"]["value"] == LEA
    assert answers["child"]["display"] == "Léa CASSEREAU"
    assert answers["from"]["display"] == "05/10/2026"
    [document] = body["documents"]
    assert document["name"] == "identity_document"
    assert document["filename"] == "carte-identite.pdf"
    assert document["content_type"] == "application/pdf"
    assert body["history"][0]["action"] == "submitted"
    assert body["history"][0]["actor"]["kind"] == "family"
    assert body["household"] is None  # agents only

    [event] = requests_app.events("requests.request.submitted")
    assert event["commune_id"] == JOLIEVILLE
    assert event["data"] == {
        "request_id": body["id"], "family_id": FAMILY, "category_id": PICKUP,
        "category_label": "Autorisation de récupération d'un enfant",
        "recipients": RECIPIENTS, "category_kind": None, "reference": body["reference"]}


def test_the_file_is_stored_by_content_in_a_two_level_fan_out(requests_app):
    content = pdf("une pièce")
    request = submitted(requests_app, pickup_form(
        identity_document=file_part(content, "pièce.pdf", "application/pdf")))
    [stored] = requests_app.stored_files()
    import hashlib

    digest = hashlib.sha256(content).hexdigest()
    assert stored == requests_app.documents_dir / digest[:2] / digest[2:4] / digest
    assert stored.read_bytes() == content
    with requests_app.db.sessions() as session:
        [row] = session.scalars(select(Document))
    assert row.storage_key == digest
    assert row.request_id == request["id"]


def test_an_absence_with_a_photo_from_a_phone(requests_app):
    request = submitted(requests_app, absence_form(
        certificate=file_part(heic(), "IMG_0042.HEIC", "image/heic")))
    [document] = request["documents"]
    assert document["content_type"] == "image/heic"
    assert document["filename"] == "IMG_0042.heic"
    assert {f["name"]: f["value"] for f in request["fields"]}["to"] == "2026-10-07"


def test_an_optional_document_may_be_left_out_even_as_an_empty_file_input(requests_app):
    response = requests_app.submit(absence_form(certificate=file_part(b"", "")))
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["documents"] == []


def test_dates_may_be_typed_the_french_way(requests_app):
    request = submitted(requests_app, pickup_form(**{"from": "05/10/2026"}))
    assert {f["name"]: f["value"] for f in request["fields"]}["from"] == "2026-10-05"


# refused, and nothing kept --------------------------------------------------------------------
def test_without_the_required_document_nothing_is_kept(requests_app):
    body = refused(requests_app, pickup_form(identity_document=None))
    assert body["errors"] == {"identity_document": ["Ce document est obligatoire."]}
    assert body["detail"] == "La demande n'a pas été envoyée : corrigez les points signalés."


def test_every_mistake_is_reported_at_once_next_to_its_field(requests_app):
    body = refused(requests_app, pickup_form(
        child=OTHER_CHILD, phone="appelez-moi", person_name="", **{"from": "2026-13-45"},
        identity_document=file_part(HTML, "carte.pdf", "application/pdf")))
    assert body["errors"] == {
        "child": ["Choisissez un enfant de votre foyer."],
        "phone": ["Numéro de téléphone invalide."],
        "person_name": ["Ce champ est obligatoire."],
        "from": ["Date invalide (format attendu AAAA-MM-JJ)."],
        "identity_document": ["Le fichier doit être un PDF, une image JPEG ou PNG."],
    }


def test_a_valid_document_is_not_kept_when_a_field_is_wrong(requests_app):
    body = refused(requests_app, pickup_form(phone="x"))
    assert list(body["errors"]) == ["phone"]


def test_a_png_disguised_as_a_pdf_is_taken_for_what_it_is(requests_app):
    # Named .pdf, declared application/pdf: its content is a PNG, which this document accepts.
    request = submitted(requests_app, pickup_form(
        identity_document=file_part(png(), "scan.pdf", "application/pdf")))
    [document] = request["documents"]
    assert document["content_type"] == "image/png"
    assert document["filename"] == "scan.png"


def test_a_png_disguised_as_a_pdf_is_refused_where_only_pdf_is_accepted(requests_app):
    category = requests_app.post(f"{base()}/categories", AGENT, json={
        "label": "Attestation", "fields": [],
        "required_attachments": [{"name": "attestation", "label": "Attestation",
                                  "required": True, "accepted_types": ["pdf"]}]}).get_json()
    body = refused(requests_app, {"category": category["id"], "attestation": file_part(
        png(), "attestation.pdf", "application/pdf")})
    assert body["errors"] == {"attestation": ["Le fichier doit être un PDF."]}


def test_an_html_page_named_pdf_is_refused(requests_app):
    body = refused(requests_app, pickup_form(
        identity_document=file_part(HTML, "carte.pdf", "application/pdf")))
    assert body["errors"]["identity_document"] == [
        "Le fichier doit être un PDF, une image JPEG ou PNG."]


def test_heic_is_refused_where_the_category_does_not_accept_it(requests_app):
    body = refused(requests_app, pickup_form(
        identity_document=file_part(heic(), "photo.heic", "image/heic")))
    assert body["errors"]["identity_document"] == [
        "Le fichier doit être un PDF, une image JPEG ou PNG."]


def test_a_document_over_its_size_limit_is_refused(requests_app):
    big = pdf() + b"%" + b"x" * (5 * MB)  # valid start, over the 5 Mo of this document
    body = refused(requests_app, pickup_form(
        identity_document=file_part(big, "carte.pdf", "application/pdf")))
    assert body["errors"]["identity_document"] == ["Le fichier dépasse 5 Mo."]


def test_empty_broken_and_encrypted_files_are_refused(requests_app):
    for data, message in (
            (b"", "Le fichier est vide."),
            (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "Le fichier est illisible ou endommagé."),
            (encrypted_pdf(), "Le PDF est protégé par un mot de passe : envoyez une version "
                              "non protégée."),
            (b"%PDF-1.7\n1 0 obj<<>>endobj\n", "Le PDF est incomplet ou endommagé : "
                                               "enregistrez-le à nouveau puis réessayez.")):
        body = refused(requests_app, pickup_form(
            identity_document=file_part(data, "carte.pdf", "application/pdf")))
        assert body["errors"]["identity_document"] == [message]


def test_an_image_bomb_is_refused_from_its_header(requests_app):
    for width, height in ((7000, 7000), (30000, 30000)):
        body = refused(requests_app, pickup_form(
            identity_document=file_part(png_header_only(width, height), "carte.png")))
        assert body["errors"]["identity_document"] == [
            "L'image est trop grande (plus de 40 millions de pixels) : envoyez une photo de "
            "plus petite taille."]
    body = refused(requests_app, absence_form(
        certificate=file_part(heic(9000, 9000), "IMG.HEIC")))
    assert "trop grande" in body["errors"]["certificate"][0]


def test_two_files_for_one_document_and_unknown_documents_are_refused(requests_app):
    body = refused(requests_app, pickup_form(
        identity_document=[file_part(pdf(), "a.pdf"), file_part(jpeg(), "b.jpg")],
        passport=file_part(pdf(), "p.pdf")))
    assert body["errors"] == {
        "identity_document": ["Un seul fichier pour ce document."],
        "passport": ["Ce document n'est pas demandé pour cette catégorie."]}


def test_an_unknown_or_missing_category_is_refused(requests_app):
    assert refused(requests_app, pickup_form(category=None))["errors"] == {
        "category": ["Ce champ est obligatoire."]}
    assert refused(requests_app, pickup_form(category="nope"))["errors"] == {
        "category": ["Cette catégorie de demande n'existe pas."]}
    # Another commune's category is not one of this commune's.
    assert refused(requests_app, pickup_form(category=DAMMARTIN_PICKUP))["errors"] == {
        "category": ["Cette catégorie de demande n'existe pas."]}


def test_kind_specific_checks(requests_app):
    body = refused(requests_app, absence_form(**{"from": "2026-10-07", "to": "2026-10-05"}))
    assert body["errors"] == {"to": ["La date de fin ne peut pas être avant la date de début."]}
    body = refused(requests_app, {"category": ADDRESS, "line1": "1 rue Neuve",
                                  "postal_code": "7700", "city": "JolieVille",
                                  "proof_of_address": file_part(pdf(), "edf.pdf")})
    assert body["errors"] == {"postal_code": ["Code postal à 5 chiffres."]}
    body = refused(requests_app, absence_form(reason="Vacances"))
    assert body["errors"] == {"reason": ["Choisissez l'une des options proposées."]}


# bodies ----------------------------------------------------------------------------------------
def test_an_empty_body_answers_422_in_french(requests_app):
    before = requests_app.all_files()
    for kwargs in ({}, {"data": b"", "content_type": "multipart/form-data"},
                   {"data": b"", "content_type": "multipart/form-data; boundary=abc"}):
        response = requests_app.post(f"{base()}/requests", PARENT, **kwargs)
        assert response.status_code == 422, response.get_json()
        assert response.get_json()["errors"] == {"category": ["Ce champ est obligatoire."]}
    assert_nothing_kept(requests_app, before)


def test_a_malformed_multipart_body_answers_422_not_500(requests_app):
    before = requests_app.all_files()
    for data in (b"--abc\r\nContent-Disposition: form-data\r\n\r\nxx",
                 b"garbage without any boundary",
                 b"--abc\r\nContent-Disposition: form-data; name=\"category\"\r\n\r\n" +
                 b"\xff" * 50 + b"\r\n--abc--\r\n"):
        response = requests_app.post(f"{base()}/requests", PARENT, data=data,
                                     content_type="multipart/form-data; boundary=abc")
        assert response.status_code in (400, 422), response.get_data()
        assert response.mimetype == "application/problem+json"
    assert_nothing_kept(requests_app, before)


def test_a_json_body_is_refused_with_what_to_send(requests_app):
    response = requests_app.post(f"{base()}/requests", PARENT, json={"category": PICKUP})
    assert response.status_code == 415
    assert "multipart/form-data" in response.get_json()["detail"]


def test_a_huge_body_is_refused_before_it_is_read(requests_app):
    huge = b"%PDF-" + b"0" * (26 * MB)
    body = refused(requests_app, pickup_form(
        identity_document=file_part(huge, "carte.pdf", "application/pdf")), status=413)
    assert body["detail"].startswith("L'envoi est trop volumineux : 25 Mo")


def test_too_many_parts_are_refused(requests_app):
    form = pickup_form()
    form.update({f"extra{i}": "x" for i in range(100)})
    body = refused(requests_app, form, status=413)
    assert "parties" in body["detail"]


def test_the_upload_limit_is_configurable(tmp_path):
    from tests.requests.support import build

    small = build(tmp_path, f"sqlite:///{tmp_path}/small.db", REQUESTS_MAX_UPLOAD_MB="1")
    try:
        response = small.submit(pickup_form(identity_document=file_part(
            pdf() + b"%" + b"x" * (2 * MB), "carte.pdf")))
        assert response.status_code == 413
        assert "1 Mo" in response.get_json()["detail"]
    finally:
        small.db.dispose()


# file names ------------------------------------------------------------------------------------
def test_file_names_with_paths_and_control_characters_are_sanitised(requests_app):
    before = requests_app.all_files()
    names = {
        "../../../../etc/passwd.pdf": "passwd.pdf",
        "C:/Users/marie/Documents/carte.pdf": "carte.pdf",
        # werkzeug reads backslashes in a quoted file name as escapes: they never arrive.
        "C:\\Users\\marie\\carte.pdf": "C_Usersmariecarte.pdf",
        "carte\x00\x07\x1b[31m\t.pdf": "carte[31m.pdf",
        "evil\u202efdp.exe": "evilfdp.exe.pdf",
        "/": "document.pdf",
        "." * 5 + "/" + "a" * 500 + ".pdf": "a" * 116 + ".pdf",
    }
    for given, shown in names.items():
        content = pdf(given[:10])
        request = submitted(requests_app, pickup_form(identity_document=file_part(
            content, given, "application/pdf")))
        assert request["documents"][0]["filename"] == shown
    added = requests_app.all_files() - before
    assert added, "les fichiers sont bien enregistrés"
    for path in added:
        assert requests_app.documents_dir in path.parents
        assert len(path.name) == 64 and all(c in "0123456789abcdef" for c in path.name)
    assert not any("passwd" in str(p) for p in requests_app.data_dir.parent.rglob("*"))


# duplicates ------------------------------------------------------------------------------------
def test_the_same_request_sent_twice_is_one_request(requests_app):
    first = requests_app.submit(pickup_form())
    second = requests_app.submit(pickup_form())
    assert first.status_code == 201
    assert second.status_code == 200
    assert second.headers["Idempotent-Replayed"] == "true"
    assert second.get_json()["id"] == first.get_json()["id"]
    assert rows(requests_app, Request) == 1
    assert len(requests_app.events("requests.request.submitted")) == 1
    assert len(requests_app.stored_files()) == 1


def test_a_different_request_is_a_new_one(requests_app):
    first = submitted(requests_app)
    second = submitted(requests_app, pickup_form(relation="voisine"))
    assert first["id"] != second["id"]
    # The same document in two requests is stored once.
    assert len(requests_app.stored_files()) == 1


def test_an_idempotency_key_names_one_request(requests_app):
    key = {"Idempotency-Key": "portail-7f3e2a"}
    first = requests_app.submit(pickup_form(), headers=key)
    again = requests_app.submit(pickup_form(), headers=key)
    assert first.status_code == 201 and again.status_code == 200
    assert again.get_json()["id"] == first.get_json()["id"]
    other = requests_app.submit(pickup_form(relation="oncle"), headers=key)
    assert other.status_code == 409
    bad = requests_app.submit(pickup_form(), headers={"Idempotency-Key": "é" * 3})
    assert bad.status_code == 400
    assert rows(requests_app, Request) == 1


def test_the_same_form_from_another_household_is_its_own_request(requests_app):
    category = requests_app.post(f"{base()}/categories", AGENT, json={
        "label": "Question", "fields": [{"name": "question", "label": "Votre question",
                                         "type": "long_text", "required": True}]}).get_json()
    form = {"category": category["id"], "question": "Quels horaires ?"}
    first = submitted(requests_app, dict(form))
    other = requests_app.submit(dict(form), as_=OTHER_PARENT)
    assert other.status_code == 201
    assert other.get_json()["id"] != first["id"]


# who may send ----------------------------------------------------------------------------------
def test_only_households_send_requests(requests_app):
    response = requests_app.submit(pickup_form(), as_=AGENT)
    assert response.status_code == 403
    assert requests_app.submit(pickup_form(), as_=None).status_code == 401
    # A household that does not belong to dammartin does not see it.
    assert requests_app.submit(pickup_form(category=DAMMARTIN_PICKUP), as_=OTHER_PARENT,
                               slug="dammartin").status_code == 404


def test_a_commune_without_the_requests_module_takes_none(requests_app):
    from tests.test_catalogue import EXAMPLES

    updated = dict(EXAMPLES["accounts.commune.updated"])
    updated.update({"commune_id": requests_app.get(
        f"{base()}", PARENT).get_json()["id"], "slug": "jolieville"})
    requests_app.handle("accounts.commune.updated", updated)
    response = requests_app.submit(pickup_form())
    assert response.status_code == 404
    assert response.get_json()["detail"] == "Cette commune ne propose pas de demandes en ligne."
