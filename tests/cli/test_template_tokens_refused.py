"""attack39b F2 through the real ``gamead``: a secret still holding the manifests' template placeholder
(``REPLACE_ME``, manifests/base/secret.example.env) is refused by every command that loads the settings, before
anything starts: one ``error:`` line naming the setting, exit 5, never the secret.

Figure: before, a pod's environment from the template (``GAMEAD_NATS__TOKEN=REPLACE_ME_nats_token``, the
template's ``api-tokens`` as ``GAMEAD_AUTH__TOKENS``) passed ``gamead config show`` (exit 0), and ``gamead serve``
said only "auth required: tokens are configured": no word that its operator token is a public string."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from gamead_cli import exitcodes
from tests.support import clean_env, run_gamead

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
TEMPLATE = Path(__file__).resolve().parents[2] / "manifests" / "base" / "secret.example.env"
_VALUES = dict(line.partition("=")[::2] for line in TEMPLATE.read_text().splitlines() if line[:1].isalpha())
#: the environment a pod gets from Secret gamead-secrets built from the template (manifests/base/api.yaml)
POD_ENV = {"GAMEAD_NATS__TOKEN": _VALUES["nats-token"], "GAMEAD_AUTH__TOKENS": _VALUES["api-tokens"]}
PUBLIC = ("REPLACE_ME_nats_token", "REPLACE_ME_operator_token", "REPLACE_ME_submitter_token")


def _one_refusal(done: subprocess.CompletedProcess[str], *named: str) -> None:
    stdout, stderr, code = done.stdout, done.stderr, done.returncode
    assert code == exitcodes.CONFIG == 5, (code, stdout, stderr)
    lines = _ANSI.sub("", stderr).strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: invalid configuration: "), stderr
    assert "still holds REPLACE_ME" in lines[0]
    for setting in named:
        assert setting in lines[0], lines[0]
    assert not [s for s in PUBLIC if s in stdout + stderr] and "Traceback" not in stderr


@pytest.mark.parametrize(("env", "named"), [
    (POD_ENV, ("nats.token (GAMEAD_NATS__TOKEN)", "auth.tokens.0.token (GAMEAD_AUTH__TOKENS)",
               "the token of 'ops'", "auth.tokens.1.token", "the token of 'ingest'")),
    ({"GAMEAD_NATS__USER": "gamead", "GAMEAD_NATS__PASSWORD": "x-REPLACE_ME-later"},
     ("nats.password (GAMEAD_NATS__PASSWORD)",)),
    ({"GAMEAD_TOKEN": "REPLACE_ME_operator_token"}, ("client.token (GAMEAD_TOKEN)",)),
])
def test_config_show_refuses_the_templates_placeholders(tmp_path: Path, env: dict[str, str],
                                                        named: tuple[str, ...]) -> None:
    _one_refusal(run_gamead("config", "show", env=clean_env(**env), cwd=tmp_path, timeout=60), *named)


@pytest.mark.parametrize("argv", [
    ("serve", "--port", "0", "--host", "0.0.0.0", "--nats-url", "nats://127.0.0.1:9"),
    ("worker", "--nats-url", "nats://127.0.0.1:9"),
    ("up", "--workers", "1", "--port", "0"),
])
def test_every_role_refuses_a_pod_environment_from_the_template(tmp_path: Path, argv: tuple[str, ...]) -> None:
    """No NATS is needed: the refusal comes first, and ``up`` leaves no stack directory behind."""
    extra = ("--data-dir", str(tmp_path / "d")) if argv[0] == "up" else ()
    done = run_gamead(*argv, *extra, env=clean_env(**POD_ENV), cwd=tmp_path, timeout=60)
    _one_refusal(done, "nats.token (GAMEAD_NATS__TOKEN)", "auth.tokens.0.token (GAMEAD_AUTH__TOKENS)")
    assert not (tmp_path / "d").exists()


def test_a_token_of_ones_own_is_served_as_before(tmp_path: Path) -> None:
    """Only the marker is refused: the template's shape with real secrets loads (exit 0), masked."""
    env = {"GAMEAD_NATS__TOKEN": "8f2c1e9a7b3d4f60a1c2e3d4b5a69788",
           "GAMEAD_AUTH__TOKENS": '[{"name":"ops","token":"3c9e1f7a2b8d4e60f1a2c3d4e5b69788","role":"operator"}]'}
    done = run_gamead("config", "show", env=clean_env(**env), cwd=tmp_path, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "3c9e1f7a2b8d" not in done.stdout and "8f2c1e9a7b3d" not in done.stdout
