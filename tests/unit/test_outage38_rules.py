"""outage38's pure rules: the API's storage gate (:func:`gamead_core.api.storage_gate.admit`), the runs a bulk
``gamead submit`` cuts to one ad once a store outage begins (:class:`gamead_cli.submit.batches.Runs`), and the
whole-answer bound a verb's error names (:func:`gamead_cli.answers.answer_bound`)."""

from __future__ import annotations

import pytest

from gamead_cli.answers import answer_bound
from gamead_cli.submit.batches import Runs
from gamead_core.api.storage_gate import (
    GO,
    REFUSE,
    TRIAL,
    TRIAL_EVERY,
    StorageFailing,
    StorageGate,
    admit,
)


def test_the_gate_lets_everything_go_while_the_store_is_not_known_failing_and_one_trial_at_a_time_else() -> None:
    assert admit(False, True, 0.0) == GO  # never refused when the store is fine, a trial out or not
    assert admit(True, False, TRIAL_EVERY) == TRIAL
    assert admit(True, True, 10.0) == REFUSE  # one trial at a time
    assert admit(True, False, TRIAL_EVERY / 2) == REFUSE  # nor one at every submit of a fast-failing store


def test_the_gate_refuses_certainly_and_lets_the_next_trial_go_once_the_last_one_is_answered() -> None:
    why: list[str | None] = ["NATS did not answer in time"]
    now = [100.0]
    gate = StorageGate(lambda: why[0], clock=lambda: now[0])
    assert gate.enter() is True  # the trial
    with pytest.raises(StorageFailing) as refused:
        gate.enter()
    assert refused.value.code == "storage_failing" and refused.value.details is None  # certain: no adId
    gate.leave()
    now[0] += TRIAL_EVERY
    assert gate.enter() is True and len(gate.refuse(99)) == 99 and gate.refused == 100
    why[0] = None  # a trial stored: the store is not known failing any more
    assert gate.enter() is False


def test_a_run_formed_before_a_store_outage_goes_one_ad_at_a_time_and_none_is_lost_or_reordered() -> None:
    """submit37 left it: a batch already formed when the outage began went whole (100 ads into a refusing store)."""
    runs = Runs(iter([[0, 1, 2, 3], [4, 5]]))
    sent = []
    for run in runs:
        sent.append(runs.cut(run, 1 if len(sent) < 3 else 100))  # 3 probes, then the outage ends
    assert sent == [[0], [1], [2], [3], [4, 5]]
    runs = Runs(iter([[0, 1, 2]]))
    first = runs.cut(next(runs), 1)
    assert first == [0] and runs.left() == [1, 2]  # what a Ctrl-C or a stop names: in hand, never dropped


def test_the_whole_answer_bound_is_the_one_that_cuts_and_is_named_as_such() -> None:
    """client37 left: ``gamead doctor``'s 300 s wait gave a whole-answer bound named ``client.list_timeout``
    (before list37, 3 × 300 s: 15 min); a lookup cut by ``client.lookup_for`` said ``3 × client.timeout``."""
    assert answer_bound(None, 10.0) == (30.0, "3 × client.timeout")
    assert answer_bound(120.0, 10.0) == (120.0, "client.list_timeout")
    assert answer_bound(300.0, 10.0, own="gamead doctor's wait") == (310.0, "gamead doctor's wait's 300s + "
                                                                             "client.timeout")
    assert answer_bound(4.0, 10.0, left=4.0, limit="client.lookup_for") == (4.0, "the time left of client.lookup_for")
    assert answer_bound(2.0, 10.0, left=9.0, limit="client.lookup_for") == (6.0, "3 × client.timeout")
