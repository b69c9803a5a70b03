"""Large bodies cross the gateway intact, streamed rather than held in memory."""

from __future__ import annotations

import hashlib
import threading

import requests

from .conftest import MiB, pattern

SIZE = 20 * MiB


def test_a_20_mb_upload_reaches_the_upstream_intact(gateway, upstreams):
    body = pattern(SIZE)
    response = requests.post(gateway.url + "/api/requests/communes/jolieville/requests",
                             data=body, headers={"Content-Type": "application/pdf"}, timeout=60)
    assert response.status_code == 200
    call = upstreams["requests"].last
    assert call.content_length == str(SIZE)
    assert call.transfer_encoding is None
    assert call.length == SIZE
    assert call.sha256 == hashlib.sha256(body).hexdigest()
    assert call.header("Content-Type") == "application/pdf"


def test_a_chunked_upload_arrives_whole_with_a_length(gateway, upstreams):
    body = pattern(3 * MiB)
    response = requests.post(gateway.url + "/api/requests/x",
                            data=(body[i:i + 100_000] for i in range(0, len(body), 100_000)),
                            timeout=60)
    assert response.status_code == 200
    call = upstreams["requests"].last
    assert call.content_length == str(len(body))
    assert call.length == len(body)
    assert call.sha256 == hashlib.sha256(body).hexdigest()


class _HeldBody:
    """A request body of known length whose second half is sent only once ``go`` is set."""

    def __init__(self, first: bytes, rest: bytes, go: threading.Event):
        self.parts = [first, rest]
        self.go = go
        self.waited: bool | None = None
        self.position = 0
        self.data = first + rest

    def __len__(self) -> int:
        return len(self.data)

    def read(self, size: int = -1) -> bytes:
        first = len(self.parts[0])
        if self.position == first and self.waited is None:
            self.waited = self.go.wait(5)
        end = len(self.data) if size < 0 else self.position + size
        if self.position < first:
            end = min(end, first)
        chunk = self.data[self.position:end]
        self.position += len(chunk)
        return chunk


def test_uploads_are_streamed_not_buffered(gateway, upstreams):
    upstream = upstreams["requests"]
    body = _HeldBody(pattern(MiB), pattern(2 * MiB)[MiB:], upstream.got_first_part)
    response = requests.post(gateway.url + "/api/requests/x/_upload_streamed", data=body,
                             timeout=30)
    assert response.status_code == 200
    # The upstream had the first MiB while the client still held the rest back.
    assert body.waited is True
    assert response.json() == {"first": MiB, "total": 2 * MiB,
                               "sha256": hashlib.sha256(body.data).hexdigest()}


def test_a_20_mb_download_streams_back_intact(gateway, upstreams):
    response = requests.get(gateway.url + f"/api/billing/invoices/1/_download?size={SIZE}",
                            stream=True, timeout=60)
    assert response.status_code == 200
    assert response.headers["Content-Length"] == str(SIZE)
    assert response.headers["Content-Type"] == "application/octet-stream"
    digest, length = hashlib.sha256(), 0
    for chunk in response.iter_content(MiB):
        digest.update(chunk)
        length += len(chunk)
    assert length == SIZE
    assert digest.hexdigest() == hashlib.sha256(pattern(SIZE)).hexdigest()


def test_a_chunked_download_streams_back_intact(gateway, upstreams):
    size = 5 * MiB + 123
    response = requests.get(gateway.url + f"/api/billing/x/_download_chunked?size={size}",
                            timeout=60)
    assert response.status_code == 200
    assert response.content == pattern(size)


def test_downloads_are_streamed_not_buffered(gateway, upstreams):
    upstream = upstreams["billing"]
    response = requests.get(gateway.url + "/api/billing/x/_held", stream=True, timeout=30)
    try:
        # The first MiB arrives while the upstream still holds the rest back...
        first = response.raw.read(MiB)
        assert len(first) == MiB
    finally:
        upstream.release.set()
    rest = response.raw.read()
    # ...and the upstream was released by us, not by its own time limit.
    assert upstream.streamed_before_release is True
    assert first + rest == pattern(2 * MiB)


def test_a_redirect_arrives_with_the_body_its_length_announces(gateway, upstreams):
    """requests reads a redirect's body itself: the gateway must still send it on."""
    response = requests.post(gateway.url + "/payments/simulator/p-1/_redirect",
                             allow_redirects=False, timeout=10)
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/elsewhere")
    assert len(response.content) == int(response.headers["Content-Length"]) > 0
