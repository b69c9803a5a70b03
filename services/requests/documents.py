"""What an uploaded file really is, judged by its content, never by its name or declared type.

- The type comes from the first bytes: PDF (``%PDF-``), JPEG (``FF D8 FF``), PNG (the 8-byte
  signature), HEIC (an ISO BMFF ``ftyp`` box of brand ``heic``, ``heix`` or ``mif1``).
- Images: the dimensions are read from the header (Pillow for JPEG and PNG, without decoding
  the pixels; the ``ispe`` boxes for HEIC) and refused over ``MAX_PIXELS`` (image bombs).
- PDF: refused when encrypted, truncated, or with an absurd number of pages or objects.
- The name the person gave is kept for display only, sanitised (no directory, no control
  character, bounded length, an extension matching the real type); it is never used on disk.
"""

from __future__ import annotations

import hashlib
import io
import re
import struct
import unicodedata
import warnings
from dataclasses import dataclass
from urllib.parse import quote

from PIL import Image

from .domain import size_label

MAX_PIXELS = 40_000_000
# Pillow refuses to open anything larger (DecompressionBombError beyond twice this); lowered
# only, never raised, since other services of an embedded process share the setting.
if Image.MAX_IMAGE_PIXELS is None or Image.MAX_IMAGE_PIXELS > MAX_PIXELS:
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
MAX_PDF_PAGES = 500
MAX_PDF_OBJECTS = 200_000
FILENAME_MAX = 120

CONTENT_TYPES = {"pdf": "application/pdf", "jpeg": "image/jpeg", "png": "image/png",
                 "heic": "image/heic"}
EXTENSIONS = {"pdf": (".pdf",), "jpeg": (".jpg", ".jpeg", ".jfif"), "png": (".png",),
              "heic": (".heic", ".heif")}
TYPE_NAMES = {"pdf": "un PDF", "jpeg": "JPEG", "png": "PNG", "heic": "HEIC"}
_HEIC_BRANDS = (b"heic", b"heix", b"mif1")
_PNG = b"\x89PNG\r\n\x1a\n"


class DocumentError(ValueError):
    """A file refused; the message is French, shown next to the document's name."""


def accept_attribute(types: list[str]) -> str:
    """For an ``<input type=file accept=...>``: extensions and MIME types."""
    parts = [ext for t in types for ext in EXTENSIONS[t]]
    parts += [CONTENT_TYPES[t] for t in types]
    return ",".join(parts)


def types_message(types: list[str]) -> str:
    """``Le fichier doit être un PDF, une image JPEG, PNG ou HEIC.``"""
    images = [TYPE_NAMES[t] for t in CONTENT_TYPES if t in types and t != "pdf"]
    parts = ["un PDF"] if "pdf" in types else []
    if images:
        head = ", ".join(images[:-1])
        parts.append("une image " + (f"{head} ou {images[-1]}" if head else images[-1]))
    joiner = ", " if len(images) > 1 else " ou "
    return "Le fichier doit être " + joiner.join(parts) + "."


def sniff(data: bytes) -> str | None:
    """``pdf``, ``jpeg``, ``png``, ``heic`` from the first bytes, or None."""
    if data.startswith(b"%PDF-"):
        return "pdf"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data.startswith(_PNG):
        return "png"
    if len(data) >= 12 and data[4:8] == b"ftyp" and data[8:12] in _HEIC_BRANDS:
        return "heic"
    return None


@dataclass(frozen=True)
class Inspected:
    file_type: str
    content_type: str
    size: int
    sha256: str
    width: int | None = None
    height: int | None = None
    pages: int | None = None


def inspect(data: bytes, accepted: list[str], max_size: int) -> Inspected:
    """Check an uploaded file against a document's rules; DocumentError (French) if refused."""
    if not data:
        raise DocumentError("Le fichier est vide.")
    if len(data) > max_size:
        raise DocumentError(f"Le fichier dépasse {size_label(max_size)}.")
    file_type = sniff(data)
    if file_type is None or file_type not in accepted:
        raise DocumentError(types_message(accepted))
    width = height = pages = None
    if file_type in ("jpeg", "png"):
        width, height = _image_size(data, file_type)
    elif file_type == "heic":
        width, height = _heic_size(data)
    else:
        pages = _pdf_pages(data)
    if width is not None and height is not None and width * height > MAX_PIXELS:
        raise DocumentError("L'image est trop grande (plus de 40 millions de pixels) : "
                            "envoyez une photo de plus petite taille.")
    return Inspected(file_type, CONTENT_TYPES[file_type], len(data),
                     hashlib.sha256(data).hexdigest(), width, height, pages)


def _unreadable() -> DocumentError:
    return DocumentError("Le fichier est illisible ou endommagé.")


def _image_size(data: bytes, file_type: str) -> tuple[int, int]:
    expected = {"jpeg": "JPEG", "png": "PNG"}[file_type]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            # open() reads the header only; the pixels are never decoded here.
            with Image.open(io.BytesIO(data), formats=[expected]) as image:
                width, height = image.size
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise DocumentError("L'image est trop grande (plus de 40 millions de pixels) : "
                            "envoyez une photo de plus petite taille.") from exc
    except Exception as exc:  # any parsing failure: not a usable image
        raise _unreadable() from exc
    if width <= 0 or height <= 0:
        raise _unreadable()
    return width, height


def _heic_size(data: bytes) -> tuple[int, int]:
    """The largest ``ispe`` (image spatial extent) box: HEIF requires one per image item."""
    sizes = []
    for match in re.finditer(rb"ispe", data[:2 * 1024 * 1024]):
        start = match.start()
        if start < 4:
            continue
        box_size = struct.unpack(">I", data[start - 4:start])[0]
        if box_size != 20 or start + 16 > len(data):
            continue
        width, height = struct.unpack(">II", data[start + 8:start + 16])
        sizes.append((width, height))
    if not sizes:
        raise _unreadable()
    return max(sizes, key=lambda s: s[0] * s[1])


# Bounded quantifiers and a look-behind: linear time whatever the bytes (an unbounded
# "\d+\s+\d+" backtracks quadratically over a long run of digits).
_PAGE = re.compile(rb"/Type\s{0,10}/Page(?![A-Za-z])")
_OBJECT = re.compile(rb"(?<!\d)\d{1,10}\s{1,10}\d{1,5}\s{1,10}obj\b")
_ENCRYPT = re.compile(rb"/Encrypt\b")


def _pdf_pages(data: bytes) -> int:
    if _ENCRYPT.search(data):
        raise DocumentError("Le PDF est protégé par un mot de passe : envoyez une version "
                            "non protégée.")
    if b"%%EOF" not in data[-4096:] and b"%%EOF" not in data:
        raise DocumentError("Le PDF est incomplet ou endommagé : enregistrez-le à nouveau "
                            "puis réessayez.")
    if len(_OBJECT.findall(data)) > MAX_PDF_OBJECTS:
        raise DocumentError("Le PDF est trop complexe pour être accepté.")
    pages = len(_PAGE.findall(data))
    if pages > MAX_PDF_PAGES:
        raise DocumentError(f"Le PDF compte trop de pages ({MAX_PDF_PAGES} au plus).")
    return pages


# --------------------------------------------------------------------------------------------
# Names
# --------------------------------------------------------------------------------------------

_UNSAFE = re.compile(r'[<>:"|?*\\/]')


def display_name(given: str | None, file_type: str) -> str:
    """The name shown for a file: no directory, no control or format character (such as a
    right-to-left override), at most FILENAME_MAX characters, with an extension matching the
    real type (``scan.pdf`` that is a PNG becomes ``scan.png``)."""
    name = unicodedata.normalize("NFC", given or "")
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    kept = []
    for char in name:
        category = unicodedata.category(char)
        if category.startswith("C"):  # control, format (bidi overrides), unassigned...
            continue
        kept.append(" " if category.startswith("Z") else char)
    name = " ".join(_UNSAFE.sub("_", "".join(kept)).split()).strip(" .")
    stem, dot, ext = name.rpartition(".")
    if not dot:
        stem, ext = name, ""
    if f".{ext.lower()}" not in EXTENSIONS[file_type]:
        known = any(f".{ext.lower()}" in exts for exts in EXTENSIONS.values())
        stem = stem if known else name
        ext = EXTENSIONS[file_type][0][1:]
    stem = stem.strip(" .")[:FILENAME_MAX - len(ext) - 1].rstrip(" .") or "document"
    return f"{stem}.{ext.lower()}"


def content_disposition(filename: str) -> str:
    """``attachment`` with an ASCII ``filename`` and the exact ``filename*`` (RFC 6266)."""
    chars = []
    for char in filename:
        folded = unicodedata.normalize("NFKD", char).encode("ascii", "ignore").decode()
        chars.append(folded or "_")
    ascii_name = re.sub(r"[^A-Za-z0-9._ -]", "_", "".join(chars)).strip() or "document"
    return (f'attachment; filename="{ascii_name}"; '
            f"filename*=UTF-8''{quote(filename, safe='')}")
