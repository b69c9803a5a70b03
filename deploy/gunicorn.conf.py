"""Gunicorn settings for every web process (`portail serve <name>`).

One file for all of them: what differs between processes and environments comes from the
environment (PORT, WEB_CONCURRENCY, GUNICORN_THREADS, FORWARDED_ALLOW_IPS, LOG_LEVEL).
"""

import math
import os
import sys
from pathlib import Path


def _available_cpus() -> int:
    """CPUs this process may really use.

    os.cpu_count() reports the host's CPUs, which inside a container limited to one CPU on a
    large node would start far too many workers; honour the affinity mask and the cgroup v2
    quota (what a Kubernetes CPU limit or `docker run --cpus` sets) instead.
    """
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()
        if quota != "max":
            cpus = min(cpus, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return cpus


# Inside a container every web process listens on 8000 (PORT); `portail up` sets the local
# port of each process (see deploy/Procfile).
bind = [f"0.0.0.0:{os.environ.get('PORT') or '8000'}"]

# The classic 2 * cores + 1, capped: in production replicas scale out through the
# HorizontalPodAutoscaler, not through more workers per pod, and every worker holds its own
# database pool, so an uncapped count on a big node would exhaust PostgreSQL connections.
workers = int(os.environ.get("WEB_CONCURRENCY") or min(2 * _available_cpus() + 1, 8))

# Threads let one worker overlap requests that wait on the database or on another service
# (checkout waits for billing's payment URL, the gateway waits on every upstream).
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS") or 4)
# The gateway only waits: on the services, and on itself (a portal page calls the API through
# it while the page's own request holds a thread). It gets more threads (GATEWAY_THREADS), and
# gateway/upstreams.py lets one upstream hold at most half of them, so one hung service or a
# few page views never take them all.
if any(arg.startswith("gateway.") for arg in sys.argv):
    threads = int(os.environ.get("GATEWAY_THREADS") or 32)

# With gthread the timeout is the arbiter's watchdog on a stuck worker, not a request deadline
# (the gateway's UPSTREAM_TIMEOUT is); 30 s is well above any request we expect.
timeout = 30
# Below Kubernetes' terminationGracePeriodSeconds (30 s, of which 5 s go to the preStop sleep),
# so in-flight requests finish before the kubelet sends SIGKILL.
graceful_timeout = 20
# Keep-alive between the gateway's pooled sessions (or the ingress) and this process.
keepalive = 5

# Recycle workers now and then to bound the effect of any slow leak; the jitter keeps all the
# workers of a pod from restarting at the same moment.
max_requests = 2000
max_requests_jitter = 200

# The worker heartbeat file goes to tmpfs: /tmp may be a slow overlay or, with a read-only root
# filesystem, only an emptyDir; /dev/shm is always memory-backed in a container.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None

# Logs to stdout/stderr, where the container runtime collects them.
accesslog = "-"
errorlog = "-"
loglevel = (os.environ.get("LOG_LEVEL") or "info").lower()

# Trust X-Forwarded-* only from the proxies in front of us. Inside the cluster or the compose
# network that is the ingress controller or the gateway, whose addresses are not fixed, so the
# deployments set "*"; the default trusts only a proxy on the same host.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS") or "127.0.0.1,::1"

# gunicorn >= 25.1 opens a control socket (for `gunicornc`) under $HOME by default; the image's
# user has no writable home, the web processes of `portail up` would all share one path, and
# scaling is the autoscaler's job, so it stays off.
control_socket_disable = True

# Each worker imports and builds its app after the fork: SQLAlchemy pools, kombu connections
# and the structlog/prometheus state must not be shared across forked processes.
preload_app = False


def child_exit(server, worker):
    """Drop a dead worker's metric files when prometheus-client runs in multiprocess mode."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
