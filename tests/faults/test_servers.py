"""The stand-in for a server restart where a private server cannot be started: a TCP proxy in
front of the shared server that cuts every connection and refuses new ones, then lets them in
again (the shared server itself is never touched)."""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy.engine import make_url

from tests.faults.servers import CuttingProxy

pytestmark = [pytest.mark.services, pytest.mark.timeout(60)]


def test_the_cutting_proxy_cuts_refuses_and_restores(pg_server):
    url = make_url(pg_server)
    proxy = CuttingProxy(url.host or "127.0.0.1", url.port or 5432)
    proxy.start()
    through = url.set(drivername="postgresql", port=proxy.port).render_as_string(
        hide_password=False)
    try:
        conn = psycopg.connect(through, autocommit=True, connect_timeout=5)
        assert conn.execute("SELECT 1").fetchone() == (1,)
        proxy.cut()
        with pytest.raises(psycopg.OperationalError):
            conn.execute("SELECT 1")  # the open connection is gone
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(through, connect_timeout=2)  # and new ones are refused
        proxy.restore()
        with psycopg.connect(through, autocommit=True, connect_timeout=5) as again:
            assert again.execute("SELECT 1").fetchone() == (1,)
    finally:
        proxy.destroy()
