"""Auth on (task C5 item 4): every role may ask who it is; a method a path lacks is 405 with ``Allow`` for every
role that may use the path at all (403 only for a role that may use none of its methods; 401 without a token);
the hints ``gamead up`` prints say how to pass the token and then run verbatim."""

from __future__ import annotations

import json
import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gamead_cli.commands.up_console import next_commands
from gamead_core.api.auth import may_use_path, route_class
from gamead_core.embedded import EmbeddedNats
from tests import forked_shell
from tests.support import Proc, clean_env, start_api

def gamead() -> str:
    """The venv's ``gamead`` as the lines run it, each run forked by the fork server (``tests/forked_shell.py``): 12
    runs of ~0.5 CPU-s of interpreter start and imports each took the last test here past 120 s at load 35-45."""
    return shlex.quote(str(forked_shell.shell_bin() / "gamead"))


TOKENS = {"op": ("c5-operator-token", "operator"), "wall": ("c5-viewer-token", "viewer"),
          "ci": ("c5-submitter-token", "submitter")}


@pytest.fixture(scope="module")
def auth_api(nats_server: EmbeddedNats, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tokens = json.dumps([{"name": n, "token": t, "role": r} for n, (t, r) in TOKENS.items()])
    proc: Proc
    proc, url = start_api(nats_server.url, tmp_path_factory.mktemp("c5-auth"), GAMEAD_AUTH__TOKENS=tokens)
    yield url
    proc.stop()


def call(url: str, method: str, path: str, who: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {TOKENS[who][0]}"} if who else {}
    return httpx.request(method, url + path, headers=headers, timeout=10)


@pytest.mark.parametrize("who", ["ci", "wall", "op"])
def test_every_role_may_ask_who_it_is(auth_api: str, who: str) -> None:
    answer = call(auth_api, "GET", "/v1/whoami", who)
    assert answer.status_code == 200, answer.text  # was: 403 for the submitter, though the README lists it
    assert (answer.json()["name"], answer.json()["role"]) == (who, TOKENS[who][1])
    assert answer.json()["mayAct"] is (who == "op")
    assert call(auth_api, "GET", "/v1/whoami", None).status_code == 401


@pytest.mark.parametrize("who", ["ci", "wall", "op"])
def test_a_method_the_path_lacks_is_405_for_every_role_that_may_use_the_path(auth_api: str, who: str) -> None:
    answer = call(auth_api, "PUT", "/ads", who)
    assert answer.status_code == 405, answer.text  # was: 403 "may not PUT /ads" for the viewer
    assert set(answer.headers["Allow"].replace(" ", "").split(",")) >= {"GET", "POST"}
    assert call(auth_api, "DELETE", "/v1/whoami", who).status_code == 405  # every role may GET it


def test_403_stays_for_a_role_that_may_use_none_of_the_paths_methods_and_401_without_a_token(auth_api: str) -> None:
    assert call(auth_api, "PUT", "/ads", None).status_code == 401  # no token: 401 before anything else
    assert call(auth_api, "PUT", "/v1/stats", "ci").status_code == 403  # a submitter may not use /v1/stats
    assert call(auth_api, "GET", "/v1/stats", "ci").status_code == 403
    refused = call(auth_api, "POST", "/v1/dlq/replay", "wall")  # a routed write: the role decides
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
    assert call(auth_api, "PUT", "/v1/stats", "wall").status_code == 405


def test_may_use_path_is_the_grant_table_over_the_paths_methods() -> None:
    assert may_use_path("viewer", frozenset({"GET", "POST"}), route_class("/ads"))
    assert may_use_path("submitter", frozenset({"GET"}), route_class("/v1/whoami"))
    assert not may_use_path("submitter", frozenset({"GET", "HEAD"}), route_class("/v1/stats"))
    assert not may_use_path(None, frozenset({"GET"}), route_class("/ads"))


def test_up_hints_with_auth_on_say_how_to_pass_the_token_and_run_verbatim(auth_api: str, tmp_path: Path) -> None:
    hints = next_commands(auth_api, "gamead", auth=True)
    assert hints[0].startswith("# auth is on: first export GAMEAD_TOKEN=")
    assert not any(token in line for line in hints for token, _ in TOKENS.values())  # never a secret
    curl = hints[-1]
    assert curl.startswith('curl -s -H "Authorization: Bearer $GAMEAD_TOKEN" ')
    env = clean_env(GAMEAD_TOKEN=TOKENS["op"][0])
    for line in (hints[0], curl, next(h for h in hints if h.startswith("gamead ads list"))):
        command = line.replace("gamead ", f"{gamead()} ", 1) if line.startswith("gamead ") else line
        done = subprocess.run(["bash", "-c", command], capture_output=True, text=True, env=env, timeout=60,
                              cwd=tmp_path)
        assert done.returncode == 0, (line, done.stderr)
        assert "unauthenticated" not in done.stdout + done.stderr, line  # was: 401 for the curl line
    assert "items" in json.loads(subprocess.run(["bash", "-c", curl], capture_output=True, text=True, env=env,
                                                timeout=30).stdout)
    assert not next_commands(auth_api, "gamead")[-1].count("Authorization")  # auth off: as before


def test_up_hints_with_auth_on_name_what_each_role_runs_and_it_does(auth_api: str, tmp_path: Path) -> None:
    """The note names each role's lines (a viewer's too: it named an operator's and a submitter's alone); with
    that role's token, the lines it names run and the others are refused."""
    hints = next_commands(auth_api, "gamead", auth=True)
    note = hints[0]
    labels = {"the submits": "gamead submit --count", "ads list": "gamead ads list", "top": "gamead top",
              "scale status": "gamead scale status", "curl": "curl"}
    for who, (token, role) in TOKENS.items():
        said = note.split(f"a{'n' if role == 'operator' else ''} {role}'s ", 1)[1].split(";")[0].rstrip(")")
        for label, start in labels.items():
            line = next(h for h in hints if h.startswith(start))
            named = said.startswith("runs every line") or label in said
            if line.startswith("gamead top"):
                line += " --once"  # the TUI, once: its panels' reads are the token's to do
            command = line.replace("gamead ", f"{gamead()} ", 1).replace("--count 100", "--count 2")
            done = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=60, cwd=tmp_path,
                                  env=clean_env(GAMEAD_TOKEN=token))
            refused = done.returncode != 0 or '"forbidden"' in done.stdout
            assert refused != named, (role, said, line, done.returncode, done.stdout[-300:], done.stderr[-300:])
