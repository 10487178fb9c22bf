"""Misleading operator messages a reviewer met (brief small12 items 2 and 3), against a real API on its own NATS:

2. ``Purge 50 dead-lettered ad(s)? This cannot be undone`` and ``gamead doctor`` did not say which API they
   talk to: with ``GAMEAD_API_URL`` pointing at the wrong stack nothing on screen said so. Every confirmation
   prompt and doctor's header now name it (``API http://127.0.0.1:PORT``, one helper: ``options.api_named``).
3. A real purge (or replay) that matched nothing printed ``0 entries would be purged``, a dry run's words: it
   now says ``no entries matched: nothing purged``; a dry run keeps its wording.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from gamead_core.embedded import EmbeddedNats
from tests.forked_popen import GameadPopen
from tests.integration.dlq_lane import made_up_entry
from tests.support import clean_env, gamead_argv, run_gamead, start_api, wait_for

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


@pytest.fixture(scope="module")
def own_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An API (no worker) on a NATS of its own, its DLQ holding 3 imported entries of class PermanentError."""
    import httpx

    server = EmbeddedNats(tmp_path_factory.mktemp("nats-s12")).start()
    try:
        api, url = start_api(server.url, tmp_path_factory.mktemp("logs-s12"))
        try:
            with httpx.Client(base_url=url, timeout=30) as http:
                resp = http.post("/v1/dlq/import", json={"entries": [made_up_entry(f"Gone {n}") for n in range(3)]})
                assert resp.status_code == 202, resp.text
                job = resp.json()["id"]
                wait_for(lambda: http.get(f"/v1/jobs/{job}").json().get("state") == "succeeded", timeout=60,
                         what="the import")
            yield url
        finally:
            api.stop(timeout=10)
    finally:
        server.stop()


def gamead(*args: str, cwd: Path, api: str) -> subprocess.CompletedProcess[str]:
    """The real ``gamead`` (stdin no terminal), its API given as an operator's environment gives it
    (``GAMEAD_API_URL``)."""
    return run_gamead(*args, env=clean_env(GAMEAD_API_URL=api, COLUMNS="200"), cwd=cwd, timeout=120)


def answered_on_a_terminal(*args: str, answer: bytes, cwd: Path, api: str) -> subprocess.CompletedProcess[str]:
    """``gamead`` with a terminal (a pty) as stdin, ``answer`` typed there; stdout and stderr captured."""
    master, slave = os.openpty()
    try:
        with GameadPopen(gamead_argv(*args), env=clean_env(GAMEAD_API_URL=api, COLUMNS="200"), cwd=cwd,
                         stdin=slave, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
            os.write(master, answer)
            out, err = proc.communicate(timeout=120)
    finally:
        os.close(slave)
        os.close(master)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def _words(text: str) -> str:
    return " ".join(_ANSI.sub("", text).split())


@pytest.mark.parametrize("verb, question", [
    ("purge", "Purge 3 dead-lettered ad(s)? This cannot be undone"),
    ("replay", "Replay 3 dead-lettered ad(s)?"),
])
def test_a_confirmation_prompt_names_the_api(own_api: str, tmp_path: Path, verb: str, question: str) -> None:
    """On a terminal the question is asked after ``API <url> ·`` (answered no: exit 1, nothing done); without
    one, the refusal (exit 2) names it too."""
    asked = answered_on_a_terminal("dlq", verb, "--all", answer=b"n\n", cwd=tmp_path, api=own_api)
    assert asked.returncode == 1, asked.stdout + asked.stderr
    assert f"API {own_api} · {question} [y/N]" in _words(asked.stderr), asked.stderr
    refused = gamead("dlq", verb, "--all", cwd=tmp_path, api=own_api)
    assert refused.returncode == 2, refused.stderr
    assert f"API {own_api} · {question.rstrip('?')}" in _words(refused.stderr), refused.stderr
    assert gamead("dlq", "list", "-o", "json", cwd=tmp_path, api=own_api).stdout.count('"adId"') == 3


def test_doctors_header_names_the_api(own_api: str, tmp_path: Path) -> None:
    shown = gamead("doctor", "--settle", "0", cwd=tmp_path, api=own_api)
    first = _ANSI.sub("", shown.stdout).splitlines()[0]
    assert first.startswith(f"gamead doctor · API {own_api} · checked "), shown.stdout + shown.stderr


@pytest.mark.parametrize("verb, done", [("purge", "purged"), ("replay", "replayed")])
def test_a_real_purge_or_replay_that_matches_nothing_says_nothing_was_done(own_api: str, tmp_path: Path,
                                                                          verb: str, done: str) -> None:
    real = gamead("dlq", verb, "--error-class", "NoSuchClass", "--yes", cwd=tmp_path, api=own_api)
    assert real.returncode == 0, real.stderr
    # newcomer56: the filter named, as `dlq list` names it (before: "no entries matched: nothing purged")
    assert _words(real.stdout) == f"no DLQ entries match --error-class NoSuchClass: nothing {done}", real.stdout
    dry = gamead("dlq", verb, "--error-class", "NoSuchClass", "--dry-run", cwd=tmp_path, api=own_api)
    assert dry.returncode == 0 and _words(dry.stdout) == f"0 entries would be {done}", dry.stdout
    # and a script is not told it was a dry run either
    scripted = gamead("dlq", verb, "--error-class", "NoSuchClass", "--yes", "-o", "json", cwd=tmp_path, api=own_api)
    assert scripted.returncode == 0 and json.loads(scripted.stdout)["dryRun"] is False, scripted.stdout
