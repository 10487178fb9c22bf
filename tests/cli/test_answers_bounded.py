"""attack36 F3-F5: the CLI reads an API's answer bounded in bytes and time, checks its shape, and says what is wrong
in one line, exit 3 ("--api is not a gamead API" / "no answer came"), for every read verb.

The APIs here are real HTTP servers on loopback (a thread of this process each) answering what a broken proxy, a
stub or another service at ``--api`` would: an endless body, a body a byte at a time, JSON of another shape, JSON
nested 200,000 deep. Figures, before the fix (attack36): ``gamead workers`` on the endless body killed at 3.07 GB
RSS after 30 s, no line; on the trickle still waiting after 60 s; the wrong shape ``unexpected AttributeError``
(exit 1), ``scale status`` exit 0; the deep JSON ``unexpected RecursionError`` (exit 1); ``GAMEAD_API`` of 60,000
nested ``[`` ``unexpected RecursionError`` (exit 1).
"""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.support import clean_env, gamead_peak_rss, one_error_line, run_gamead

AD_ID = "01kbzzzzzzzzzzzzzzzzzzzzzz"
#: every GET of the fake: JSON, but no gamead answer's shape (attack36's garbage.py ``json``)
WRONG_SHAPE = b'{"items": "nope", "queue": [1,2], "workers": 5, "levels": null, "error": 7}'
DEEP = b"[" * 200_000 + b"]" * 200_000


class _Fake(BaseHTTPRequestHandler):
    """Answers every GET as ``server.mode`` says (endless, trickle, wrong shape, deep)."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def _json(self, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        mode, stop = self.server.mode, self.server.stop  # type: ignore[attr-defined]
        try:
            if mode == "shape":
                self._json(WRONG_SHAPE)
            elif mode == "deep":
                self._json(DEEP)
            elif mode == "endless":  # chunked 64 KiB spaces until the client goes away
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                chunk = b"10000\r\n" + b" " * 65536 + b"\r\n"
                while not stop.is_set():
                    self.wfile.write(chunk)
            elif mode == "trickle":  # Content-Length 100,000, one byte each 0.2 s (5.5 h in all)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "100000")
                self.end_headers()
                for _ in range(100_000):
                    if stop.wait(0.2):
                        break
                    self.wfile.write(b" ")
                    self.wfile.flush()
        except OSError:  # the CLI closed the connection: what it should do
            pass
        self.close_connection = True


@pytest.fixture
def fake_api() -> Iterator[Callable[[str], str]]:
    """``start(mode) -> url``: a fake API on a free loopback port, served by a thread; all stopped at the end."""
    servers: list[ThreadingHTTPServer] = []

    def start(mode: str) -> str:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Fake)
        server.daemon_threads = True
        server.mode, server.stop = mode, threading.Event()  # type: ignore[attr-defined]
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.stop.set()  # type: ignore[attr-defined]
        server.shutdown()
        server.server_close()




def _gamead(tmp_path: Path, *args: str, timeout: float = 60, **env: str) -> subprocess.CompletedProcess[str]:
    return run_gamead(*args, env=clean_env(**env), cwd=tmp_path, timeout=timeout, errors="replace")


READ_VERBS = [("workers",), ("ads", "list"), ("dlq", "list"), ("ads", "get", AD_ID), ("top", "--once"),
              ("scale", "status"), ("doctor",), ("audit",), ("dlq", "jobs")]


@pytest.mark.parametrize("verb", READ_VERBS, ids=" ".join)
def test_an_answer_of_another_shape_is_exit_3_naming_it(fake_api: Callable[[str], str], tmp_path: Path,
                                                        verb: tuple[str, ...]) -> None:
    """Before: top --once, workers, ads list, ads get "unexpected AttributeError", dlq list "unexpected KeyError"
    (exit 1), scale status exit 0 printing a status of nothing."""
    url = fake_api("shape")
    result = _gamead(tmp_path, *verb, "--api", url)
    assert result.returncode == 3, result.stdout + result.stderr
    one_error_line(result, f"the API at {url} answered GET /", "with something that is not")


@pytest.mark.parametrize("verb", [("workers",), ("ads", "get", AD_ID), ("scale", "status")], ids=" ".join)
def test_json_nested_too_deeply_is_exit_3(fake_api: Callable[[str], str], tmp_path: Path,
                                          verb: tuple[str, ...]) -> None:
    """Before: "unexpected RecursionError: maximum recursion depth exceeded while decoding a JSON array", exit 1."""
    url = fake_api("deep")
    result = _gamead(tmp_path, *verb, "--api", url)
    assert result.returncode == 3, result.stdout + result.stderr
    one_error_line(result, url, "JSON nested too deeply")


def test_an_endless_answer_is_cut_at_the_bound_in_bounded_memory(fake_api: Callable[[str], str],
                                                                 tmp_path: Path) -> None:
    """Before: ``gamead workers`` on an endless 200 grew to 3.07 GB in 30 s and said nothing. Now it reads at most
    ``client.max_answer_bytes`` (64 MiB) and stops: its RSS, read from /proc while it runs, stays far below what
    the body would make it (here under 400 MiB while the server would send without end)."""
    url = fake_api("endless")
    peak, result = gamead_peak_rss(tmp_path, "workers", "--api", url, limit_kib=400 * 1024, give_up=120)
    assert peak <= 400 * 1024, f"RSS reached {peak // 1024} MiB reading an endless answer"
    assert result.returncode == 3, result.stdout + result.stderr
    one_error_line(result, f"the gamead API at {url} answered GET /v1/workers with more than 64 MiB "
                   "(client.max_answer_bytes)")


def test_an_answer_a_byte_at_a_time_is_given_up_at_its_deadline(fake_api: Callable[[str], str],
                                                                tmp_path: Path) -> None:
    """Before: ``gamead workers`` on a 100,000-byte body sent a byte each 0.5 s was still waiting after 60 s (the
    timeout bounds each read, and a read gets a byte). Now the whole answer must come within 3 × client.timeout."""
    url = fake_api("trickle")
    result = _gamead(tmp_path, "workers", "--api", url, timeout=90, GAMEAD_CLIENT__TIMEOUT="1")
    assert result.returncode == 3, result.stdout + result.stderr
    one_error_line(result, f"the gamead API at {url} answered GET /v1/workers with an answer not whole after 3s",
                   "a read: nothing was changed")


@pytest.mark.parametrize(("name", "value"), [
    ("GAMEAD_API", "[" * 60_000 + "]" * 60_000),
    ("GAMEAD_AUTH", '{"tokens": ' + "[" * 60_000 + "]" * 60_000 + "}"),
], ids=["GAMEAD_API", "GAMEAD_AUTH"])
def test_a_variable_nested_too_deeply_is_exit_5_naming_it(tmp_path: Path, name: str, value: str) -> None:
    """Before: ``gamead config show`` "unexpected RecursionError", exit 1."""
    result = _gamead(tmp_path, "config", "show", **{name: value})
    assert result.returncode == 5, result.stdout + result.stderr
    one_error_line(result, f"{name} (too deep) is not valid JSON")
