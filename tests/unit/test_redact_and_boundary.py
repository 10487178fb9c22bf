"""Pure: credentials are masked in URLs; the NATS error boundary maps every nats-py error, even those without
an ``err_code`` (nats-py's ``KeyNotFoundError`` has none)."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import nats.errors
import nats.js.errors
import pytest

from gamead_core.errors import QueueFull, QueueUnavailable
from gamead_core.queue.connection import nats_boundary, translate
from gamead_core.redact import redact_url


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("nats://user:PW@host:4222", "nats://user:***@host:4222"),
        ("nats://TOKEN@host:4222", "nats://***@host:4222"),
        ("redis://:PW@valkey:6379/0", "redis://:***@valkey:6379/0"),
        ("nats://a:4222,nats://u:PW@b:4222", "nats://a:4222,nats://u:***@b:4222"),
        ("nats://host:4222", "nats://host:4222"),
        ("rediss://valkey:6379/0?password=PW&socket_timeout=5", "rediss://valkey:6379/0?password=***&socket_timeout=5"),
        ("redis://valkey/0?ssl_keyfile=/k.pem&ssl_password=PW", "redis://valkey/0?ssl_keyfile=/k.pem&ssl_password=***"),
        # review41 F3: a comma in the password (redis-py takes it) split the URL as a server list and the rest was
        # shown whole; a parameter name redis-py decodes (p%61ssword is password) was not taken for a secret
        ("redis://:S3,PW@valkey:6379/0", "redis://:***@valkey:6379/0"),
        ("rediss://valkey:6379/0?password=S3,PW&db=2", "rediss://valkey:6379/0?password=***&db=2"),
        ("rediss://valkey:6379/0?p%61ssword=PW&ssl_p%61ssword=PW",
         "rediss://valkey:6379/0?p%61ssword=***&ssl_p%61ssword=***"),
        ("nats://u:PW@a:4222, nats://u:PW@b:4222", "nats://u:***@a:4222,nats://u:***@b:4222"),
        (None, None),
    ],
)
def test_credentials_in_urls_are_masked(url: str | None, shown: str | None) -> None:
    assert redact_url(url) == shown
    assert "PW" not in (redact_url(url) or "") and "TOKEN" not in (redact_url(url) or "")


@pytest.mark.parametrize(
    "exc",
    [
        nats.js.errors.KeyNotFoundError(),
        nats.js.errors.NotFoundError(),
        nats.js.errors.ServiceUnavailableError(),
        nats.errors.TimeoutError(),
        nats.errors.ConnectionClosedError(),
        asyncio.TimeoutError(),
    ],
)
def test_translate_never_raises_itself(exc: BaseException) -> None:
    assert isinstance(translate(exc), Exception)


def test_boundary_maps_nats_errors_and_passes_others() -> None:
    with pytest.raises(QueueUnavailable) as caught, nats_boundary():
        raise nats.errors.NoServersError()
    assert isinstance(caught.value.__cause__, nats.errors.NoServersError)
    with pytest.raises(QueueFull), nats_boundary():
        raise nats.js.errors.APIError(code=400, err_code=10077, description="maximum messages exceeded")
    with pytest.raises(KeyError), nats_boundary():
        raise KeyError("not ours")


#: crafted texts of 100,000 characters on which the masking patterns backtracked quadratically (review41 F3)
CRAFTED = ('"@ x://" + "b" * 100_000', '"@ " + "b" * 100_000 + " x://"', '"x://h/a=b" + "?" * 100_000',
           '"x://h/=?" + "pass" * 25_000', '"x:1 " + "a." * 50_000')


def test_masking_a_long_crafted_text_ends_at_once() -> None:
    """review41 F3: every log line and error message goes through ``redact_text`` (in the event loop), and status
    texts through ``without_servers``. Their patterns tried a start at every letter of a run and scanned the rest of
    it: 20,000 characters cost 3.3 s (a run after ``@ x://``), 2.8 s (a run, then a URL), 10 s (``?`` after ``a=b``,
    the query rule), 0.7 s (``?passpass…``, attack40a F1's rule), 7.8 s (``a.`` repeated, ``without_servers``);
    100,000 characters, 25 times that. Now each pattern starts only where its run starts and takes it whole: the
    five texts below, both functions, end in a child process well within its 30 s deadline (~50 ms each here;
    without the fix the child is stopped at the deadline)."""
    code = ("from gamead_core.redact import redact_text, without_servers\n"
            f"for text in ({', '.join(CRAFTED)}):\n"
            "    redact_text(text), without_servers(text)\n")
    subprocess.run([sys.executable, "-c", code], timeout=30, check=True)
