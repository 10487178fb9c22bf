"""whichapi43 (after attack43a F3): a verb run where nothing chose the API URL (no ``--api``, GAMEAD_API_URL,
``client.api_url`` in the config, nor a ``gamead up`` stack in the working directory or above) talks to the built-in
default, http://127.0.0.1:8080, whichever process holds it (another user's stack, another checkout's), and its table
read as this directory's. Now the resolution of the URL (:func:`gamead_cli.options.client_settings_from`) says so once,
one dim line on stderr before the output, ``· API http://127.0.0.1:8080: the default (…) — whichever process holds
that port``, and the red line of an unreachable default names it too; never on stdout, never when a source chose the
URL; and said when the first request goes out, so a refusal of the input before it stays one red line alone. Without
the fix: the note is absent (test 1: 0 lines of 1; test 3: 0 of 1; the red line said only ``is `gamead up` or
`gamead serve` running?``): 2 of 3 tests fail (now: say_source absent, collection error); with it 3 of 3 pass.
A verb run against a real API on the default port is not possible here (the port may be taken on this machine),
hence the resolution in process and one CLI run where the port is whatever it is.

left44 (attack43c F1): the red line repeated the note's ~110-character parenthetical right under it; once the note is
said it refers to it (``— it is the default, said above: is …``), said whole only if the note was not. Without the
fix (api_errors.py of 41f8bf05): tests 1 and 3 fail (the red line carries the parenthetical a second time)."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import httpx
import pytest

from gamead_cli.api_errors import say_source, unreachable
from gamead_cli.options import client_settings_from
from tests.support import clean_env, run_gamead

DEFAULT = "http://127.0.0.1:8080"
NOTE = f"· API {DEFAULT}: the default (no --api, GAMEAD_API_URL, client.api_url in the config, nor a gamead up " \
       "stack here or above) — whichever process holds that port"
#: the red line of an unreachable default once the note said it (attack43c F1: it said the note's 110 characters again)
SAID = (f"cannot reach the gamead API at {DEFAULT} (connection refused) — it is the default, said above: is "
        "`gamead up` or `gamead serve` running? Set --api or GAMEAD_API_URL.")


def test_the_resolution_says_the_default_once_and_its_red_line_names_it(
        isolated_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = client_settings_from(None, None)
    assert settings.client.api_url == DEFAULT and capsys.readouterr() == ("", "")  # nothing sent yet: nothing said
    refused = unreachable(DEFAULT, httpx.ConnectError("[Errno 111] Connection refused"), 10.0)
    assert str(refused).startswith(f"cannot reach the gamead API at {DEFAULT} (connection refused) — it is the "
                                   "default (no --api, GAMEAD_API_URL, client.api_url in the config, nor a gamead "
                                   "up stack here or above): is `gamead up`"), str(refused)  # not said: said whole
    say_source()  # as the client does before each request
    say_source()
    out, err = capsys.readouterr()
    assert out == "" and " ".join(err.split()) == NOTE, err  # once
    refused = unreachable(DEFAULT, httpx.ConnectError("[Errno 111] Connection refused"), 10.0)
    assert str(refused) == SAID, str(refused)  # the note said it: the red line refers to it (attack43c F1)
    # config show reads the URL but sends nothing: it says nothing of it
    client_settings_from(None, None, talks=False)
    say_source()
    assert capsys.readouterr() == ("", "")


def test_a_url_any_source_chose_is_not_called_the_default(
        isolated_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Tests and scripts that name the API see nothing new: --api, GAMEAD_API_URL, the config's client.api_url —
    the default's own URL among them, named on purpose."""
    client_settings_from(None, None)  # the default, then a command naming it: the later one decides
    assert client_settings_from(None, DEFAULT).client.api_url == DEFAULT
    (isolated_env / "other.yaml").write_text(f"client: {{api_url: '{DEFAULT}'}}\n")
    assert client_settings_from(isolated_env / "other.yaml", None).client.api_url == DEFAULT
    monkeypatch.setenv("GAMEAD_API_URL", DEFAULT)
    assert client_settings_from(None, None).client.api_url == DEFAULT
    say_source()
    assert capsys.readouterr() == ("", "")


def test_a_later_resolution_naming_the_url_drops_the_default_from_its_red_line(isolated_env: Path) -> None:
    """review44 F4: a new resolution decides afresh (``unsaid_forgotten``), but the red line's source of the URL
    (``_SOURCES``) was kept: in one process, the default resolved, then ``--api http://127.0.0.1:8080`` named on
    purpose, an unreachable API's red line still said "it is the default (no --api, …)". Without the fix: that
    text in the line; with it, the plain hint. In process: the port itself is not touched."""
    client_settings_from(None, None)
    client_settings_from(None, DEFAULT)
    refused = str(unreachable(DEFAULT, httpx.ConnectError("[Errno 111] Connection refused"), 10.0))
    assert "the default" not in refused and refused.endswith("is `gamead up` or `gamead serve` running? Set --api "
                                                             "or GAMEAD_API_URL."), refused


def _refused(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(2)
        return sock.connect_ex(("127.0.0.1", port)) != 0


def test_a_verb_run_where_nothing_chose_the_api_says_so_on_stderr_alone(tmp_path: Path, closed_api_url: str) -> None:
    """``gamead ads list -o json`` from an empty directory, GAMEAD_* unset: the note once on stderr, first, stdout
    the JSON document alone; where nothing listens on 8080, exit 3 and a red line (and the JSON error) naming the
    default. With GAMEAD_API_URL set: one red line, no note."""
    free = _refused(8080)
    done = run_gamead("ads", "list", "-o", "json", cwd=tmp_path, env=clean_env(COLUMNS="400"), timeout=120)
    lines = done.stderr.splitlines()
    assert lines.count(NOTE) == 1 and lines[0] == NOTE, done.stderr[-2000:]  # once, before anything else it says
    assert NOTE not in done.stdout and "Traceback" not in done.stderr
    answer = json.loads(done.stdout)  # stdout is the JSON document alone: an API's answer or the error's
    if free and _refused(8080):  # nothing there before nor after: this run found nothing either
        assert done.returncode == 3, done.stdout[-2000:]
        assert answer["error"]["message"] == SAID, answer
        assert len(lines) == 2 and lines[1] == f"error: {SAID}", lines  # the note's parenthetical once, not twice
    chosen = run_gamead("ads", "list", "-o", "json", cwd=tmp_path,
                        env=clean_env(COLUMNS="400", GAMEAD_API_URL=closed_api_url), timeout=120)
    assert chosen.returncode == 3 and chosen.stderr.count("\n") == 1, chosen.stderr[-2000:]
    assert "the default" not in chosen.stderr and f"cannot reach the gamead API at {closed_api_url}" in chosen.stderr
