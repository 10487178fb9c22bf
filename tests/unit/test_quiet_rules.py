"""Pure: the rules of a quiet worker (quiet48) — the control request and its answer, the state shown, the wire an
older API reads, the doctor's pullers, the audit action, the counts."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import orjson
import pytest

from gamead_core.audit import action_for
from gamead_core.doctor.pullers import nobody_pulls
from gamead_core.registry import NodeInfo, WorkerSelf, node_state, worker_node_info
from gamead_core.stats.document import node_counts
from gamead_core.worker.quiet import control_subject, decide, read_verb, restored

T0 = datetime(2025, 1, 1, tzinfo=timezone.utc)


def node(**kw: Any) -> NodeInfo:
    base: dict[str, Any] = dict(id="w", role="worker", host="h", pid=1, version="0", started_at=T0,
                                heartbeat_at=T0, concurrency=4, heartbeat_interval=2.0)
    return NodeInfo(**{**base, **kw})


def test_a_control_request_is_read_and_decided_and_asked_twice_changes_nothing() -> None:
    assert read_verb(orjson.dumps({"verb": "quiet"})) == "quiet"
    assert read_verb(orjson.dumps({"verb": "resume"})) == "resume"
    for junk in (b"quiet", b"{}", b"[1]", orjson.dumps({"verb": "stop"}), b"\xff"):
        assert read_verb(junk) is None
    assert decide("quiet", False) == (True, True)
    assert decide("quiet", True) == (True, False)
    assert decide("resume", True) == (False, True)
    assert decide("resume", False) == (False, False)


@pytest.mark.parametrize("worker_id", ["local-1", "host.example.com-12-ab12cd", "worker_1", "a:b@c=d"])
def test_the_control_subject_is_one_token_of_the_checked_id(worker_id: str) -> None:
    subject = control_subject(worker_id)
    assert subject.startswith("gamead.control.worker.")
    token = subject.removeprefix("gamead.control.worker.")
    assert token and not set(token) & {".", "*", ">", " "}
    assert control_subject("w.1") != control_subject("w_1")  # one to one, as the registry keys


def test_a_restart_takes_its_dead_predecessors_quiet_and_only_that() -> None:
    assert restored(None) is False
    assert restored(node(quiet=False)) is False
    assert restored(node(quiet=True)) is True


def test_quiet_is_shown_unless_late_stuck_or_draining_says_more() -> None:
    now = T0 + timedelta(seconds=1)
    assert node_state(node(quiet=True), now, 60.0) == "quiet"
    assert node_state(node(quiet=True, in_flight=2), now, 60.0) == "quiet"  # finishing what it runs
    assert node_state(node(quiet=True), T0 + timedelta(seconds=6), 60.0) == "late"
    assert node_state(node(quiet=True, state="draining"), now, 60.0) == "draining"
    assert node_state(node(quiet=False), now, 60.0) == "idle"


def test_a_quiet_workers_own_state_on_the_wire_is_one_an_older_api_reads() -> None:
    me = WorkerSelf(id="w", concurrency=2, started=T0.timestamp(), in_flight=0, processed=0, failed=0,
                    last_error=None, last_progress=None, recent=[], holding=[], task_timeout=60.0, ack_wait=30.0,
                    quiet=True)
    info = worker_node_info(me, now=T0.timestamp() + 1)
    assert info.quiet is True and info.state == "idle"  # "quiet" is not a State an older API's model takes
    assert orjson.loads(info.model_dump_json())["quiet"] is True


def test_the_doctor_counts_no_quiet_worker_as_pulling_and_says_when_all_are() -> None:
    assert nobody_pulls([node(id="q", quiet=True, partitions=3), node(id="b", partitions=3)], 3) is None
    assert nobody_pulls([node(id="q", quiet=True, partitions=3)], 3) == (
        "every live worker (1) is quiet: gamead workers resume --all")


def test_the_audit_action_and_the_counts_name_quiet() -> None:
    assert action_for("POST", "/v1/workers/local-1/quiet") == "worker.quiet"
    assert action_for("POST", "/v1/workers/local-1/resume") == "worker.resume"
    shown = [(node(id="q"), "quiet"), (node(id="b"), "ok"), (node(id="a", role="api"), "ok")]
    counts = node_counts(shown)
    assert counts["workers"] == 2 and counts["quiet"] == 1  # a quiet worker is live, and counted apart


@pytest.mark.parametrize(("running", "said"), [(0, "(no ad running)"), (1, "(the ad it runs finishes first)"),
                                               (2, "(the 2 ads it runs finish first)")])
def test_the_quiet_answer_says_what_it_still_runs_in_words(running: int, said: str) -> None:
    """The lead's drill: ``local-2 is quiet: it takes no new ad (0 ads running finish)``."""
    from gamead_cli.commands.workers_quiet import answer_line
    line = answer_line({"workerId": "local-2", "inFlight": running, "changed": True}, "quiet").plain
    assert line == f"local-2 is quiet: it takes no new ad {said}"


def test_quiet_and_resume_say_an_idle_worker_the_same_way() -> None:
    """words58: ``quiet`` said ``(none running)`` where ``resume`` said ``(0 ads running)`` of the same idle
    worker: both say ``(no ad running)``."""
    from gamead_cli.commands.workers_quiet import answer_line
    idle = {"workerId": "local-2", "inFlight": 0, "changed": True}
    said = [answer_line(idle, verb).plain for verb in ("quiet", "resume")]
    assert all(line.endswith("(no ad running)") for line in said), said


def test_the_undo_hint_undoes_only_what_changed() -> None:
    """probe49: local-1 quiet for inspection, then `gamead workers quiet --all` (local-2 changed) said `undo with:
    gamead workers resume --all`, which resumes local-1 too; and `resume --all` when none was quiet offered an
    `undo with: gamead workers quiet --all` of nothing."""
    from gamead_cli.commands.workers_quiet import undo_words
    one, two = {"workerId": "local-1", "changed": False}, {"workerId": "local-2", "changed": True}
    assert undo_words([one, two], every=True) == (("local-2",), " (not --all: local-1 already was)")
    assert undo_words([{**one, "changed": True}, two], every=True) == (("--all",), "")
    assert undo_words([one, {**two, "changed": False}], every=True) is None  # nothing changed: nothing to undo
    assert undo_words([two], every=False) == (("local-2",), "")
    assert undo_words([one], every=False) is None
    # newcomer57: several changed are named as arguments, `resume local-2 local-3`, not `resume ID … (ID: …)`
    three = {"workerId": "local-3", "changed": True}
    assert undo_words([one, two, three], every=True) == (("local-2", "local-3"), " (not --all: local-1 already was)")
    assert undo_words([one, two, three], every=False) == (("local-2", "local-3"), " (local-1 already was)")
    assert undo_words([two, three], every=False) == (("local-2", "local-3"), "")


def test_the_workers_asked_are_named_one_way_in_an_interrupt_and_a_lost_output() -> None:
    """probe49 F8: an interrupt under ``--all`` names the workers asked before (``POST … (quiet WAS asked of …)``),
    as an unwritable stdout does (``…; quiet WAS asked of …``): one text (it was built twice)."""
    from gamead_cli.commands.workers_quiet import asked_text
    answers = [{"workerId": "local-1"}, {"workerId": "local-2"}]
    assert asked_text("quiet", answers) == "quiet WAS asked of local-1, local-2"
    assert asked_text("resume", answers[:1]) == "resume WAS asked of local-1"


def test_the_audit_trail_says_which_worker_was_told() -> None:
    """probe49: `gamead audit` showed `worker.quiet  -` in SELECTION: which worker was quieted was only in -o json."""
    from rich.console import Console

    from gamead_cli.tui.view_audit import audit_selection, audit_table
    record = {"action": "worker.quiet", "outcome": "accepted", "actor": "alice", "at": "2026-12-06T04:22:52Z",
              "details": {"workerId": "local-2"}}
    assert audit_selection(record) == "worker local-2"
    assert audit_selection({**record, "action": "worker.resume", "details": {}}) == "-"
    console = Console(width=120, record=True)
    console.print(audit_table({"items": [record]}))
    assert "worker local-2" in console.export_text()


def test_a_draining_worker_is_offered_no_undo_and_said_to_come_back_taking_ads() -> None:
    """attack55: `gamead workers quiet local-1` racing a SIGTERM of that worker (`gamead up` running it) said
    `local-1 is stopping (draining): …` and then `shown as quiet in gamead workers within a heartbeat; undo with:
    gamead workers resume local-1`; its clean stop kept no quiet, and `gamead up` restarted it 0.5 s later taking
    ads (`gamead workers`: idle)."""
    from gamead_cli.commands.workers_quiet import answer_line, undo_words
    stopping = {"workerId": "local-1", "changed": True, "draining": True, "inFlight": 0}
    other = {"workerId": "local-2", "changed": True}
    assert undo_words([stopping], every=False) is None
    assert undo_words([stopping, other], every=True) == (("local-2",), "")
    assert undo_words([stopping, other, {"workerId": "local-3", "changed": False}], every=True) == (
        ("local-2",), " (not --all: local-3 already was)")
    said = answer_line(stopping, "quiet").plain
    assert said.startswith("local-1 is stopping (draining): it takes no new ad, resumed or not (no ad running); ")
    assert said.endswith("one started again under its id (gamead up restarts a stopped worker) takes ads: quiet it "
                         "once gamead workers lists it")
    assert answer_line(stopping, "resume").plain.endswith("takes ads")
