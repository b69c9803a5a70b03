"""Files judged by their content, names made safe for display, the content-addressed store."""

from __future__ import annotations

import hashlib
import os
import threading
from datetime import UTC, datetime, timedelta

import pytest
from PIL import Image

from services.requests.documents import (
    MAX_PIXELS,
    DocumentError,
    content_disposition,
    display_name,
    inspect,
    sniff,
    types_message,
)
from services.requests.storage import DocumentNotFound, FilesystemStore
from tests.requests.support import (
    HTML,
    encrypted_pdf,
    heic,
    jpeg,
    pdf,
    png,
    png_header_only,
)

ALL = ["pdf", "jpeg", "png", "heic"]
MB = 1024 * 1024


@pytest.mark.parametrize(("data", "expected"), [
    (pdf(), "pdf"), (jpeg(), "jpeg"), (png(), "png"), (heic(), "heic"),
    (heic(brand=b"heix"), "heic"), (heic(brand=b"mif1"), "heic"), (heic(brand=b"avif"), None),
    (HTML, None), (b"%PDF", None), (b"GIF89a", None), (b"", None),
    (b"PK\x03\x04 a zip or a docx", None)])
def test_the_type_comes_from_the_first_bytes(data, expected):
    assert sniff(data) == expected


def test_an_accepted_file_gives_its_real_type_digest_and_size():
    data = jpeg(40, 30)
    found = inspect(data, ALL, MB)
    assert (found.file_type, found.content_type, found.size) == ("jpeg", "image/jpeg", len(data))
    assert found.sha256 == hashlib.sha256(data).hexdigest()
    assert (found.width, found.height) == (40, 30)
    assert inspect(pdf(pages=3), ALL, MB).pages == 3
    assert (inspect(heic(), ALL, MB).width, inspect(heic(), ALL, MB).height) == (4032, 3024)


def test_the_pillow_limit_is_lowered_to_ours():
    assert Image.MAX_IMAGE_PIXELS <= MAX_PIXELS


@pytest.mark.parametrize(("data", "accepted", "max_size", "message"), [
    (b"", ALL, MB, "Le fichier est vide."),
    (png(), ["pdf"], MB, "Le fichier doit être un PDF."),
    (pdf(), ["jpeg", "png"], MB, "Le fichier doit être une image JPEG ou PNG."),
    (HTML, ALL, MB, "Le fichier doit être un PDF, une image JPEG, PNG ou HEIC."),
    (pdf() + b"x" * MB, ALL, MB, "Le fichier dépasse 1 Mo."),
    (pdf(), ALL, 512, "Le fichier dépasse 1 Ko."),
    (encrypted_pdf(), ALL, MB, "Le PDF est protégé par un mot de passe : envoyez une version "
                               "non protégée."),
    (b"\xff\xd8\xff\xe0 broken", ALL, MB, "Le fichier est illisible ou endommagé."),
    (b"\x00\x00\x00\x18ftypheic" + b"\x00" * 40, ALL, MB,
     "Le fichier est illisible ou endommagé."),
])
def test_refused_files_say_why_in_french(data, accepted, max_size, message):
    with pytest.raises(DocumentError) as refused:
        inspect(data, accepted, max_size)
    assert str(refused.value) == message


def test_images_over_forty_megapixels_are_refused_without_decoding():
    for width, height in ((6400, 6400), (100_000, 100_000)):
        with pytest.raises(DocumentError, match="trop grande"):
            inspect(png_header_only(width, height), ALL, MB)
    with pytest.raises(DocumentError, match="trop grande"):
        inspect(heic(8000, 6000), ALL, MB)
    assert inspect(png_header_only(6000, 6000), ALL, MB).width == 6000


def test_a_pdf_with_absurdly_many_pages_is_refused():
    many = (b"%PDF-1.4\n" + b"".join(b"%d 0 obj<</Type /Page>>endobj\n" % i
                                     for i in range(501)) + b"%%EOF\n")
    with pytest.raises(DocumentError, match="trop de pages"):
        inspect(many, ALL, 10 * MB)


def test_types_message_reads_as_french():
    assert types_message(["pdf", "jpeg", "png", "heic"]) == (
        "Le fichier doit être un PDF, une image JPEG, PNG ou HEIC.")
    assert types_message(["png", "pdf"]) == "Le fichier doit être un PDF ou une image PNG."
    assert types_message(["heic"]) == "Le fichier doit être une image HEIC."


@pytest.mark.parametrize(("given", "file_type", "shown"), [
    ("carte.pdf", "pdf", "carte.pdf"),
    ("../../etc/passwd", "pdf", "passwd.pdf"),
    ("..\\..\\Windows\\system.ini", "pdf", "system.ini.pdf"),
    ("C:\\Users\\marie\\scan.PDF", "pdf", "scan.pdf"),
    ("scan.pdf", "png", "scan.png"),
    ("photo.JPEG", "jpeg", "photo.jpeg"),
    ("IMG_1.HEIC", "heic", "IMG_1.heic"),
    ("a\r\nContent-Type: text/html\r\n.pdf", "pdf", "html.pdf"),
    ("tab\there\x00\x1b.pdf", "pdf", "tabhere.pdf"),
    ("evil\u202egnp.exe", "png", "evilgnp.exe.png"),
    ("\u00a0 .hidden ", "pdf", "hidden.pdf"),
    ("", "pdf", "document.pdf"),
    (None, "jpeg", "document.jpg"),
    ("<script>.pdf", "pdf", "_script_.pdf"),
    ("é" * 300 + ".pdf", "pdf", "é" * 116 + ".pdf"),
])
def test_display_names_are_sanitised(given, file_type, shown):
    assert display_name(given, file_type) == shown


def test_the_content_disposition_has_both_names():
    assert content_disposition("scan.pdf") == (
        "attachment; filename=\"scan.pdf\"; filename*=UTF-8''scan.pdf")
    assert content_disposition("Reçu n°2.pdf") == (
        "attachment; filename=\"Recu n_2.pdf\"; filename*=UTF-8''Re%C3%A7u%20n%C2%B02.pdf")


# the store -----------------------------------------------------------------------------------
def test_the_store_keeps_content_under_its_digest(tmp_path):
    store = FilesystemStore(tmp_path / "documents")
    data = pdf()
    key = store.put(data)
    assert key == hashlib.sha256(data).hexdigest()
    assert store.path(key) == tmp_path / "documents" / key[:2] / key[2:4] / key
    assert store.exists(key) and store.size(key) == len(data)
    with store.open(key) as handle:
        assert handle.read() == data
    assert store.put(data) == key  # stored once
    assert [k for k, _ in store.entries()] == [key]
    assert list((tmp_path / "documents" / "tmp").iterdir()) == []
    store.delete(key)
    store.delete(key)
    assert not store.exists(key)
    with pytest.raises(DocumentNotFound):
        store.open(key)


@pytest.mark.parametrize("key", ["../../etc/passwd", "ab", "A" * 64, "g" * 64, "/" + "a" * 63])
def test_the_store_accepts_only_digests_as_keys(tmp_path, key):
    store = FilesystemStore(tmp_path)
    with pytest.raises(DocumentNotFound):
        store.open(key)
    assert store.exists(key) is False


def test_putting_known_content_freshens_it_for_the_sweep(tmp_path):
    store = FilesystemStore(tmp_path)
    key = store.put(b"%PDF-1 x")
    old = datetime(2020, 1, 1, tzinfo=UTC).timestamp()
    os.utime(store.path(key), (old, old))
    store.put(b"%PDF-1 x")
    [(_, written)] = list(store.entries())
    assert written > datetime.now(UTC) - timedelta(minutes=1)


def test_concurrent_writers_of_the_same_content_leave_one_whole_file(tmp_path):
    store = FilesystemStore(tmp_path)
    data = os.urandom(2 * MB)
    start = threading.Barrier(8)

    def write():
        start.wait()
        store.put(data)

    threads = [threading.Thread(target=write) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    [(key, _)] = list(store.entries())
    assert store.path(key).read_bytes() == data
    assert list((tmp_path / "tmp").iterdir()) == []


def test_old_temporary_files_are_cleaned(tmp_path):
    store = FilesystemStore(tmp_path)
    (tmp_path / "tmp").mkdir()
    left = tmp_path / "tmp" / "upload-crash"
    left.write_bytes(b"half")
    old = (datetime.now(UTC) - timedelta(days=2)).timestamp()
    os.utime(left, (old, old))
    store.clean_temporary(datetime.now(UTC) - timedelta(days=1))
    assert not left.exists()


def test_inspecting_hostile_bytes_takes_linear_time():
    import time

    for body in (b"0" * (5 * MB), b"1 " * (2 * MB), b"/Type " * MB):
        started = time.perf_counter()
        assert inspect(b"%PDF-" + body + b"\n%%EOF\n", ALL, 10 * MB).file_type == "pdf"
        assert time.perf_counter() - started < 2
