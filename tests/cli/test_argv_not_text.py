"""attack30c F3 (second half) / F8: under an ASCII locale with UTF-8 mode off, a non-ASCII flag value reaches Python
as lone surrogates (PEP 383) that no request can carry: `submit --title "Drachen König"` ended in "unexpected
UnicodeEncodeError", exit 1. Now bad usage, exit 2, naming the flag and what to do; a path stays usable."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import typer

from gamead_cli import exitcodes
from gamead_cli.argv_text import holder_of, unencodable_flag
from gamead_cli.command_table import load_command
from gamead_cli.main import app
from tests.cli.test_cli_errors import one_red_line
from tests.support import clean_env, run_gamead

KOENIG = b"Drachen K\xc3\xb6nig"  # UTF-8 bytes: not text under LC_ALL=C with UTF-8 mode off


def _ascii_locale(*args: bytes | str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in clean_env(LC_ALL="C", PYTHONUTF8="0").items() if k not in ("LANG", "LC_CTYPE")}
    argv = [os.fsencode(sys.executable), b"-m", b"gamead_cli", *(a if isinstance(a, bytes) else a.encode() for a in args)]
    return subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, errors="replace",
                          stdin=subprocess.DEVNULL, timeout=60)


def test_a_title_that_is_not_text_in_the_locale_is_bad_usage_naming_the_flag(tmp_path: Path,
                                                                             closed_api_url: str) -> None:
    result = _ascii_locale("submit", "--title", KOENIG, "--genre", "RPG", "-q", "--api", closed_api_url, cwd=tmp_path)
    assert result.returncode == exitcodes.USAGE, result.stderr  # refused before any request: not 3
    one_red_line(result, "--title", "not text in this locale's encoding", "UTF-8 locale")


def test_a_text_flag_of_another_verb_is_refused_the_same_way(tmp_path: Path, closed_api_url: str) -> None:
    result = _ascii_locale("dlq", "list", b"--message=" + KOENIG, "--api", closed_api_url, cwd=tmp_path)
    assert result.returncode == exitcodes.USAGE, result.stderr
    one_red_line(result, "--message", "not text in this locale's encoding")


def test_a_path_that_is_not_text_is_left_to_its_command() -> None:
    root = typer.main.get_command(app)
    name = KOENIG.decode("ascii", "surrogateescape")  # what Python makes of the bytes under such a locale
    assert unencodable_flag(root, ["submit", "--config", name, "--title", "x"], load_command) is None
    assert unencodable_flag(root, ["submit", "--wait", name], load_command) is None  # FILE after a flag
    assert unencodable_flag(root, ["top", f"--record={name}"], load_command) is None
    assert unencodable_flag(root, ["submit", "-a", name], load_command) == "-a"
    assert holder_of(["ads", "get", name], name[-3:]) == "the argument 'Drachen K\\xc3\\xb6nig'"  # as typed


def _utf8_locale(*args: bytes | str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``gamead <args>`` under the runner's (UTF-8) locale: forked by the fork server (:func:`run_gamead`), each
    byte argument as the interpreter decodes it (``os.fsdecode``: a byte that is no UTF-8 becomes a lone
    surrogate, PEP 383). A fresh interpreter each took ~0.5 CPU-s: the last test's six, ~3.4 CPU-s, outlasted the
    120 s timeout at load 40-65 on 2 cores (flake56)."""
    return run_gamead(*(os.fsdecode(a) if isinstance(a, bytes) else a for a in args), env=clean_env(), cwd=cwd,
                      errors="replace")


def test_a_byte_that_is_no_text_is_named_as_typed_in_every_error(tmp_path: Path, closed_api_url: str) -> None:
    """probe49 F8: `gamead workers quiet $'\\xff'` said `Invalid value for ID: '\\udcff'` (Python's surrogate
    escape, PEP 383): a character nobody typed. Every error line echoing a command-line value (an id, a command's
    name, under -o json the document too, a value under an ASCII locale) now writes the byte as typed, ``\\xff``."""
    api = ["--api", closed_api_url]
    cases = [(["workers", "quiet", b"a\xffb", *api], "ID: 'a\\xffb'"), (["ads", "get", b"\xff", *api], "'\\xff' is"),
             ([b"\xff"], "No such command '\\xff'"), (["dlq", "jobs", b"\xfe", *api], "JOB: '\\xfe'")]
    for argv, said in cases:
        result = _utf8_locale(*argv, cwd=tmp_path)
        assert result.returncode == exitcodes.USAGE, result.stderr
        assert "\\udc" not in one_red_line(result, said)
    as_json = _utf8_locale("dlq", "jobs", b"\xff", "-o", "json", *api, cwd=tmp_path)
    assert "JOB: '\\xff'" in json.loads(as_json.stdout)["error"]["message"], as_json.stdout
    koenig = _ascii_locale("ads", "get", KOENIG, *api, cwd=tmp_path)
    one_red_line(koenig, "'Drachen K\\xc3\\xb6nig'")
