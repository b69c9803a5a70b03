"""The gateway served for real in a thread, in front of fake upstreams that record every call.

Each fake upstream is a tiny Flask app answering any path. A few path endings select a
behaviour (``/_slow``, ``/_download``, ``/_hop``...); anything else answers JSON naming the
upstream. Every answer carries the upstream's own ``Server`` and ``Date`` headers, so that a
gateway passing them on would be seen.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from flask import Flask, Response, jsonify, redirect, request

from gateway import SERVICES
from gateway.app import create_app
from services.common.auth import Principal
from services.common.config import Settings
from services.common.db import Database
from services.common.migrate import upgrade
from tests.common.servers import Served

UPSTREAMS = (*SERVICES, "portal")
UPSTREAM_SERVER = "fake-upstream/1.0"
UPSTREAM_DATE = "Thu, 01 Jan 2015 00:00:00 GMT"
TIMEOUT = 0.5
MiB = 1024 * 1024


def pattern(size: int) -> bytes:
    """``size`` deterministic bytes (not all alike, so that a reordering would show)."""
    block = hashlib.sha256(b"portail").digest() * (MiB // 32)
    return (block * (size // len(block) + 1))[:size]


@dataclass
class Call:
    method: str
    target: str  # the raw request target: path and query string as received
    path: str
    headers: list[tuple[str, str]]
    content_length: str | None
    transfer_encoding: str | None
    length: int
    sha256: str

    def header(self, name: str) -> str | None:
        values = self.all(name)
        return values[0] if values else None

    def all(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def names(self) -> set[str]:
        return {k.lower() for k, _ in self.headers}


@dataclass
class FakeUpstream:
    name: str
    calls: list[Call] = field(default_factory=list)
    # Set by a test to let a held answer go on (slow answers, streaming checks).
    release: threading.Event = field(default_factory=threading.Event)
    # Set by the upstream once it has read the first part of a streamed upload.
    got_first_part: threading.Event = field(default_factory=threading.Event)
    streamed_before_release: bool | None = None
    served: Served | None = None

    @property
    def url(self) -> str:
        return self.served.url

    @property
    def last(self) -> Call:
        assert self.calls, f"{self.name} n'a reçu aucun appel"
        return self.calls[-1]

    def reset(self) -> None:
        self.calls.clear()
        self.release.set()  # frees a thread a previous test may have left waiting
        self.release = threading.Event()
        self.got_first_part = threading.Event()
        self.streamed_before_release = None

    def app(self) -> Flask:
        app = Flask(f"fake-{self.name}", static_folder=None)
        methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"]
        app.add_url_rule("/", "any", self._handle, defaults={"rest": ""}, methods=methods)
        app.add_url_rule("/<path:rest>", "any", self._handle, methods=methods)
        return app

    def _handle(self, rest: str):
        ending = request.path.rsplit("/", 1)[-1]
        if ending == "_upload_streamed":
            return self._streamed_upload()
        digest, length = hashlib.sha256(), 0
        while chunk := request.stream.read(MiB):
            digest.update(chunk)
            length += len(chunk)
        self.calls.append(Call(
            method=request.method,
            target=request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI"),
            path=request.path,
            headers=list(request.headers.items()),
            content_length=request.headers.get("Content-Length"),
            transfer_encoding=request.headers.get("Transfer-Encoding"),
            length=length,
            sha256=digest.hexdigest(),
        ))
        handler = {"_slow": self._slow, "_download": self._download,
                   "_download_chunked": self._download_chunked, "_hop": self._hop,
                   "_rid": self._request_id, "_held": self._held,
                   "_two_cookies": self._two_cookies, "_redirect": self._redirect}.get(ending)
        response = handler() if handler else jsonify(upstream=self.name, path=request.path)
        response.headers["Server"] = UPSTREAM_SERVER
        response.headers["Date"] = UPSTREAM_DATE
        return response

    def _slow(self):
        self.release.wait(10)
        return jsonify(upstream=self.name, slow=True)

    def _download(self):
        size = int(request.args["size"])
        body = pattern(size)
        return Response([body[i:i + MiB] for i in range(0, size, MiB)],
                        headers={"Content-Length": str(size)},
                        mimetype="application/octet-stream")

    def _download_chunked(self):
        size = int(request.args["size"])
        body = pattern(size)
        # No Content-Length: the upstream's server sends it chunked.
        return Response((body[i:i + MiB] for i in range(0, size, MiB)),
                        mimetype="application/octet-stream")

    def _held(self):
        """The first MiB at once, the rest only once the test released it (or 5 s passed)."""
        def body():
            yield pattern(MiB)
            self.streamed_before_release = self.release.wait(5)
            yield pattern(2 * MiB)[MiB:]
        return Response(body(), headers={"Content-Length": str(2 * MiB)},
                        mimetype="application/octet-stream")

    def _hop(self):
        response = jsonify(upstream=self.name)
        response.headers["Connection"] = "close, X-Up-Hop"
        response.headers["X-Up-Hop"] = "secret"
        response.headers["Keep-Alive"] = "timeout=5"
        response.headers["Proxy-Authenticate"] = "Basic realm=x"
        response.headers["Trailer"] = "X-Checksum"
        response.headers["Upgrade"] = "h2c"
        response.headers["X-End-To-End"] = "kept"
        return response

    def _redirect(self):
        # As Flask's redirect(): a small HTML body with its Content-Length.
        return redirect("/elsewhere", code=303)

    def _two_cookies(self):
        response = jsonify(upstream=self.name)
        response.set_cookie("portail_session", "abc", httponly=True, samesite="Lax")
        response.delete_cookie("portail_csrf")
        return response

    def _request_id(self):
        response = jsonify(upstream=self.name)
        response.headers["X-Request-ID"] = "made-by-the-upstream"
        return response

    def _streamed_upload(self):
        first = b""
        while len(first) < MiB:
            chunk = request.stream.read(MiB - len(first))
            if not chunk:
                break
            first += chunk
        self.got_first_part.set()
        rest = request.stream.read()
        return jsonify(first=len(first), total=len(first) + len(rest),
                       sha256=hashlib.sha256(first + rest).hexdigest())


@pytest.fixture(scope="session")
def _fake_upstreams() -> Iterator[dict[str, FakeUpstream]]:
    fakes = {name: FakeUpstream(name) for name in UPSTREAMS}
    for fake in fakes.values():
        fake.served = Served(fake.app())
    yield fakes
    for fake in fakes.values():
        fake.release.set()
        fake.served.stop()


@pytest.fixture
def upstreams(_fake_upstreams) -> Iterator[dict[str, FakeUpstream]]:
    for fake in _fake_upstreams.values():
        fake.reset()
    yield _fake_upstreams
    for fake in _fake_upstreams.values():
        fake.release.set()


@dataclass
class RunningGateway:
    url: str
    app: Flask
    data_dir: Path

    def login(self, principal: Principal) -> str:
        """A session opened directly in the store, as /auth/login would."""
        return self.app.extensions["gateway"].sessions.open(principal)


def gateway_settings(data_dir: Path, database_url: str, urls: dict[str, str], *,
                     env: str = "dev", extra: dict[str, str] | None = None) -> Settings:
    return Settings(
        service="gateway", env=env, data_dir=data_dir, database_url=database_url,
        secret_key="x" * 32,
        extra={**{f"{name.upper()}_URL": url for name, url in urls.items()},
               "UPSTREAM_TIMEOUT": str(TIMEOUT), **(extra or {})},
    )


@pytest.fixture
def make_gateway(tmp_path) -> Iterator[Callable[..., RunningGateway]]:
    """Build, migrate and serve a gateway; ``urls`` maps upstream names to base URLs."""
    started: list[tuple[Served, Database]] = []

    def make(urls: dict[str, str], *, data_dir: Path | None = None, env: str = "dev",
             extra: dict[str, str] | None = None) -> RunningGateway:
        index = len(started)
        url = f"sqlite:///{tmp_path / f'gateway-{index}.sqlite3'}"
        upgrade("gateway", url)
        db = Database(url)
        data_dir = data_dir or tmp_path
        app = create_app(gateway_settings(data_dir, url, urls, env=env, extra=extra), db)
        served = Served(app)
        started.append((served, db))
        return RunningGateway(url=served.url, app=app, data_dir=data_dir)

    yield make
    for served, db in started:
        served.stop()
        db.dispose()


@pytest.fixture
def gateway(make_gateway, upstreams) -> RunningGateway:
    return make_gateway({name: fake.url for name, fake in upstreams.items()})
