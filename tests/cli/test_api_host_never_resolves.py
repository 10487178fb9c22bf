"""attack55: ``--api http://a..b.com`` (an empty label), ``http://<300 a>.com`` (a label over 63) or the same in
``GAMEAD_API_URL`` was ``error: unexpected UnicodeError: encoding with 'idna' codec failed (UnicodeError: label
empty or too long)``, exit 1, at the first request; ``nats.url`` ``nats://a..b:4222`` was retried for ever. Every URL
gamead connects to takes one rule (:func:`gamead_core.config.addresses.unresolvable`): refused before any request,
exit 2 for the flag, 5 for a setting, naming it."""

from __future__ import annotations

from pathlib import Path

import pytest

from gamead_cli import exitcodes
from gamead_core.config import addresses
from gamead_core.config.local import api_url_problem
from tests.support import clean_env, one_error_line, run_gamead

HOSTS = ["a..b.com", ".a.com", "a" * 64 + ".com"]


@pytest.mark.parametrize("host", HOSTS, ids=["empty-label", "leading-dot", "label-64"])
def test_a_host_that_can_never_resolve_is_refused_by_every_url_rule(host: str) -> None:
    for problem in (api_url_problem(f"http://{host}:8080"), addresses.nats_url_problem(f"nats://{host}:4222"),
                    addresses.http_url_problem(f"https://{host}", "https://10.0.0.1:443")):
        assert problem is not None and "can never resolve" in problem, problem
    assert api_url_problem("http://api.example.com.:8080") is None  # a last dot is the root's
    assert api_url_problem("http://[::1]:8080") is None and api_url_problem("http://my_api:8080") is None


@pytest.mark.parametrize("host", HOSTS, ids=["empty-label", "leading-dot", "label-64"])
def test_the_flag_and_the_variable_say_it_in_one_line(tmp_path: Path, host: str) -> None:
    url = f"http://{host}:8080"
    flag = run_gamead("workers", "--api", url, env=clean_env(), cwd=tmp_path, timeout=60)
    assert flag.returncode == exitcodes.USAGE, flag.stderr  # was 1: unexpected UnicodeError
    assert "unexpected" not in one_error_line(flag, "error: --api: ", "can never resolve"), flag.stderr
    env = run_gamead("workers", env=clean_env(GAMEAD_API_URL=url), cwd=tmp_path, timeout=60)
    assert env.returncode == exitcodes.CONFIG, env.stderr
    assert "unexpected" not in one_error_line(env, "GAMEAD_API_URL", "can never resolve"), env.stderr
