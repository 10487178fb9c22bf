"""Which ``gamead up`` data directory a CLI verb run in a directory belongs to: found as git finds ``.git`` (left42).

A verb with no API named talks to the stack of ``embedded.data_dir`` (:func:`gamead_core.datadir.recorded_stack`).
Before left42 that was ``./.gamead`` of the working directory alone, so ``gamead workers`` run in a subdirectory of
a stack's directory went to ``http://127.0.0.1:8080``: another stack's API, or none. Now, when ``embedded.data_dir``
is the default (not set by a flag, a ``GAMEAD_*`` variable or the config file), the working directory and then each
parent is looked at for that name (``.gamead``), up to the file system's root, stopping at the first directory
that holds one, and never across a mount point (a parent on another device, as git without
``GIT_DISCOVERY_ACROSS_FILESYSTEM``). A ``.gamead`` found *above* the working directory that another user owns is
not used (git's "dubious ownership", ``safe.directory``): a planted ``/tmp/.gamead`` would otherwise send the verbs
of every user working under ``/tmp`` (and their bearer token) to an API of its choosing; nor one that is another
user's symlink, or leads to a directory others may write (:func:`usable_above`, attack42c F1). The working
directory's own ``.gamead`` is used as before, whoever owns it, but a ``gamead-up.json`` in it that another user
owns is not read (:func:`gamead_core.datadir.read_state`, attack42c F3). None found: the default, relative.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

__all__ = ["find_data_dir", "stack_data_dir", "usable_above"]


def stack_data_dir(embedded: object) -> Path:
    """The data directory of the stack a CLI verb run here belongs to: ``embedded.data_dir`` (an
    :class:`~gamead_core.config.local.EmbeddedSettings`) when it was set or is absolute, else
    :func:`find_data_dir` of its name from the working directory. Raises nothing."""
    data_dir = Path(embedded.data_dir)  # type: ignore[attr-defined]
    if "data_dir" in embedded.model_fields_set or data_dir.is_absolute():  # type: ignore[attr-defined]
        return data_dir
    return find_data_dir(data_dir)


def find_data_dir(name: Path, start: Path | None = None) -> Path:
    """``name`` (a relative path, ``.gamead``) in ``start`` (the working directory) or its nearest parent that has
    one, found as the module doc says; ``name`` itself (relative) when none is found or ``start`` cannot be read.
    A directory found in ``start`` is returned as ``name`` (relative, as before left42), one in a parent as an
    absolute path. Raises nothing."""
    try:
        here = Path(os.path.abspath(start if start is not None else Path.cwd()))
        device = os.stat(here).st_dev
    except OSError:  # the working directory was removed meanwhile
        return name
    for level, folder in enumerate((here, *here.parents)):
        try:
            info = os.stat(folder)
        except OSError:
            return name
        if info.st_dev != device:  # a mount point: the search stops below it, as git's
            return name
        candidate = folder / name
        try:
            os.lstat(candidate)
        except OSError:
            continue
        if level == 0:
            return name
        return candidate if usable_above(candidate) else name
    return name


def usable_above(candidate: Path) -> bool:
    """Whether ``candidate``, a ``.gamead`` found above the working directory, may be used: it is this user's (as
    git's "dubious ownership"), and so is what it leads to if it is a symlink (a link of ours to a disk elsewhere is
    fine), a directory no other user may write. attack42c F1: the check followed a link, so a symlink another user
    planted in a shared directory of ours (``/tmp/.gamead -> /tmp``, for root) passed it, and the
    ``gamead-up.json`` that user wrote in ``/tmp`` sent every verb run below it, and its token, to a port of
    theirs. Raises nothing."""
    try:
        itself, target = os.lstat(candidate), os.stat(candidate)
    except OSError:
        return False
    return itself.st_uid == target.st_uid == os.geteuid() and stat.S_ISDIR(target.st_mode) \
        and not target.st_mode & stat.S_IWOTH

