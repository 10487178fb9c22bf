"""attack44c F5: who acts on the override, read once from ``GET /v1/scale``'s document (``appliedBy``), for the API's
answers and ``gamead scale set``/``clear``'s sentence alike. Pure."""

from __future__ import annotations

from gamead_core.scaling.applies import APPLIED_BY, applied_by

LEADER = {"id": "api-h-7", "thisStack": None, "stack": None}


def test_each_case_has_its_stable_name_and_says_whether_the_answering_node_leads() -> None:
    here = applied_by({"backend": "kubernetes", "leader": LEADER, "node": "api-h-7"})
    assert (here["by"], here["leaderIsThisNode"]) == ("leader", True)
    assert here["text"] == ("applied by the autoscaler's leader (gamead serve api-h-7; this API node) at its next "
                            "decision")
    follower = applied_by({"backend": "kubernetes", "leader": LEADER, "node": "api-h-8"})
    assert follower["leaderIsThisNode"] is False and "not this API node" in follower["text"]
    advice = applied_by({"backend": "none", "leader": LEADER, "node": "api-h-8"})
    assert advice["by"] == "advice_only" and "no worker count changes" in advice["text"]
    failed = applied_by({"backend": "kubernetes", "leader": LEADER, "error": "timed out", "desired": None,
                         "reason": "cannot read the worker count"})
    assert (failed["by"], failed["failed"], failed["error"], failed["leaderIsThisNode"]) == (
        "leader_failing", "decision", "timed out", None)
    assert "its last decision failed (cannot read the worker count): timed out" in failed["text"]
    nobody = applied_by({"backend": "kubernetes", "leader": None})
    assert (nobody["by"], nobody["leader"]) == ("no_leader", None)
    assert {here["by"], advice["by"], failed["by"], nobody["by"], "another_stack"} == set(APPLIED_BY)
