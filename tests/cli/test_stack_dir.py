"""stack14 item 1: a CLI verb run where a ``gamead up`` runs (its ``.gamead/gamead-up.json``) talks to that stack.

Before, ``gamead doctor``, ``top --once``, ``ads list``, ``workers``, ``dlq list`` without ``--api`` went to
127.0.0.1:8080 even in the directory of a stack on port 18630: exit 3 there, or, worse, another stack's answers;
``config show`` said 8080. Now with no ``--api`` / GAMEAD_API_URL / ``client.api_url`` they use the API the stack
wrote in its gamead-up.json, also once stale (its ``up`` gone: attack41b F5). A real ``gamead up`` (no worker), stopped
by its PID."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from tests.support import clean_env, run_gamead, up_stack


def _gamead(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return run_gamead(*args, cwd=cwd, env=clean_env(**env), timeout=120)


@pytest.mark.timeout(300)
def test_verbs_run_in_a_stacks_directory_talk_to_that_stack_and_flags_env_and_config_still_win(
        tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, closed_api_url: str) -> None:
    up = up_stack(tmp_path, "--workers", "0", data_dir=tmp_path / ".gamead",  # cwd: tmp_path
                  GAMEAD_WORKER__MAX_ATTEMPTS="7")
    up.argv[up.argv.index("--data-dir") + 1] = ".gamead"  # relative, as an operator types it (attack25 finding 9)
    up.start()
    try:
        said = up.wait_ready()
        # every path it prints is absolute: its hints are for another terminal, maybe in another directory
        assert f"data in {up.data_dir}," in said and f"logs: {up.data_dir / 'logs'})" in said, said
        assert f"Processes running: {up.data_dir / 'gamead-up.json'}." in said, said
        state = json.loads((up.data_dir / "gamead-up.json").read_text())
        assert state["apiUrl"] == up.url and state["pid"] == up.pid
        for verb in (["workers"], ["ads", "list"], ["dlq", "list"], ["top", "--once"]):
            done = _gamead(tmp_path, *verb, "-o", "json")
            assert done.returncode == 0, (verb, done.stderr[-2000:])
            json.loads(done.stdout)
        # attack29a F9: a worker started here without nats.url names the command that joins this stack, the one
        # up printed (its NATS needs the stack's token), not "run `gamead up`"
        hinted = re.search(r"(\S*gamead worker --config \S+ --nats-url \S+)", said)
        assert hinted, said
        worker = _gamead(tmp_path, "worker")
        assert worker.returncode == 5 and "run `gamead up`" not in worker.stderr, worker.stderr
        assert f"join the gamead up running here with `{hinted[1]}`" in " ".join(worker.stderr.split()), worker.stderr
        doctor = _gamead(tmp_path, "doctor")  # its header names the API it asked
        assert doctor.returncode in (0, 1) and f"API {up.url}" in doctor.stdout, doctor.stdout + doctor.stderr
        shown = _gamead(tmp_path, "config", "show", "-o", "json")
        assert shown.returncode == 0, shown.stderr
        assert json.loads(shown.stdout)["client"]["api_url"] == up.url
        note = " ".join(shown.stderr.split())
        assert f"a gamead up (pid {up.pid}, API {up.url}) runs on .gamead" in note, note
        assert "config-in-force.yaml" in note and "not the stack's" in note
        # the hint it ends with shows what the stack's children run with, its start's GAMEAD_* and flags included
        # (an attack drill, session 23: the hinted `--config .gamead/config-in-force.yaml` showed neither)
        # (gamead as another terminal finds it, the absolute data dir: it works from anywhere)
        assert re.search(rf"The stack's: \S*gamead config show --stack --data-dir {re.escape(str(up.data_dir))}$",
                         note), note
        stack = _gamead(tmp_path, "config", "show", "--stack", "-o", "json",  # this shell's GAMEAD_* do not count
                        GAMEAD_WORKER__MAX_ATTEMPTS="9", gamead_worker__backoff_cap="7")
        assert stack.returncode == 0 and "note:" not in stack.stderr, stack.stderr
        children = json.loads(stack.stdout)
        assert children["worker"]["max_attempts"] == 7 and json.loads(shown.stdout)["worker"]["max_attempts"] == 5
        assert children["api"]["port"] == up.port and children["nats"]["url"].startswith("nats://127.0.0.1:")
        assert children["worker"]["backoff_cap"] == 60 and children["embedded"]["data_dir"] == str(up.data_dir)

        # an explicit choice wins over the stack of the directory: --api, GAMEAD_API_URL, client.api_url
        for args, env in (((("--api", closed_api_url)), {}), ((), {"GAMEAD_API_URL": closed_api_url})):
            done = _gamead(tmp_path, "workers", *args, **env)
            assert done.returncode == 3 and closed_api_url in done.stderr, done.stderr[-2000:]
        (tmp_path / "other.yaml").write_text(f"client: {{api_url: '{closed_api_url}'}}\n")
        done = _gamead(tmp_path, "ads", "list", "--config", "other.yaml")
        assert done.returncode == 3 and closed_api_url in done.stderr, done.stderr[-2000:]
        # no stack there nor above it (a subdirectory of tmp_path is the stack's: test_stack_dir_parent): the default
        elsewhere = tmp_path_factory.mktemp("elsewhere")
        assert json.loads(_gamead(elsewhere, "config", "show", "-o", "json").stdout)["client"]["api_url"] == \
            "http://127.0.0.1:8080"
        nothing = _gamead(elsewhere, "config", "show", "--stack")
        assert nothing.returncode == 2 and "no gamead up runs on .gamead" in nothing.stderr, nothing.stderr
        assert "here or in the nearest parent directory" in nothing.stderr  # newcomer57: it said ./.gamead only
        assert "Traceback" not in nothing.stderr
        # elsewhere, the stack is named by its data dir, as given to gamead up; its API is the one it serves
        named = _gamead(elsewhere, "config", "show", "--stack", "--data-dir", str(up.data_dir), "-o", "json")
        assert named.returncode == 0, named.stderr
        assert json.loads(named.stdout)["worker"]["max_attempts"] == 7
        assert json.loads(named.stdout)["client"]["api_url"] == up.url == children["client"]["api_url"]
        # words55 F4: a broken config.yaml where it is run was refused, though --stack shows the stack's own
        (elsewhere / "config.yaml").write_text("worker:\n  concurrency: abc\n")
        named = _gamead(elsewhere, "config", "show", "--stack", "--data-dir", str(up.data_dir), "-o", "json")
        assert named.returncode == 0 and json.loads(named.stdout)["worker"]["max_attempts"] == 7, named.stderr
        unnamed = _gamead(elsewhere, "config", "show", "--stack")  # it is read for embedded.data_dir: said so
        assert unnamed.returncode == 5 and unnamed.stderr.count("\n") == 1, unnamed.stderr
        assert "worker.concurrency (config file config.yaml, line 2)" in unnamed.stderr, unnamed.stderr
        assert ("(--stack reads this directory's configuration only for embedded.data_dir, where the stack runs: give "
                "--data-dir DIR to show the stack's without it)") in unnamed.stderr, unnamed.stderr
    finally:
        up.stop()
    assert not (up.data_dir / "stack-env.json").exists()  # it may hold secrets: not kept past the stack
    # its gamead-up.json stays, stale (its up is gone): a verb run here still talks to that stack's API and finds it
    # down, never to another stack on the default 8080 (attack41b F5: it fell back to 8080; without the fix,
    # config show says http://127.0.0.1:8080 and workers tries it)
    assert (up.data_dir / "gamead-up.json").is_file()
    shown = _gamead(tmp_path, "config", "show", "-o", "json")
    assert json.loads(shown.stdout)["client"]["api_url"] == up.url and "note:" not in shown.stderr
    down = _gamead(tmp_path, "workers")
    assert down.returncode == 3 and f"cannot reach the gamead API at {up.url}" in down.stderr, down.stderr[-2000:]
    assert "8080" not in down.stderr
    # and says where that URL came from (review41b: the operator never typed that port)
    assert "it is the apiUrl of .gamead/gamead-up.json, of a gamead up that is not running" in down.stderr
