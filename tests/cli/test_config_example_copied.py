"""``config.yaml.example`` copied to ``config.yaml`` beside a running ``gamead up`` (newcomer55 F2).

A new operator followed the README: ``make up``, then ``cp config.yaml.example config.yaml`` and ``make up`` again.
Every verb run there then said ``cannot reach the gamead API at http://127.0.0.1:8080 (connection refused) — is
`gamead up` … running?`` while it ran: the example set ``client.api_url: http://127.0.0.1:8080``, and a URL the
config file names wins over the stack's (README, "Which API a command talks to": only with none set is the stack
used, "so a verb run in a stack's directory never talks silently to another stack on 8080" — with a stack of
another directory on 8080, it would have). ``embedded.data_dir: .gamead`` did the same to a verb run in a
subdirectory (a data dir set is looked for in the working directory only). The example leaves both unset."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from gamead_cli.options import client_settings_from

ROOT = Path(__file__).resolve().parents[2]
STACK = "http://127.0.0.1:23456"  #: the apiUrl the stack's gamead-up.json records (no request is sent)


@pytest.mark.parametrize("where", [".", "sub/dir"])
def test_the_example_copied_leaves_the_verbs_on_the_stack_running_here(
        isolated_env: Path, monkeypatch: pytest.MonkeyPatch, where: str) -> None:
    shutil.copy(ROOT / "config.yaml.example", isolated_env / "config.yaml")
    (isolated_env / ".gamead").mkdir()
    (isolated_env / ".gamead" / "gamead-up.json").write_text(json.dumps({"pid": os.getpid(), "apiUrl": STACK}))
    (isolated_env / where).mkdir(parents=True, exist_ok=True)
    monkeypatch.chdir(isolated_env / where)
    config = isolated_env / "config.yaml"  # as ./config.yaml in the stack's directory, --config from below it
    url = client_settings_from(None if where == "." else config, None, talks=False).client.api_url
    assert url == STACK, f"the copied example sent the verbs to {url}, not to the stack running here"
