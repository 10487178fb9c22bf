"""left42 item 4: a CLI verb run in a SUBDIRECTORY of a ``gamead up`` stack's directory talks to that stack.

Before, only the working directory's ``./.gamead/gamead-up.json`` was read (gamead_core.datadir.recorded_stack of
``embedded.data_dir`` as given), so ``gamead workers`` run in ``STACK/src`` went to the default
``http://127.0.0.1:8080`` (another stack's API, or none). Now the directory is found as git finds ``.git``
(gamead_core.datadir_find): the nearest ``.gamead`` upwards wins, one owned by another user above the working
directory is not used, and a data dir named explicitly is never searched for. The stack here is a stale
gamead-up.json (its ``up`` gone: attack41b F5), whose API port is closed: the verb names that URL and that file
(test_stack_dir runs a real ``gamead up`` in the directory itself)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.support import clean_env, run_gamead

_DEFAULT = "http://127.0.0.1:8080"


def _stack(root: Path, url: str) -> Path:
    """A stopped stack's ``root/.gamead/gamead-up.json`` naming ``url``; returns the file."""
    (root / ".gamead").mkdir()
    state = root / ".gamead" / "gamead-up.json"
    state.write_text(json.dumps({"pid": 999_999_999, "apiUrl": url, "started": []}))
    return state


def _api_url(cwd: Path, **env: str) -> str:
    done = run_gamead("config", "show", "-o", "json", cwd=cwd, env=clean_env(**env))
    assert done.returncode == 0, done.stderr
    return str(json.loads(done.stdout)["client"]["api_url"])


def test_a_verb_in_a_subdirectory_talks_to_the_stack_above(tmp_path: Path, closed_api_url: str) -> None:
    """Without the fix (options.py of d7ed5250): from STACK/src/deep, ``workers`` tried 8080 ("cannot reach the
    gamead API at http://127.0.0.1:8080", or another stack's answer) and ``config show`` said 8080; with it, the
    stack's URL, and the error names the file it came from."""
    state = _stack(tmp_path, closed_api_url)
    deep = tmp_path / "src" / "deep"
    deep.mkdir(parents=True)
    assert _api_url(deep) == closed_api_url
    done = run_gamead("workers", cwd=deep, env=clean_env(GAMEAD_CLIENT__TIMEOUT="2"))
    said = " ".join(done.stderr.split())
    assert done.returncode == 3 and f"cannot reach the gamead API at {closed_api_url}" in said, said
    assert f"it is the apiUrl of {state}, of a gamead up that is not running" in said, said
    assert "8080" not in said and "Traceback" not in said
    # an explicit choice still wins: the API named, or a data dir named (never searched for)
    assert _api_url(deep, GAMEAD_API_URL="http://127.0.0.1:9") == "http://127.0.0.1:9"
    assert _api_url(deep, GAMEAD_EMBEDDED__DATA_DIR=".gamead") == _DEFAULT


def test_the_nearest_data_dir_wins_and_the_search_stops_there(tmp_path: Path, closed_api_url: str) -> None:
    """As git stops at the first ``.git``: a ``.gamead`` of STACK/inner (no stack recorded in it) is the one of
    STACK/inner/x, so its verbs use the default, not STACK's stack. (A guard of the walk's end: it passes without
    the fix too, and fails for a walk that does not stop at the first ``.gamead``.)"""
    _stack(tmp_path, closed_api_url)
    inner = tmp_path / "inner"
    (inner / ".gamead").mkdir(parents=True)
    (inner / "x").mkdir()
    assert _api_url(inner / "x") == _DEFAULT
    assert _api_url(tmp_path / "inner" / ".gamead") == _DEFAULT  # inside it: the walk finds none above it first
    assert _api_url(tmp_path) == closed_api_url  # the directory itself: as before


@pytest.mark.skipif(os.geteuid() != 0, reason="making a directory another user's needs root")
def test_a_data_dir_above_owned_by_another_user_is_not_used(tmp_path: Path, closed_api_url: str) -> None:
    """git's "dubious ownership": a ``.gamead`` planted in a shared parent (``/tmp/.gamead``) by another user would
    send every verb run below it, and its token, to the API it names. Not used above the working directory; used
    in it, as before left42. (A guard: passes without the fix, fails for a walk that ignores ownership.)"""
    _stack(tmp_path, closed_api_url)
    os.chown(tmp_path / ".gamead", 4242, 4242)
    (tmp_path / "sub").mkdir()
    assert _api_url(tmp_path / "sub") == _DEFAULT
    assert _api_url(tmp_path) == closed_api_url


def test_the_help_says_a_parent_directory_stack_is_the_default() -> None:
    """review42b F5: left42 taught the verbs to find the stack of a parent directory, but ``--api``'s help still
    said its default was the ``gamead up`` "running on ./.gamead" alone, and ``config show --data-dir``'s
    "default ./.gamead". Without the fix 'nearest parent' is in neither help page (1 failed); with it, both."""
    for argv in (("workers", "--help"), ("config", "show", "--help")):
        done = run_gamead(*argv, env=clean_env(COLUMNS="400"))
        assert done.returncode == 0, done.stderr
        assert "nearest parent" in " ".join(done.stdout.split()), argv
