"""The CLI goes through the proxy the environment names (regress37 F3).

With client37's deadline transport given to httpx, httpx set up no proxy from the environment: `HTTP_PROXY=…
gamead workers --api http://127.0.0.1:17080` connected to the API directly and the proxy saw nothing (before
client37: `GET http://127.0.0.1:17080/v1/workers` at the proxy). An operator who reaches the API only through a
proxy was cut off. Now the transport forwards through it (within the same deadline), and ``NO_PROXY`` still skips it.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support import clean_env, run_gamead


class _Proxy(http.server.BaseHTTPRequestHandler):
    seen: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        type(self).seen.append(f"{self.command} {self.path}")
        body = b'{"error": {"code": "bad_gateway", "message": "the test proxy forwards nothing"}}'
        self.send_response(502)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def proxy() -> Iterator[tuple[str, list[str]]]:
    seen: list[str] = []
    handler = type("Proxy", (_Proxy,), {"seen": seen})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def _env(proxy_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in clean_env().items() if k.lower() not in ("http_proxy", "https_proxy", "all_proxy",
                                                                    "no_proxy")}
    env.update(HTTP_PROXY=proxy_url, GAMEAD_CLIENT__TIMEOUT="2", GAMEAD_CLIENT__RETRY_FOR="0", **extra)
    return env


def test_the_cli_asks_the_environments_proxy(proxy: tuple[str, list[str]], tmp_path: Path,
                                              closed_port: Callable[[], int]) -> None:
    url, seen = proxy
    api = f"http://127.0.0.1:{closed_port()}"  # nothing listens: only the proxy can answer
    result = run_gamead("workers", "--api", api, env=_env(url), cwd=tmp_path, timeout=60)
    assert seen == [f"GET {api}/v1/workers"], (seen, result.stderr)  # before: [] (connected directly)
    assert "502" in result.stderr and "Traceback" not in result.stderr, result.stderr


def test_no_proxy_skips_it(proxy: tuple[str, list[str]], tmp_path: Path, closed_port: Callable[[], int]) -> None:
    url, seen = proxy
    api = f"http://127.0.0.1:{closed_port()}"
    result = run_gamead("workers", "--api", api, env=_env(url, NO_PROXY="127.0.0.1"), cwd=tmp_path, timeout=60)
    assert seen == [], seen
    assert result.returncode == 3 and "Traceback" not in result.stderr, result.stderr  # unreachable, directly


def test_a_proxy_that_refuses_is_named(tmp_path: Path, closed_port: Callable[[], int]) -> None:
    """A dead proxy read "cannot reach the gamead API at … (connection refused)": the refusal was the proxy's."""
    dead = f"http://127.0.0.1:{closed_port()}"
    result = run_gamead("workers", "--api", f"http://127.0.0.1:{closed_port()}", env=_env(dead), cwd=tmp_path,
                        timeout=60)
    assert result.returncode == 3, result.stderr
    assert f"through the proxy {dead} the environment names" in result.stderr, result.stderr


def test_a_socks_proxy_is_one_line_and_exit_5(tmp_path: Path, closed_port: Callable[[], int]) -> None:
    env = _env("", ALL_PROXY="socks5://127.0.0.1:1")
    del env["HTTP_PROXY"]
    result = run_gamead("workers", "--api", f"http://127.0.0.1:{closed_port()}", env=env, cwd=tmp_path, timeout=60)
    assert result.returncode == 5, result.stderr
    assert "socks5:// proxy" in result.stderr and "NO_PROXY" in result.stderr and "Traceback" not in result.stderr
