"""Configuration from the environment, with every problem reported at once at start-up."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

SERVICES = ("accounts", "reservations", "billing", "requests", "notifications")


class ConfigError(RuntimeError):
    """Raised at start-up when the environment lacks or garbles something required."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__(
            "Configuration invalide :\n" + "\n".join(f"  - {p}" for p in problems)
        )


class Env:
    """Reads variables from a mapping, collecting problems instead of failing at the first."""

    def __init__(self, environ: Mapping[str, str] | None = None):
        self.environ = os.environ if environ is None else environ
        self.problems: list[str] = []

    def str(self, name: str, default: str | None = None, *, required: bool = False) -> str:
        value = self.environ.get(name)
        if value is None or value == "":
            if required:
                self.problems.append(f"{name} est obligatoire")
                return ""
            return default or ""
        return value

    def int(self, name: str, default: int) -> int:
        raw = self.environ.get(name)
        if raw in (None, ""):
            return default
        try:
            return int(raw)
        except ValueError:
            self.problems.append(f"{name} doit être un nombre entier (reçu {raw!r})")
            return default

    def float(self, name: str, default: float) -> float:
        raw = self.environ.get(name)
        if raw in (None, ""):
            return default
        try:
            return float(raw)
        except ValueError:
            self.problems.append(f"{name} doit être un nombre (reçu {raw!r})")
            return default

    def bool(self, name: str, default: bool = False) -> bool:
        raw = self.environ.get(name)
        if raw in (None, ""):
            return default
        if raw.lower() in ("1", "true", "yes", "on", "oui"):
            return True
        if raw.lower() in ("0", "false", "no", "off", "non"):
            return False
        self.problems.append(f"{name} doit valoir 1 ou 0 (reçu {raw!r})")
        return default

    def check(self) -> None:
        if self.problems:
            raise ConfigError(self.problems)


@dataclass(frozen=True)
class Settings:
    """What one process of one service needs; built by :func:`load_settings`."""

    service: str
    env: str = "production"
    data_dir: Path = Path("var")
    database_url: str = ""
    amqp_url: str = "memory://"
    bus_prefix: str = ""
    public_url: str = "http://127.0.0.1:8000"
    secret_key: str = ""
    jwt_public_keys: str = ""
    log_level: str = "INFO"
    log_format: str = "json"
    extra: Mapping[str, str] = field(default_factory=dict)

    @property
    def dev(self) -> bool:
        # Fix: load_settings gives every mode but production the embedded fallbacks (the
        # well-known dev secret, SQLite, memory://); "test" was then not dev here, i.e. it ran
        # with that public secret yet demanded production keys. Same rule in both places.
        return self.env != "production"


def default_sqlite_url(data_dir: Path, name: str) -> str:
    return f"sqlite:///{(data_dir / f'{name}.sqlite3').resolve()}"


def load_settings(
    service: str,
    environ: Mapping[str, str] | None = None,
    *,
    needs_database: bool = True,
    needs_bus: bool = True,
) -> Settings:
    """Settings for ``service`` from the environment; raises ConfigError listing every problem.

    In production nothing falls back to an embedded default: a forgotten database URL must stop
    the process at start, not write to a SQLite file inside a container.
    """
    env = Env(environ)
    mode = env.str("PORTAIL_ENV", "production")
    if mode not in ("dev", "production", "test"):
        env.problems.append(f"PORTAIL_ENV doit valoir dev, test ou production (reçu {mode!r})")
    dev = mode != "production"
    data_dir = Path(env.str("PORTAIL_DATA_DIR", "var"))
    prefix = service.upper()
    database_url = ""
    if needs_database:
        database_url = env.str(f"{prefix}_DATABASE_URL", required=not dev)
        if not database_url:
            database_url = default_sqlite_url(data_dir, service)
    amqp_url = ""
    if needs_bus:
        amqp_url = env.str("AMQP_URL", "memory://" if dev else None, required=not dev)
    settings = Settings(
        service=service,
        env=mode,
        data_dir=data_dir,
        database_url=database_url,
        amqp_url=amqp_url,
        bus_prefix=env.str("BUS_PREFIX", ""),
        public_url=env.str("PUBLIC_URL", "http://127.0.0.1:8000").rstrip("/"),
        secret_key=env.str("PORTAIL_SECRET_KEY", "dev-only-not-secret" if dev else None,
                           required=not dev),
        jwt_public_keys=env.str("JWT_PUBLIC_KEYS", ""),
        log_level=env.str("LOG_LEVEL", "INFO").upper(),
        log_format=env.str("LOG_FORMAT", "json"),
        extra=dict(env.environ),
    )
    env.check()
    return settings
