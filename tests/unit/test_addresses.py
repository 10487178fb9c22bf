"""attack28a F3: the address checks of the settings (gamead_core.config.addresses) agree with the libraries that use
the addresses. What they accept, redis-py builds a connection for and nats-py reads as the host written; what they
refuse, the library refuses, fails every connection on, or reads as something else than what was written."""

from __future__ import annotations

import pytest
from nats.aio.client import Client as NATS
from redis.asyncio import connection as rc

from gamead_core.config import addresses
from gamead_core.telemetry import tracing


@pytest.mark.parametrize("url", [
    "redis://127.0.0.1:6379/0", "redis://:pw@valkey:6379/2", "rediss://u:pw@h/0?ssl_cert_reqs=none",
    "redis://h?db=3&client_name=gamead", "redis://[::1]:6379", "unix:///run/valkey.sock?db=1",
])
def test_a_redis_url_it_accepts_redis_py_connects_with(url: str) -> None:
    assert addresses.redis_url_problem(url) is None
    pool = rc.BlockingConnectionPool.from_url(url)
    pool.make_connection()  # builds the connection object: raises for an argument it does not take


def _redis_py_reading(url: str) -> str:
    """What redis-py makes of ``url``: its error, or the host, port and db it would use."""
    try:
        pool = rc.BlockingConnectionPool.from_url(url)
        pool.make_connection()
    except (ValueError, TypeError) as exc:
        return f"error: {exc}"
    kw = pool.connection_kwargs
    return f"{kw.get('host')}:{kw.get('port', 6379)}/{kw.get('db', 0)} timeout {kw.get('socket_timeout')}"


@pytest.mark.parametrize(("url", "problem", "redis_py"), [
    ("http://u:pw@127.0.0.1/0", "scheme must be redis://", "error: Redis URL must specify one of"),
    ("redis://:pw@127.0.0.1:notaport/0", "port is not a number", "error: Port could not be cast"),
    # port 0: redis-py ≤ 8.1 reads it as none (6379: another server), 8.2 keeps 0 (nothing listens there)
    ("redis://h:0/1", "port is 0", ("h:6379/1", "h:0/1")),
    ("redis://h:6379/cache", "path must be a database number", "h:6379/0"),  # the path ignored: db 0
    ("redis://h/0?foo=1", "no query parameter 'foo'", "error: AbstractConnection.__init__() got an unexpected"),
    ("redis://h/0?socket_timeout=30", "redis.socket_timeout", "h:6379/0 timeout 30.0"),  # the URL wins
])
def test_a_redis_url_it_refuses_redis_py_cannot_use_as_written(url: str, problem: str,
                                                               redis_py: str | tuple[str, ...]) -> None:
    found = addresses.redis_url_problem(url)
    assert found is not None and problem in found and "pw" not in found, found
    assert _redis_py_reading(url).startswith(redis_py), _redis_py_reading(url)  # str.startswith takes a tuple


@pytest.mark.parametrize(("url", "hosts"), [
    ("nats://127.0.0.1:4222", ["127.0.0.1"]), ("tls://u:pw@a:1,nats://b", ["a", "b"]), ("h1:4222, h2", ["h1", "h2"]),
    ("ws://a:8080,wss://b", ["a", "b"]), ("nats://[::1]:4222", ["::1"]),
])
def test_a_nats_url_it_accepts_nats_py_reads_as_written(url: str, hosts: list[str]) -> None:
    assert addresses.nats_url_problem(url) is None
    client = NATS()
    client._setup_server_pool([s.strip() for s in url.split(",")])  # what connect(servers=…) does first
    assert [srv.uri.hostname for srv in client._server_pool] == hosts


@pytest.mark.parametrize(("url", "problem", "nats_py"), [
    ("http://127.0.0.1:4222", "scheme must be nats://", "http"),  # read as a host named "http"
    ("nats://127.0.0.1:notaport", "port is not a number", "invalid connect url"),
    ("nats://h:99999", "port is not a number", "invalid connect url"),
    ("nats://:pw@/", "names no host", "invalid hostname"),
    ("nats://a:1,ws://b:2", "mixes websocket", "mixing of websocket"),
])
def test_a_nats_url_it_refuses_nats_py_cannot_use_as_written(url: str, problem: str, nats_py: str) -> None:
    found = addresses.nats_url_problem(url)
    assert found is not None and problem in found and "pw" not in found, found
    client = NATS()
    try:
        client._setup_server_pool([s.strip() for s in url.split(",")])
        reading = ",".join(str(srv.uri.hostname) for srv in client._server_pool)
    except Exception as exc:  # noqa: BLE001 - nats-py's own errors.Error
        reading = str(exc)
    assert nats_py in reading, reading


@pytest.mark.parametrize("url", [f"nats://{'a' * 64}:4222", f"nats://{'a' * 900_000}", f"redis://{'b.' * 130}c:6379/0",
                                 f"nats://ok:1,tls://{'x' * 70}.example:4222"])
def test_a_host_no_resolver_can_find_is_refused(url: str) -> None:
    """attack40a F8: a label over 63 characters (or a name over 253) passed, and the worker retried it for ever,
    while ``api.host`` refused the same value; Docker-style names (``my_nats``) still pass."""
    check = addresses.redis_url_problem if url.startswith("redis") else addresses.nats_url_problem
    assert "can never resolve" in (check(url) or ""), check(url)
    assert addresses.nats_url_problem("nats://my_nats:4222") is None
    assert addresses.nats_url_problem("[::1]:4222") is None


def test_an_empty_nats_url_is_unset_and_commas_alone_name_no_server() -> None:
    assert addresses.nats_url_problem("") is None
    assert "names no server" in (addresses.nats_url_problem(" , ") or "")


@pytest.mark.parametrize(("host", "ok"), [
    ("127.0.0.1", True), ("0.0.0.0", True), ("::", True), ("fe80::1%eth0", True), ("api.example.com", True),
    ("", False), ("x y", False), ("[::1]", False), ("0.0.0.0:8080", False), ("http://0.0.0.0", False),
    ("256.1.1.1", False), ("1.2.3.4.5", False), ("10.0.0", False), ("my-host.invalid", True), ("h1.2a", True),
])
def test_a_listen_address_is_an_ip_or_a_host_name_alone(host: str, ok: bool) -> None:
    assert (addresses.host_problem(host) is None) is ok, addresses.host_problem(host)


@pytest.mark.parametrize(("env", "refused"), [
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, None),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4318"}, "OTEL_EXPORTER_OTLP_ENDPOINT=collector:4318: not an http://"),
    ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://c:0/v1/traces"}, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT="),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, None),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:x", "OTEL_SDK_DISABLED": "true"}, None),  # tracing off
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:x", "OTEL_TRACES_EXPORTER": "console"}, None),  # not sent there
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c :4318"}, "OTEL_EXPORTER_OTLP_ENDPOINT=http://c :4318: the exporter"),
    ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318 "}, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=http://c:4318: the"),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": " http://c:4318"}, None),  # requests strips leading whitespace: it is sent
])
def test_an_otlp_endpoint_is_checked_only_where_spans_would_go(env: dict[str, str], refused: str | None) -> None:
    problem = tracing.tracing_env_problem(env)
    assert (problem is None) if refused is None else (problem is not None and problem.startswith(refused)), problem
