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


@pytest.mark.skipif(os.geteuid() != 0, reason="planting as another user needs root")
def test_a_planted_symlink_above_is_not_taken_for_our_data_dir(tmp_path: Path, closed_api_url: str) -> None:
    """attack42c F1: the ownership check above followed a symlink. In a shared directory this user owns and others
    may write (``/tmp`` for root: ``shared`` here, mode 1777), another user (uid 4242) plants ``shared/.gamead ->
    .`` (a symlink to the shared directory itself, ours) and ``shared/gamead-up.json`` naming a loopback port it
    listens on: from ``shared/work`` every verb, with its bearer token, went there (``config show`` said the planted
    URL); and ``shared/.gamead -> OURS/.gamead`` (another stack of ours) sent them to the wrong stack. Now a
    ``.gamead`` above the working directory counts only as a real directory (not a link), ours, that others cannot
    write. Without the fix: the planted URL (1 failed); with it the default."""
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o1777)
    shared.chmod(0o1777)
    planted = shared / "gamead-up.json"
    planted.write_text(json.dumps({"pid": 1, "apiUrl": closed_api_url, "started": []}))
    os.chown(planted, 4242, 4242)
    link = shared / ".gamead"
    link.symlink_to(".")
    os.lchown(link, 4242, 4242)
    (shared / "work").mkdir()
    assert _api_url(shared / "work") == _DEFAULT
    # a link to a stack of ours elsewhere: not that stack either
    (tmp_path / "ours").mkdir()
    _stack(tmp_path / "ours", closed_api_url)
    link.unlink()
    link.symlink_to(tmp_path / "ours" / ".gamead")
    os.lchown(link, 4242, 4242)
    assert _api_url(shared / "work") == _DEFAULT
    # a real directory of ours that anyone may write into (its gamead-up.json anyone's): not used above either
    link.unlink()
    link.mkdir()
    link.chmod(0o777)
    (link / "gamead-up.json").write_text(planted.read_text())
    assert _api_url(shared / "work") == _DEFAULT


@pytest.mark.skipif(os.geteuid() != 0, reason="planting as another user needs root")
def test_a_state_file_another_user_owns_is_not_read_even_here(tmp_path: Path, closed_api_url: str) -> None:
    """attack42c F3: root running a verb in a shared directory (``/tmp``) where another user ran ``gamead up`` (or
    planted its ``.gamead/gamead-up.json``) sent it, token and all, to the loopback port that file names. Now a
    ``gamead-up.json`` another user owns is not read, in the working directory too: the default. Without the fix
    (datadir.py of b4a3dcac): the planted URL."""
    state = _stack(tmp_path, closed_api_url)
    os.chown(state, 4242, 4242)
    assert _api_url(tmp_path) == _DEFAULT
    os.chown(state, os.geteuid(), os.getegid())  # ours again: used, as before
    assert _api_url(tmp_path) == closed_api_url


def test_the_help_says_a_parent_directory_stack_is_the_default() -> None:
    """review42b F5: left42 taught the verbs to find the stack of a parent directory, but ``--api``'s help still
    said its default was the ``gamead up`` "running on ./.gamead" alone, and ``config show --data-dir``'s
    "default ./.gamead". Without the fix 'nearest parent' is in neither help page (1 failed); with it, both."""
    for argv in (("workers", "--help"), ("config", "show", "--help")):
        done = run_gamead(*argv, env=clean_env(COLUMNS="400"))
        assert done.returncode == 0, done.stderr
        assert "nearest parent" in " ".join(done.stdout.split()), argv
