"""The configuration every child of ``gamead up`` runs with: the settings in force copied to the data dir
(``config-in-force.yaml``), the children's ``GAMEAD_*`` environment (and its copy for ``gamead config show
--stack``), and the embedded nats-server's credentials."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

from gamead_cli.options import config_named
from gamead_core.config import GameadSettings


def child_env(settings: GameadSettings, nats_url: str) -> dict[str, str]:
    env = dict(os.environ)
    env["GAMEAD_NATS__URL"] = nats_url
    # unused by the children (embedded.* is up's own), but `config show --stack` then names the stack's data dir
    env["GAMEAD_EMBEDDED__DATA_DIR"] = str(settings.embedded.data_dir)
    env["GAMEAD_API__HOST"] = settings.api.host
    env["GAMEAD_API__PORT"] = str(settings.api.port)
    return env


def nats_credentials(settings: GameadSettings) -> dict[str, str | None]:
    """The credentials the embedded nats-server requires: those of ``nats``
    (:func:`gamead_core.nats_auth.stack_credentials`)."""
    nats = settings.nats
    return {"token": nats.token.get_secret_value() if nats.token else None, "user": nats.user,
            "password": nats.password.get_secret_value() if nats.password else None}


#: the settings in force that every child of ``gamead up`` reads (``GAMEAD_CONFIG``), and its printed worker command
CONFIG_SNAPSHOT = "config-in-force.yaml"


def snapshot_config(path: Path | None, settings: GameadSettings, data_dir: Path) -> Path:
    """Write the settings ``gamead up`` runs with (``settings``: from the config file ``path``, None if there was
    none, the ``GAMEAD_*`` variables and its flags) that differ from the defaults
    (:func:`gamead_core.config.differing_dump`) to ``<data_dir>/config-in-force.yaml`` and return its absolute
    path, which every child is pointed at (``GAMEAD_CONFIG``): a child restarted or started later runs with the
    configuration of ``up``'s start, never with an edited ``./config.yaml``, nor with one created meanwhile; and
    the ``gamead worker --config …`` it prints runs as they do from another terminal, where none of the stack's
    ``GAMEAD_*`` is set (attack25 finding 2: a file of ``{}`` ran a worker with 1 partition against 3). Written
    (owner-only: it holds secrets) to a temporary file renamed over it. Raises :class:`ConfigError` (exit 5)
    if it cannot be written."""
    import yaml

    from gamead_core.config import differing_dump

    source = config_named(path, "no config file")
    head = (f"# the settings gamead up started with ({source}, GAMEAD_* variables, flags) that differ from the "
            "defaults;\n# every child reads this file: edit the config file and restart gamead up instead\n")
    text = head + yaml.safe_dump(differing_dump(settings), sort_keys=False, allow_unicode=True)
    snapshot = data_dir / CONFIG_SNAPSHOT
    _write_private(snapshot, text.encode())
    return snapshot.resolve()


def snapshot_env(env: dict[str, str], data_dir: Path) -> None:
    """Write the ``GAMEAD_*`` variables every child of ``gamead up`` is started with (``env``: the children's
    environment; its flags travel as such variables, e.g. ``GAMEAD_API__PORT``, ``GAMEAD_NATS__URL``) to
    ``<data_dir>/`` :data:`gamead_core.datadir.STACK_ENV_FILE`, for ``gamead config show --stack``. Owner-only, as
    the config copy: a variable may hold a secret."""
    from gamead_core.datadir import STACK_ENV_FILE

    ours = {k: v for k, v in sorted(env.items()) if k.upper().startswith("GAMEAD_")}  # as pydantic-settings reads
    _write_private(data_dir / STACK_ENV_FILE, (json.dumps(ours, indent=2) + "\n").encode())


def forget_env(data_dir: Path) -> None:
    """Remove what :func:`snapshot_env` wrote, if anything: at ``gamead up``'s start (an earlier run's) and end."""
    from gamead_core.datadir import STACK_ENV_FILE

    with contextlib.suppress(FileNotFoundError):
        (data_dir / STACK_ENV_FILE).unlink()


def _write_private(path: Path, data: bytes) -> None:
    """``data`` into ``path`` (a file of the data dir), owner-only whatever the umask (it may hold tokens and
    passwords: nats.url, auth.tokens), through a temporary file renamed over it: never half-written. Raises
    :class:`ConfigError` (exit 5) naming ``--data-dir`` when it cannot be written (a full disk)."""
    from gamead_core.datadir import data_dir_unusable

    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.unlink(missing_ok=True)  # an older .tmp left by a killed start would keep its mode through O_CREAT
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)  # owner-only before a byte
        with os.fdopen(fd, "wb") as out:
            os.fchmod(out.fileno(), 0o600)  # whatever the umask
            out.write(data)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):  # a half-written copy (its secrets too) never left (attack56 F3)
            tmp.unlink(missing_ok=True)
        raise data_dir_unusable(path.parent, exc) from None
