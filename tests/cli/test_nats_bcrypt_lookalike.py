"""A ``nats.password`` (or ``nats.token``) starting with ``$2`` for ``gamead up``'s embedded nats-server: the server
reads it as a bcrypt hash, so the plain secret every gamead process sends never matched and the stack failed with
an Authorization Violation. ``gamead up`` now refuses it before anything starts: one line naming the setting and
why, exit 5 (README: a configuration that cannot work)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gamead_core.embedded import EmbeddedNats
from gamead_core.errors import ConfigError
from tests.support import clean_env, run_gamead


@pytest.mark.parametrize(("setting", "env"), [
    ("nats.password", {"GAMEAD_NATS__USER": "u", "GAMEAD_NATS__PASSWORD": "$2a$11$plain-not-a-hash"}),
    ("nats.token", {"GAMEAD_NATS__TOKEN": "$2b$10$plain-not-a-hash"}),
])
def test_up_refuses_a_secret_nats_server_would_read_as_a_bcrypt_hash(
        tmp_path: Path, setting: str, env: dict[str, str]) -> None:
    done = run_gamead("up", "--workers", "0", "--port", "0", "--data-dir", str(tmp_path / "d"), cwd=tmp_path,
                      timeout=60, env=clean_env(**env))
    assert done.returncode == 5, (done.stdout, done.stderr)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert f"{setting} starts with $2" in lines[0] and "bcrypt" in lines[0], lines[0]
    assert "plain-not-a-hash" not in done.stderr + done.stdout
    assert not (tmp_path / "d").exists()  # nothing started: no data dir, no nats-server


def test_the_embedded_config_is_never_written_with_a_bcrypt_lookalike(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nats\.password starts with \$2"):
        EmbeddedNats(tmp_path, user="u", password="$2y$10$abc").prepare()
    assert not (tmp_path / "nats.conf").exists()
    EmbeddedNats(tmp_path, user="u", password="a$2y$10$abc").prepare()  # only a leading $2 is a hash
    assert '"a$2y$10$abc"' in (tmp_path / "nats.conf").read_text()
