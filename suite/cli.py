"""The ``portail`` command."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from services.common.config import ConfigError

from . import registry

REPO = Path(__file__).resolve().parents[1]


def _gunicorn_conf() -> Path | None:
    for candidate in (Path.cwd() / "deploy" / "gunicorn.conf.py",
                      REPO / "deploy" / "gunicorn.conf.py"):
        if candidate.exists():
            return candidate
    return None


def cmd_dev(args) -> None:
    from . import embedded

    embedded.run(args.host, args.port, Path(args.data_dir), args.fresh)


def cmd_serve(args) -> None:
    argv = [sys.executable, "-m", "gunicorn"]
    conf = _gunicorn_conf()
    if conf:
        argv += ["-c", str(conf)]
    else:
        argv += ["--bind", f"0.0.0.0:{os.environ.get('PORT', '8000')}"]
    argv.append(registry.wsgi_spec(args.name))
    # Fail here, with the French list of what is missing, rather than in every gunicorn worker.
    registry.app_module(args.name).create_app()
    os.execv(sys.executable, argv)


def cmd_worker(args) -> None:
    import importlib

    importlib.import_module(f"services.{args.name}.worker").main()


def cmd_worker_probe(args) -> None:
    from services.common.runtime import worker_heartbeat_file

    path = worker_heartbeat_file(args.name)
    if not path.exists() or time.time() - path.stat().st_mtime > args.max_age:
        print(f"le worker {args.name} ne donne plus signe de vie", file=sys.stderr)
        raise SystemExit(1)


def cmd_migrate(args) -> None:
    from . import operations

    done = operations.migrate([args.name] if args.name else None)
    if os.environ.get("AMQP_URL"):
        operations.declare_bus()
    print("Bases à jour : " + ", ".join(done))


def cmd_seed(args) -> None:
    from . import operations

    created = operations.seed()
    print("Créé : " + ", ".join(created) if created else "Données de démonstration déjà là.")


def cmd_smtp_sink(args) -> None:
    from services.common.mailbox import mailbox_dir

    from . import smtp_sink

    data_dir = Path(os.environ.get("PORTAIL_DATA_DIR", "var"))
    smtp_sink.run(mailbox_dir(data_dir, dict(os.environ)), args.host, args.port)


def cmd_up(args) -> None:
    from . import environment, operations

    database_url = os.environ.get("DATABASE_URL")
    if not database_url:
        raise ConfigError(["DATABASE_URL est obligatoire pour `portail up` (serveur PostgreSQL,"
                           " par ex. postgresql://postgres@127.0.0.1:5432/postgres)"])
    amqp_url = os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")
    data_dir = Path(args.data_dir).resolve()
    env = environment.distributed(data_dir, database_url, amqp_url)
    environment.ensure_databases(environment.database_urls(database_url))
    os.environ.update(env)
    # The Procfile's lines call `portail`: the one of this interpreter, installed or not.
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    operations.migrate()
    operations.declare_bus()
    created = operations.seed()
    if created:
        print("Données de démonstration créées : " + ", ".join(created))
    procfile = REPO / "deploy" / "Procfile"
    print(f"Portail Famille (distribué) : {env['PUBLIC_URL']}", flush=True)
    completed = subprocess.run([sys.executable, "-m", "honcho", "-f", str(procfile),
                                "-d", str(Path.cwd()), "start"], env=os.environ.copy())
    raise SystemExit(completed.returncode)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="portail", description="Portail Famille")
    sub = p.add_subparsers(dest="command", required=True)

    dev = sub.add_parser("dev", help="toute la suite en un processus, avec les données de démo")
    dev.add_argument("--host", default="127.0.0.1")
    dev.add_argument("--port", type=int, default=8000)
    dev.add_argument("--data-dir", default=os.environ.get("PORTAIL_DATA_DIR", "var"))
    dev.add_argument("--fresh", action="store_true", help="repartir de zéro")
    dev.set_defaults(func=cmd_dev)

    serve = sub.add_parser("serve", help="un processus web (gunicorn)")
    serve.add_argument("name", choices=registry.WEB)
    serve.set_defaults(func=cmd_serve)

    worker = sub.add_parser("worker", help="le relais d'outbox et les consommateurs d'un service")
    worker.add_argument("name", choices=registry.SERVICES)
    worker.set_defaults(func=cmd_worker)

    probe = sub.add_parser("worker-probe", help="sonde de vie d'un worker (Kubernetes)")
    probe.add_argument("name", choices=registry.SERVICES)
    probe.add_argument("--max-age", type=float, default=30.0)
    probe.set_defaults(func=cmd_worker_probe)

    migrate = sub.add_parser("migrate", help="mettre les bases à jour (et déclarer le bus)")
    migrate.add_argument("name", nargs="?", choices=list(registry.MIGRATED))
    migrate.set_defaults(func=cmd_migrate)

    seed = sub.add_parser("seed", help="créer les données de démonstration")
    seed.set_defaults(func=cmd_seed)

    up = sub.add_parser("up", help="la topologie distribuée sur cette machine (honcho)")
    up.add_argument("--data-dir", default=os.environ.get("PORTAIL_DATA_DIR", "var"))
    up.set_defaults(func=cmd_up)

    sink = sub.add_parser("smtp-sink", help="un SMTP local qui remplit la boîte de dev")
    sink.add_argument("--host", default="127.0.0.1")
    sink.add_argument("--port", type=int, default=1025)
    sink.set_defaults(func=cmd_smtp_sink)
    return p


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    try:
        args.func(args)
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        raise SystemExit(2) from exc
