"""A small disk for the tests of a full one: a 16 MB tmpfs (root only; skipped otherwise) and a filler.

Shared by ``tests/integration/test_storage_full.py`` (a bare nats-server, the operator's restart) and
``tests/integration/test_up_disk_full.py`` (``gamead up``, which restarts its own)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 16 MB tmpfs mounted for this test (root only), unmounted at the end."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mnt)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.decode().strip() or 'not root'}); "
                    "the max_file_store test covers storage errors")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def fill_up(path: Path) -> None:
    """Append to ``path`` until the disk is full (ENOSPC)."""
    with open(path, "ab", buffering=0) as out:
        try:
            while out.write(b"\0" * 65536):
                pass
        except OSError:  # no space left on device
            pass
