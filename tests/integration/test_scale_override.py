"""Concurrent operators on the scale override, against two real API nodes and a real nats-server (reviewer V10,
N7): `gamead scale set 1`, `2`, `3`, `4` and `gamead scale clear` at once all said they succeeded, yet an
override of 4 stood. The override is now a compare-and-set on its KV revision: an answer of success means the
operator's change stands when the answer is made; every other operator gets 409 `conflict` naming what stands.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from gamead_core.embedded import EmbeddedNats
from tests.forked_popen import GameadPopen
from tests.support import Proc, clean_env, gamead_argv, run_gamead, start_api, start_worker, wait_for

ROUNDS = 6
ENV = {"GAMEAD_AUTOSCALER__BACKEND": "local"}  # shows the shared state, never leads: only operators write


def _nodes(fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path) -> list[str]:
    nats = fresh_nats()
    urls = []
    for _ in range(2):
        api, url = start_api(nats.url, tmp_path, **ENV)
        procs.append(api)
        urls.append(url)
    return urls


def _act(url: str, replicas: int | None) -> tuple[int | None, httpx.Response]:
    with httpx.Client(base_url=url, timeout=30) as client:
        if replicas is None:
            return None, client.delete("/v1/scale/override")
        return replicas, client.post("/v1/scale/override", json={"replicas": replicas, "forSeconds": 600})


def _check_round(answers: list[tuple[int | None, httpx.Response]], final: dict[str, Any]) -> list[int]:
    """Every answer tells the truth about what stood when it was made, and the final state is the change of
    the success with the highest revision. Returns the statuses."""
    wins: list[tuple[int, int | None]] = []  # (revision, replicas or None for a clear)
    for replicas, resp in answers:
        body = resp.json()
        if resp.status_code == 409:
            error = body["error"]
            assert error["code"] == "conflict" and "stands" in error["message"], error
            assert "override" in error["details"] and error["details"]["overrideRevision"] >= 1, error
            assert error["details"]["overrideRevision"] <= final["overrideRevision"], (error, final)
            continue
        status = body["status"]
        if replicas is None:
            assert resp.status_code == 200, body
            assert status["override"] is None, body  # "cleared" (or "none was set") while one stood: the bug
            if body["cleared"]:
                wins.append((status["overrideRevision"], None))
        else:
            assert resp.status_code == 201, body
            assert status["override"]["replicas"] == replicas == body["override"]["replicas"], body
            wins.append((status["overrideRevision"], replicas))
    assert len({rev for rev, _ in wins}) == len(wins), wins  # no two writes both won one revision
    # each set names what it replaced (drill attack25 finding 6): the win just before it, when in this round
    by_revision = dict(wins)
    for replicas, resp in answers:
        if replicas is not None and resp.status_code == 201:
            body = resp.json()
            before = body["status"]["overrideRevision"] - 1
            if before in by_revision:
                assert (body["replaced"] or {}).get("replicas") == by_revision[before], (body, wins)
    if wins:
        revision, value = max(wins, key=lambda w: w[0])
        assert final["overrideRevision"] == revision, (wins, final)
        assert (final["override"] or {}).get("replicas") == value, (wins, final)
    return [resp.status_code for _, resp in answers]


def test_concurrent_operators_get_one_final_state_and_truthful_answers(
    fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path
) -> None:
    urls = _nodes(fresh_nats, procs, tmp_path)
    statuses: list[int] = []
    with ThreadPoolExecutor(max_workers=5) as pool:
        for n in range(ROUNDS):
            actions = [1, 2, 3, 4, None]
            answers = list(pool.map(lambda a: _act(urls[(a or 0) % 2], a), actions[n % 5:] + actions[: n % 5]))
            final = httpx.get(f"{urls[n % 2]}/v1/scale", timeout=10).json()
            statuses += _check_round(answers, final)
    assert set(statuses) <= {200, 201, 409}, statuses


def test_a_change_naming_an_old_revision_is_refused_with_what_stands(
    fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path
) -> None:
    """`If-Match: <overrideRevision>` makes the change conditional on what the operator saw."""
    first, second = _nodes(fresh_nats, procs, tmp_path)
    seen = httpx.get(f"{first}/v1/scale", timeout=10).json()["overrideRevision"]
    set_by_alice = httpx.post(f"{first}/v1/scale/override", json={"replicas": 3, "forSeconds": 600}, timeout=10)
    assert set_by_alice.status_code == 201, set_by_alice.text
    stale = {"If-Match": f'"{seen}"'}
    for resp in (httpx.post(f"{second}/v1/scale/override", json={"replicas": 5, "forSeconds": 600}, headers=stale,
                            timeout=10),
                 httpx.delete(f"{second}/v1/scale/override", headers=stale, timeout=10)):
        assert resp.status_code == 409, resp.text
        error = resp.json()["error"]
        assert error["code"] == "conflict" and "override 3 until" in error["message"], error
        assert error["details"]["override"]["replicas"] == 3
    doc = httpx.get(f"{second}/v1/scale", timeout=10).json()
    assert doc["override"]["replicas"] == 3  # nothing the stale operators sent was written
    fresh = {"If-Match": str(doc["overrideRevision"])}
    cleared = httpx.delete(f"{second}/v1/scale/override", headers=fresh, timeout=10)
    assert cleared.status_code == 200 and cleared.json()["cleared"] is True, cleared.text
    bad = httpx.delete(f"{second}/v1/scale/override", headers={"If-Match": "*"}, timeout=10)
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "validation_failed", bad.text


def test_concurrent_cli_operators_each_exit_0_or_a_single_red_line_and_1(
    fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path
) -> None:
    """The reviewer's exact run: `gamead scale set 1..4` and `gamead scale clear` at once."""
    url = _nodes(fresh_nats, procs, tmp_path)[0]
    env = clean_env(GAMEAD_API_URL=url)
    commands = [("scale", "set", str(n)) for n in (1, 2, 3, 4)] + [("scale", "clear")]
    runs = [GameadPopen(gamead_argv(*c), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for c in commands]
    results = [(c, *run.communicate(timeout=60), run.returncode) for c, run in zip(commands, runs, strict=True)]
    final = httpx.get(f"{url}/v1/scale", timeout=10).json()["override"]
    winners = []
    for command, out, err, code in results:
        assert code in (0, 1) and "Traceback" not in out + err, (command, code, out, err)
        if code == 1:
            lines = err.strip().splitlines()
            assert len(lines) == 1 and "stands" in lines[0] and "conflict" not in out, (command, err)
        elif command[1] == "set":
            winners.append(int(command[2]))
            assert "(replaced " in out or "(no override was set before)" in out, (command, out)
    # the final state is what one operator was told stands (or none, when a clear was last)
    assert final is None or final["replicas"] in winners, (final, results)


def test_scale_set_says_when_no_autoscaler_will_apply_the_override(
    fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path
) -> None:
    """`gamead scale set 3` said "applied by the autoscaler's leader at its next decision" also when no
    autoscaler held the lease (a `gamead serve` with backend `local` and no `gamead up`) and when the leader
    only advises (backend `none`): the operator was told workers would change and none ever did."""
    nats = fresh_nats()
    lone, lone_url = start_api(nats.url, tmp_path, **ENV)
    procs.append(lone)
    run = run_gamead("scale", "set", "3", "--for", "1m", "--api", lone_url, env=clean_env(), timeout=60)
    assert run.returncode == 0, run.stderr
    assert "no autoscaler holds the lease" in run.stdout and "applied by" not in run.stdout, run.stdout

    advice = fresh_nats()
    adviser, adviser_url = start_api(advice.url, tmp_path, GAMEAD_AUTOSCALER__BACKEND="none",
                                     GAMEAD_AUTOSCALER__INTERVAL="0.5")
    procs.append(adviser)
    wait_for(lambda: httpx.get(f"{adviser_url}/v1/scale", timeout=5).json().get("leader"), timeout=10,
             what="the advice-only node to lead")
    run = run_gamead("scale", "set", "3", "--for", "1m", "--api", adviser_url, env=clean_env(), timeout=60)
    assert run.returncode == 0, run.stderr
    assert "backend none" in run.stdout and "applied by" not in run.stdout, run.stdout


def test_an_override_shorter_than_one_decision_interval_is_refused(
    fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path
) -> None:
    """attack41b F4: `gamead scale set 3 --for 1s` (autoscaler.interval 5 s) printed "applied by the autoscaler's
    leader at its next decision", exit 0, though the override ended before any decision: nothing applied it. Now
    422 ``validation_failed`` naming the interval (``details[0].min``: 5), nothing set. probe49 F8: the CLI said it
    as a failed request, exit 1, where every other bad ``--for`` (0, 8d, banana) is bad usage, exit 2: now exit 2,
    one line in the sentence of the others, ``--for must be 5s to 7d, not 1s: shorter than …``."""
    nats = fresh_nats()
    api, url = start_api(nats.url, tmp_path, **ENV)
    procs.append(api)
    answer = httpx.post(f"{url}/v1/scale/override", json={"replicas": 3, "forSeconds": 1}, timeout=10)
    assert answer.status_code == 422 and answer.json()["error"]["details"][0]["min"] == 5, answer.text
    run = run_gamead("scale", "set", "3", "--for", "1s", "--api", url, env=clean_env(), timeout=60)
    assert run.returncode == 2, (run.stdout, run.stderr)
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "--for must be 5s to 7d, not 1s: shorter than the autoscaler's decision interval " \
        "(5 s)" in lines[0], run.stderr
    assert httpx.get(f"{url}/v1/scale", timeout=10).json()["override"] is None


def test_each_scale_set_names_the_override_it_replaced_and_clear_the_one_it_removed(
    fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path
) -> None:
    """Drill attack25 finding 6: `gamead scale set 1..4` each printed `override: N worker(s) until …` and nothing
    told an operator that their override replaced another's (or was then replaced). Each now says what it
    replaced, and `scale clear` what it removed; what it prints is what holds when it returns."""
    url = _nodes(fresh_nats, procs, tmp_path)[0]
    env = clean_env(GAMEAD_API_URL=url)
    first = run_gamead("scale", "set", "5", "--for", "10m", env=env, timeout=60)
    assert first.returncode == 0 and "override: 5 workers" in first.stdout, first.stderr
    assert "(no override was set before)" in first.stdout, first.stdout
    second = run_gamead("scale", "set", "3", "--for", "10m", env=env, timeout=60)
    assert second.returncode == 0, second.stderr
    flat = " ".join(second.stdout.split())
    assert "override: 3 workers" in flat and "(replaced 5 workers until " in flat and " set by " in flat, flat
    assert httpx.get(f"{url}/v1/scale", timeout=10).json()["override"]["replicas"] == 3
    cleared = run_gamead("scale", "clear", env=env, timeout=60)
    assert cleared.returncode == 0, cleared.stderr
    assert "override cleared (it was 3 workers until " in " ".join(cleared.stdout.split()), cleared.stdout
    assert httpx.get(f"{url}/v1/scale", timeout=10).json()["override"] is None


def test_scale_status_under_an_override_says_every_worker_is_quiet(
    fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path
) -> None:
    """probe49 F8: under `gamead scale set 2` with every worker quiet (`gamead workers quiet --all`) and an ad
    waiting, `gamead scale status` said only `manual override to 2 workers until … → hold 2 workers`: nothing said
    that no worker takes an ad (`gamead doctor` did: `every live worker (2) is quiet`). The reason now says it, in
    doctor's words, with the command that resumes them."""
    nats = fresh_nats()
    leader, url = start_api(nats.url, tmp_path, GAMEAD_AUTOSCALER__BACKEND="none", GAMEAD_AUTOSCALER__INTERVAL="0.5",
                            GAMEAD_REGISTRY__HEARTBEAT_INTERVAL="0.5")
    procs.append(leader)
    for wid in ("calm-1", "calm-2"):
        procs.append(start_worker(nats.url, tmp_path, worker_id=wid, ready=True,
                                  GAMEAD_REGISTRY__HEARTBEAT_INTERVAL="0.5"))
    env = clean_env(GAMEAD_API_URL=url)
    assert run_gamead("scale", "set", "2", "--for", "10m", env=env, timeout=60).returncode == 0

    def status() -> subprocess.CompletedProcess[str]:
        return run_gamead("scale", "status", env=clean_env(GAMEAD_API_URL=url, COLUMNS="300"), timeout=60)

    wait_for(lambda: "→ hold 2 workers" in status().stdout, timeout=30, what="the override held")
    assert "quiet" not in status().stdout  # both take ads: nothing said
    told = run_gamead("workers", "quiet", "--all", env=env, timeout=60)
    assert told.returncode == 0, told.stderr
    said = "→ hold 2 workers; every live worker (2) is quiet: gamead workers resume --all"
    wait_for(lambda: said in status().stdout, timeout=30, what="scale status saying every worker is quiet")
