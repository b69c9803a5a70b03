"""Static checks of deploy/: files parse and the process lists agree everywhere.

No container engine or cluster is needed: the Procfile, the compose file, the Kubernetes
manifests, the gunicorn config and the RabbitMQ definitions are read as data and compared with
the processes of docs/architecture.md and the event catalogue of DESIGN.md (section 5).
"""

from __future__ import annotations

import base64
import hashlib
import importlib
import inspect
import json
import re
import runpy
import shlex
from functools import cache
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"

SERVICES = ("accounts", "reservations", "billing", "requests", "notifications")
WEB_APPS = (*SERVICES, "gateway", "portal")
# Every long-running process of docs/architecture.md and the `portail` command that runs it.
PROCESSES: dict[str, tuple[str, str]] = {
    **{f"{svc}-web": ("serve", svc) for svc in SERVICES},
    **{f"{svc}-worker": ("worker", svc) for svc in SERVICES},
    "gateway": ("serve", "gateway"),
    "portal": ("serve", "portal"),
}
WEB_PROCESSES = sorted(name for name, (cmd, _) in PROCESSES.items() if cmd == "serve")
WORKER_PROCESSES = sorted(name for name, (cmd, _) in PROCESSES.items() if cmd == "worker")
# Local ports of `portail up` (docs/architecture.md, "Processes").
LOCAL_PORTS = {
    "accounts-web": 8001,
    "reservations-web": 8002,
    "billing-web": 8003,
    "requests-web": 8004,
    "notifications-web": 8005,
    "gateway": 8000,
    "portal": 8010,
}
# `portail` sub-commands and the argument each takes (None: no argument).
COMMANDS: dict[str, frozenset[str] | None] = {
    "serve": frozenset(WEB_APPS),
    "worker": frozenset(SERVICES),
    "worker-probe": frozenset(SERVICES),
    "migrate": None,
    "smtp-sink": None,
}
LOCAL_ONLY = {"smtp-sink"}  # Procfile only: compose uses mailpit
COMPOSE_INFRA = {"postgres", "rabbitmq", "mailpit"}
COMPOSE_ONE_SHOT = {"migrate"}
DATABASES = {*SERVICES, "gateway"}

# The queues follow the code: a service's queue exists and is bound to exactly the event types
# its events.HANDLERS handle (tests/test_topology.py checks the arguments and the bindings).
CONSUMING = tuple(
    svc for svc in SERVICES if importlib.import_module(f"services.{svc}.events").HANDLERS
)
RETRY_TTLS = (1000, 10000, 60000)


# --- loaders ------------------------------------------------------------------------------------


def yaml_documents(path: Path) -> list:
    with path.open(encoding="utf-8") as stream:
        return [doc for doc in yaml.safe_load_all(stream) if doc is not None]


@cache
def procfile() -> dict[str, list[str]]:
    """Process name -> argv, parsed as honcho does (other lines, such as comments, are ignored)."""
    processes = {}
    for line in (DEPLOY / "Procfile").read_text(encoding="utf-8").splitlines():
        match = re.match(r"^([A-Za-z0-9_-]+):\s*(.+)$", line)
        if match:
            assert match[1] not in processes, f"{match[1]} twice in the Procfile"
            processes[match[1]] = shlex.split(match[2])
    return processes


@cache
def compose() -> dict:
    return yaml_documents(DEPLOY / "docker-compose.yml")[0]


def compose_service(name: str) -> dict:
    services = compose()["services"]
    assert name in services, f"no compose service {name}"
    return services[name]


@cache
def k8s_objects() -> dict[tuple[str, str], dict]:
    """(kind, name) -> object, for every manifest listed in the kustomization."""
    objects = {}
    for resource in kustomization()["resources"]:
        for doc in yaml_documents(K8S / resource):
            key = (doc["kind"], doc["metadata"]["name"])
            assert key not in objects, f"{key} defined twice"
            objects[key] = doc
    return objects


@cache
def kustomization() -> dict:
    return yaml_documents(K8S / "kustomization.yaml")[0]


def k8s(kind: str) -> dict[str, dict]:
    return {name: obj for (k, name), obj in k8s_objects().items() if k == kind}


def deployment(process: str) -> dict:
    deployments = k8s("Deployment")
    assert f"portail-{process}" in deployments, f"no Deployment portail-{process}"
    return deployments[f"portail-{process}"]


def only_container(pod_spec: dict) -> dict:
    containers = pod_spec["containers"]
    assert len(containers) == 1
    return containers[0]


@cache
def definitions() -> dict:
    return json.loads((DEPLOY / "rabbitmq" / "definitions.json").read_text(encoding="utf-8"))


def queues() -> dict[str, dict]:
    return {queue["name"]: queue for queue in definitions()["queues"]}


def bindings(source: str, destination: str) -> set[str]:
    return {
        b["routing_key"]
        for b in definitions()["bindings"]
        if b["source"] == source
        and b["destination"] == destination
        and b["destination_type"] == "queue"
    }


def portail_invocation(argv: list[str]) -> tuple[str, str | None]:
    """(command, argument) of a `[env K=V ...] portail CMD [ARG]` command line."""
    assert "portail" in argv, f"not a portail command: {argv}"
    rest = argv[argv.index("portail") + 1 :]
    assert 1 <= len(rest) <= 2, f"unexpected arguments: {argv}"
    return rest[0], rest[1] if len(rest) == 2 else None


def check_invocation(command: str, argument: str | None, where: str) -> None:
    assert command in COMMANDS, f"{where}: unknown command portail {command}"
    allowed = COMMANDS[command]
    if allowed is None:
        assert argument is None, f"{where}: portail {command} takes no argument"
    else:
        assert argument in allowed, f"{where}: portail {command} {argument}: unknown process"


def published_ports(service: dict) -> dict[int, int]:
    """Container port -> host port of a compose service (short syntax)."""
    ports = {}
    for entry in service.get("ports", []):
        *_, host, container = str(entry).split(":")
        ports[int(container)] = int(host)
    return ports


# --- every file parses ----------------------------------------------------------------------------

DATA_FILES = sorted(
    path
    for path in DEPLOY.rglob("*")
    if path.is_file() and path.suffix in {".yml", ".yaml", ".json"}
)


def test_deploy_has_data_files():
    names = {path.relative_to(DEPLOY).as_posix() for path in DATA_FILES}
    assert {"docker-compose.yml", "rabbitmq/definitions.json", "k8s/kustomization.yaml"} <= names


@pytest.mark.parametrize("path", DATA_FILES, ids=lambda p: p.relative_to(DEPLOY).as_posix())
def test_data_file_parses(path):
    if path.suffix == ".json":
        json.loads(path.read_text(encoding="utf-8"))
    else:
        assert yaml_documents(path), f"{path} is empty"


# --- Procfile -------------------------------------------------------------------------------------


def test_procfile_lists_every_process():
    assert set(procfile()) == set(PROCESSES) | LOCAL_ONLY


@pytest.mark.parametrize("process", sorted(PROCESSES))
def test_procfile_runs_the_process(process):
    argv = procfile()[process]
    assert portail_invocation(argv) == PROCESSES[process]
    port = next((a.removeprefix("PORT=") for a in argv if a.startswith("PORT=")), None)
    if process in LOCAL_PORTS:
        assert argv[0] == "env", "honcho sets its own PORT: web lines must set theirs"
        assert port == str(LOCAL_PORTS[process])
    else:
        assert port is None


def test_procfile_runs_the_smtp_sink():
    assert portail_invocation(procfile()["smtp-sink"]) == ("smtp-sink", None)


# --- compose --------------------------------------------------------------------------------------


def compose_processes() -> set[str]:
    return set(compose()["services"]) - COMPOSE_INFRA - COMPOSE_ONE_SHOT


def test_compose_and_procfile_name_the_same_processes():
    assert "version" not in compose(), "the compose spec has no `version:` key"
    assert compose_processes() == set(procfile()) - LOCAL_ONLY
    assert compose_processes() == set(PROCESSES)
    assert not LOCAL_ONLY & set(compose()["services"])


@pytest.mark.parametrize("process", sorted(PROCESSES))
def test_compose_service_runs_the_process(process):
    service = compose_service(process)
    assert tuple(service["command"]) == PROCESSES[process]
    assert service["image"] == compose_service("migrate")["image"], "one image for all"
    for infra in ("postgres", "rabbitmq"):
        assert service["depends_on"][infra]["condition"] == "service_healthy"
    assert service["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    env = service["environment"]
    if process in WEB_PROCESSES:
        assert env["PORT"] == "8000"
    for name in DATABASES:
        url = urlsplit(env[f"{name.upper()}_DATABASE_URL"])
        assert url.scheme == "postgresql+psycopg"
        assert (url.hostname, url.path) == ("postgres", f"/{name}")
    assert urlsplit(env["AMQP_URL"]).hostname == "rabbitmq"
    assert urlsplit(env["SMTP_URL"]).hostname == "mailpit"


def test_compose_gateway_upstreams_are_compose_services():
    env = compose_service("gateway")["environment"]
    for app in (*SERVICES, "portal"):
        url = urlsplit(env[f"{app.upper()}_URL"])
        target = app if app == "portal" else f"{app}-web"
        assert (url.hostname, url.port) == (target, 8000)
        assert target in compose()["services"]
    assert urlsplit(compose_service("portal")["environment"]["GATEWAY_URL"]).hostname == "gateway"


def test_compose_publishes_the_gateway_on_8000():
    assert published_ports(compose_service("gateway")) == {8000: 8000}
    for process in set(PROCESSES) - {"gateway"}:
        assert not published_ports(compose_service(process)), f"{process} is published"


def test_compose_infrastructure():
    postgres, rabbitmq = compose_service("postgres"), compose_service("rabbitmq")
    assert postgres["image"].startswith("postgres:16")
    assert rabbitmq["image"].startswith("rabbitmq:3.13-management")
    assert compose_service("mailpit")["image"].startswith("axllent/mailpit")
    for service in (postgres, rabbitmq):
        assert service["healthcheck"]["test"]
    assert "./postgres-init.sql" in {v.split(":")[0] for v in postgres["volumes"]}
    mounts = dict(v.split(":")[:2] for v in rabbitmq["volumes"])
    assert mounts["./rabbitmq/definitions.json"] == "/etc/rabbitmq/definitions.json"
    assert mounts["./rabbitmq/rabbitmq.conf"].startswith("/etc/rabbitmq/")
    conf = (DEPLOY / "rabbitmq" / "rabbitmq.conf").read_text(encoding="utf-8")
    assert re.search(r"^load_definitions\s*=\s*/etc/rabbitmq/definitions\.json$", conf, re.M)
    assert compose_service("migrate")["command"] == ["migrate"]


def test_compose_env_file_has_a_template():
    for process in PROCESSES:
        env_files = compose_service(process)["env_file"]
        for env_file in [env_files] if isinstance(env_files, str) else env_files:
            path = env_file if isinstance(env_file, str) else env_file["path"]
            assert (DEPLOY / f"{path}.example").is_file(), f"no template for {path}"


def test_postgres_init_creates_one_database_per_service():
    sql = (DEPLOY / "postgres-init.sql").read_text(encoding="utf-8")
    assert set(re.findall(r"CREATE DATABASE (\w+)", sql)) == DATABASES


# --- Kubernetes -----------------------------------------------------------------------------------


def test_kustomization_lists_every_manifest():
    listed = kustomization()["resources"]
    assert len(listed) == len(set(listed))
    on_disk = {p.name for p in K8S.glob("*.y*ml")} - {"kustomization.yaml"}
    assert set(listed) == on_disk


def test_one_deployment_per_process():
    assert set(k8s("Deployment")) == {f"portail-{process}" for process in PROCESSES}


@pytest.mark.parametrize("process", sorted(PROCESSES))
def test_deployment_runs_the_process(process):
    spec = deployment(process)["spec"]
    pod = spec["template"]["spec"]
    container = only_container(pod)
    assert spec["selector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items()
    assert container["image"].startswith("registry.example/portail-famille:")
    assert tuple(container["args"]) == PROCESSES[process]
    assert "command" not in container, "the image's ENTRYPOINT is portail"
    for probe in ("livenessProbe", "readinessProbe"):
        assert probe in container, f"{process} has no {probe}"
    resources = container["resources"]
    for bound in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(resources[bound])
    security = {**pod.get("securityContext", {}), **container.get("securityContext", {})}
    assert security["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    refs = {
        ("ConfigMap", source["configMapRef"]["name"])
        if "configMapRef" in source
        else ("Secret", source["secretRef"]["name"])
        for source in container["envFrom"]
    }
    assert refs == {("ConfigMap", "portail-config"), ("Secret", "portail-secrets")}
    assert refs <= set(k8s_objects())


@pytest.mark.parametrize("process", WEB_PROCESSES)
def test_web_deployment_probes_and_service(process):
    spec = deployment(process)["spec"]
    container = only_container(spec["template"]["spec"])
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert ports == {"http": 8000}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    service = k8s("Service").get(f"portail-{process}")
    assert service is not None, f"no Service for {process}"
    assert service["spec"]["selector"].items() <= spec["template"]["metadata"]["labels"].items()
    assert {port["targetPort"] for port in service["spec"]["ports"]} == {"http"}


@pytest.mark.parametrize("process", WORKER_PROCESSES)
def test_worker_deployment_probes(process):
    container = only_container(deployment(process)["spec"]["template"]["spec"])
    svc = PROCESSES[process][1]
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["exec"]["command"] == ["portail", "worker-probe", svc]
    assert "ports" not in container
    assert f"portail-{process}" not in k8s("Service")


def test_configuration_provides_the_environment():
    keys = set(k8s("ConfigMap")["portail-config"]["data"])
    keys |= set(k8s("Secret")["portail-secrets"]["stringData"])
    required = {f"{name.upper()}_DATABASE_URL" for name in DATABASES} | {
        f"{app.upper()}_URL" for app in (*SERVICES, "portal", "gateway")
    }
    required |= {"AMQP_URL", "SMTP_URL", "PUBLIC_URL", "PORTAIL_SECRET_KEY", "JWT_PRIVATE_KEY"}
    required |= {"JWT_PUBLIC_KEYS", "PORTAIL_ENV", "PORT"}
    assert required <= keys
    data = k8s("ConfigMap")["portail-config"]["data"]
    services = k8s("Service")
    for app in (*SERVICES, "portal", "gateway"):
        host = urlsplit(data[f"{app.upper()}_URL"]).hostname
        assert host in services, f"{app.upper()}_URL points at no Service"


def test_every_deployment_has_an_hpa():
    hpas = k8s("HorizontalPodAutoscaler")
    targets = set()
    for name, hpa in hpas.items():
        assert hpa["apiVersion"] == "autoscaling/v2"
        ref = hpa["spec"]["scaleTargetRef"]
        assert ref["kind"] == "Deployment"
        assert ref["name"] in k8s("Deployment"), f"HPA {name} targets a missing Deployment"
        [metric] = hpa["spec"]["metrics"]
        assert metric["resource"]["name"] == "cpu"
        assert metric["resource"]["target"]["averageUtilization"] == 70
        assert hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
        targets.add(ref["name"])
    assert targets == set(k8s("Deployment"))


def test_ingress_routes_to_the_gateway():
    [ingress] = k8s("Ingress").values()
    backends = {
        path["backend"]["service"]["name"]
        for rule in ingress["spec"]["rules"]
        for path in rule["http"]["paths"]
    }
    assert backends == {"portail-gateway"}
    assert "portail-gateway" in k8s("Service")


def test_migration_job():
    job = k8s("Job")["portail-migrate"]
    container = only_container(job["spec"]["template"]["spec"])
    assert container["args"] == ["migrate"]
    gateway = only_container(deployment("gateway")["spec"]["template"]["spec"])
    assert container["image"] == gateway["image"]


def test_all_objects_in_the_namespace():
    namespace = kustomization()["namespace"]
    assert ("Namespace", namespace) in k8s_objects()
    for (kind, name), obj in k8s_objects().items():
        if kind != "Namespace":
            assert obj["metadata"].get("namespace", namespace) == namespace, f"{kind}/{name}"


# --- every portail command line -------------------------------------------------------------------


def all_invocations():
    for name, argv in procfile().items():
        yield f"Procfile {name}", argv
    for name, service in compose()["services"].items():
        if name in COMPOSE_INFRA:
            continue
        yield f"compose {name}", ["portail", *service["command"]]
        test = service.get("healthcheck", {}).get("test", [])
        if "portail" in test:
            yield f"compose {name} healthcheck", test
    for (kind, name), obj in k8s_objects().items():
        pod = obj["spec"]["template"]["spec"] if kind in {"Deployment", "Job"} else None
        for container in pod["containers"] if pod else []:
            yield f"{kind} {name}", ["portail", *container["args"]]
            for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                command = container.get(probe, {}).get("exec", {}).get("command")
                if command:
                    yield f"{kind} {name} {probe}", command


def test_every_portail_command_is_known():
    invocations = list(all_invocations())
    assert len(invocations) > 3 * len(PROCESSES)
    for where, argv in invocations:
        check_invocation(*portail_invocation(argv), where)


# --- gunicorn -------------------------------------------------------------------------------------


def gunicorn_settings(monkeypatch, **env) -> dict:
    for name in ("PORT", "WEB_CONCURRENCY", "GUNICORN_THREADS", "FORWARDED_ALLOW_IPS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(DEPLOY / "gunicorn.conf.py"))


def test_gunicorn_conf_binds_port_from_env(monkeypatch):
    settings = gunicorn_settings(monkeypatch, PORT="8123")
    assert settings["bind"] == ["0.0.0.0:8123"]
    assert gunicorn_settings(monkeypatch)["bind"] == ["0.0.0.0:8000"]


def test_gunicorn_conf_values(monkeypatch):
    settings = gunicorn_settings(monkeypatch)
    assert 1 <= settings["workers"] <= 8
    assert settings["worker_class"] == "gthread"
    assert settings["threads"] == 4
    assert settings["preload_app"] is False
    assert settings["accesslog"] == "-"
    assert (settings["timeout"], settings["graceful_timeout"], settings["keepalive"]) == (30, 20, 5)
    assert settings["max_requests"] == 2000
    assert settings["max_requests_jitter"] > 0
    settings = gunicorn_settings(
        monkeypatch, WEB_CONCURRENCY="3", GUNICORN_THREADS="2", FORWARDED_ALLOW_IPS="*"
    )
    assert (settings["workers"], settings["threads"]) == (3, 2)
    assert settings["forwarded_allow_ips"] == "*"


def test_gunicorn_conf_names_are_gunicorn_settings(monkeypatch):
    """Gunicorn silently ignores unknown names: a misspelt setting would never apply."""
    config = pytest.importorskip("gunicorn.config")
    settings = gunicorn_settings(monkeypatch)
    names = {
        name
        for name, value in settings.items()
        if not (name.startswith("_") or inspect.ismodule(value) or inspect.isclass(value))
    }
    assert names
    assert names - set(config.Config().settings) == set()


# --- RabbitMQ -------------------------------------------------------------------------------------


def test_exchanges():
    exchanges = {e["name"]: e for e in definitions()["exchanges"]}
    assert exchanges["portail.events"]["type"] == "topic"
    assert exchanges["portail.dlx"]["type"] == "direct"
    assert all(e["durable"] and not e["auto_delete"] for e in exchanges.values())


def test_every_queue_is_durable_and_quorum():
    assert queues()
    for name, queue in queues().items():
        assert queue["durable"] is True, name
        assert queue["auto_delete"] is False, name
        assert queue["arguments"]["x-queue-type"] == "quorum", name


def test_queue_names_are_known():
    expected = set()
    for svc in CONSUMING:
        main = f"{svc}.events"
        expected |= {main, f"{main}.dlq", *(f"{main}.retry.{n}" for n in (1, 2, 3))}
    assert set(queues()) == expected


@pytest.mark.parametrize("svc", CONSUMING)
def test_main_queue_dead_letters_to_its_dlq(svc):
    main = f"{svc}.events"
    args = queues()[main]["arguments"]
    assert args["x-dead-letter-exchange"] == "portail.dlx"
    assert args["x-dead-letter-routing-key"] == f"{main}.dlq"
    assert args["x-delivery-limit"] == 20
    assert f"{main}.dlq" in queues()
    assert bindings("portail.dlx", f"{main}.dlq") == {f"{main}.dlq"}


@pytest.mark.parametrize("svc", CONSUMING)
def test_retry_queues_return_to_the_main_queue(svc):
    main = f"{svc}.events"
    for n, ttl in enumerate(RETRY_TTLS, start=1):
        args = queues()[f"{main}.retry.{n}"]["arguments"]
        assert args["x-message-ttl"] == ttl
        assert args["x-dead-letter-exchange"] == ""
        assert args["x-dead-letter-routing-key"] == main
        assert not any(b["destination"] == f"{main}.retry.{n}" for b in definitions()["bindings"])


def test_every_binding_targets_a_declared_queue_and_exchange():
    exchanges = {e["name"] for e in definitions()["exchanges"]}
    for binding in definitions()["bindings"]:
        assert binding["source"] in exchanges
        assert binding["destination"] in queues()


def test_compose_amqp_credentials_match_the_definitions():
    url = urlsplit(compose_service("accounts-worker")["environment"]["AMQP_URL"])
    users = {user["name"]: user for user in definitions()["users"]}
    user = users[url.username]
    assert user["hashing_algorithm"] == "rabbit_password_hashing_sha256"
    raw = base64.b64decode(user["password_hash"])
    salt, digest = raw[:4], raw[4:]
    assert hashlib.sha256(salt + url.password.encode()).digest() == digest
    [permission] = [p for p in definitions()["permissions"] if p["user"] == url.username]
    assert permission["vhost"] == "/"
