"""review30b F10: ``gamead dlq import`` keeps a private copy of its input in ``$TMPDIR`` (read again for the
validation and the import). A regular file over the 256 MiB bound is refused by its size before anything is copied
(it was copied and parsed up to the bound first), and a copy that cannot be written names the directory, exit 1
(it said "unexpected OSError: [Errno 28] No space left on device", and, had the write failed while FILE was
being read, "FILE cannot be read (No space left on device)", exit 2: blaming the user's file).

The copy's directory is made to refuse writes two ways: a 64 KiB tmpfs (full after 64 KiB; only where this test
may mount one) and a 64 KiB file size limit (``RLIMIT_FSIZE``: the kernel refuses a write past it, ``EFBIG``).
A fresh interpreter each time: ``tempfile`` reads ``TMPDIR`` once per process."""

from __future__ import annotations

import json
import os
import resource
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from gamead_cli import exitcodes
from gamead_cli.commands.dlq_transfer import MAX_IMPORT_BYTES
from tests.cli.test_cli_errors import one_red_line
from tests.forked_popen import gamead_run
from tests.integration.dlq_lane import made_up_entry
from tests.support import clean_env, gamead_argv

COPY_ROOM = 64 * 1024


def _import(file: str, api: str, cwd: Path, tmpdir: Path, *, stdin: Path | None = None,
            limit: int | None = None) -> subprocess.CompletedProcess[str]:
    def limited() -> None:
        if limit is not None:  # writes to a regular file past it fail (Python ignores SIGXFSZ): EFBIG
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    with (stdin.open("rb") if stdin is not None else open(os.devnull, "rb")) as source:
        return gamead_run(gamead_argv("dlq", "import", file, "--api", api), env=clean_env(TMPDIR=str(tmpdir)),
                          cwd=cwd, stdin=source, capture_output=True, text=True, timeout=120,
                          preexec_fn=limited, errors="replace")


def _entries(path: Path, count: int) -> Path:
    path.write_text("".join(json.dumps(made_up_entry(f"Copied {i}")) + "\n" for i in range(count)))
    return path


@pytest.mark.parametrize("given", ["FILE", "stdin"])
def test_a_regular_file_over_the_bound_is_refused_by_its_size_before_it_is_copied(
        tmp_path: Path, closed_api_url: str, given: str) -> None:
    """A valid line, then a hole up to one byte past the bound: refused by its size (before: read and copied line
    by line until the hole's first 48 KiB made line 2 too long)."""
    path = _entries(tmp_path / "big.jsonl", 1)
    os.truncate(path, MAX_IMPORT_BYTES + 1)
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    if given == "FILE":
        result = _import("big.jsonl", closed_api_url, tmp_path, tmpdir)
    else:
        result = _import("-", closed_api_url, tmp_path, tmpdir, stdin=path)
    assert result.returncode == exitcodes.USAGE, result.stderr
    name = "big.jsonl" if given == "FILE" else "stdin"
    one_red_line(result, f"{name}: larger than 256 MiB ({MAX_IMPORT_BYTES + 1:,} bytes); split it")


@pytest.fixture
def full_tmpdir(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs: where the copy runs out of room. Skipped where this test cannot mount one."""
    where = tmp_path / "small-tmp"
    where.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={COPY_ROOM}", "tmpfs", str(where)],
                             capture_output=True, text=True, timeout=30, check=False) if os.geteuid() == 0 else None
    if mounted is None or mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({mounted.stderr.strip() if mounted else 'not root'})")
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], capture_output=True, timeout=30, check=False)


def _tmpfs(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, int | None, str]:
    return request.getfixturevalue("full_tmpdir"), None, "No space left on device"


def _fsize(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, int | None, str]:
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    return tmpdir, COPY_ROOM, "File too large"


ROOMLESS: dict[str, Callable[[pytest.FixtureRequest, Path], tuple[Path, int | None, str]]] = {
    "full-tmpfs": _tmpfs, "file-size-limit": _fsize}


@pytest.mark.parametrize("given", ["FILE", "stdin"])
@pytest.mark.parametrize("roomless", list(ROOMLESS))
def test_a_private_copy_that_cannot_be_written_names_its_directory_not_the_file(
        request: pytest.FixtureRequest, tmp_path: Path, closed_api_url: str, roomless: str, given: str) -> None:
    path = _entries(tmp_path / "dead.jsonl", 400)
    assert path.stat().st_size > 2 * COPY_ROOM
    tmpdir, limit, why = ROOMLESS[roomless](request, tmp_path)
    if given == "FILE":
        result = _import("dead.jsonl", closed_api_url, tmp_path, tmpdir, limit=limit)
    else:
        result = _import("-", closed_api_url, tmp_path, tmpdir, stdin=path, limit=limit)
    assert result.returncode == exitcodes.ERROR, result.stderr  # not bad input: the file is fine
    name = "dead.jsonl" if given == "FILE" else "stdin"
    line = one_red_line(result, f"cannot keep a private copy of {name} in {tmpdir}: {why}; set TMPDIR to a "
                                "directory with room for it (up to 256 MiB)")
    assert "cannot be read" not in line  # nothing blames the file; and no request went out (the API is closed)
