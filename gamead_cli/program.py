"""How a printed hint names ``gamead``, so that it runs as printed (README: every command gamead prints works
verbatim): the gamead on the ``PATH``, else this one's absolute path (``make up`` does not put the venv on it)."""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path


def gamead_program() -> str:
    """How another terminal runs this very ``gamead``: ``gamead`` when the ``PATH`` finds it (an active venv, a
    pipx install), else its absolute path (``/home/me/gamead/.venv/bin/gamead`` after ``make up``), so a hint
    works verbatim where the venv is not active, from any directory."""
    import shutil

    ours = Path(sys.executable).parent / "gamead"  # the console script installed beside this interpreter
    if not ours.is_file():
        return "gamead"
    found = shutil.which("gamead")
    if found and os.path.realpath(found) == os.path.realpath(ours):
        return "gamead"
    return str(ours.absolute())


def follow_up(*words: str, again: str = "") -> str:
    """The one form of every command a hint prints (README: it works verbatim, pasted into another terminal in
    another directory): this ``gamead`` as another terminal runs it (:func:`gamead_program`), ``words`` (the verb
    and its arguments, each shell-quoted where needed: ``ads``, ``get``, an id), then ``again``, the context flags
    that reach the same API and configuration (:func:`gamead_cli.options.reach_again`: `` --api URL --config
    PATH``). Pure but for the ``PATH`` lookup. The caller prints it unwrapped
    (:func:`gamead_cli.formats.command_text`)."""
    return " ".join([gamead_program(), *(shlex.quote(w) for w in words)]) + again

