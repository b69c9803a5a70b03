"""Response headers that keep the portal's pages strict: CSP, no framing, no caching."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Flask, Response, g

CSP = "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'self'"

# Only for a dev mail message: the e-mail's HTML sits in a sandboxed srcdoc iframe, which
# inherits this page's policy; e-mails style themselves inline and may embed data: images.
# Scripts stay forbidden both by this policy and by the iframe's sandbox.
DEV_MAIL_CSP = (
    "default-src 'self'; frame-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'self'"
)


# No page uses these; a script injected despite the CSP gets none of them either.
PERMISSIONS = "camera=(), microphone=(), geolocation=(), payment=(), usb=()"


def install_security_headers(app: Flask, *, production: bool = False) -> None:
    @app.after_request
    def _headers(response: Response) -> Response:
        response.headers["Content-Security-Policy"] = g.get("csp", CSP)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers["Permissions-Policy"] = PERMISSIONS
        if production:  # served over HTTPS only (the gateway sends it too)
            response.headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
        # Pages show a family's data: not to be kept by shared computers or proxies.
        if response.mimetype == "text/html" and "Cache-Control" not in response.headers:
            response.headers["Cache-Control"] = "private, no-store"
        return response


def safe_target(value: str | None) -> str | None:
    """Only a path on this site: ``suivant=https://ailleurs`` must not become an open redirect."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return None
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or any(ord(ch) < 32 for ch in value):
        return None
    return value
