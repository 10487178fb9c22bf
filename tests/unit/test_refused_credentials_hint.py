"""The line of a ``gamead worker`` / ``gamead serve`` that NATS refused for its credentials says where to find the
command that joins a ``gamead up`` stack (regress44 F3)."""

from __future__ import annotations

from gamead_core.queue.probe import refused_credentials


def test_the_refusal_says_how_to_get_the_join_command_not_a_command_up_may_not_print() -> None:
    """regress44 F3: ``gamead worker --nats-url nats://127.0.0.1:20422`` in the directory of a ``make up`` stack (2
    workers) said "as in the gamead worker command it prints": such a ``gamead up`` prints no ``gamead worker``
    command (only ``--workers 0`` does). The command is printed by the verb itself, run there without --nats-url
    (gamead_cli.runtime.require_nats_url): the line now says so. Without the fix this test fails (the old wording);
    with it, it passes."""
    error = refused_credentials(Exception("nats: 'Authorization Violation'"), "nats://127.0.0.1:20422")
    assert error is not None
    text = str(error)
    assert "as in the gamead worker command it prints" not in text
    assert "gamead worker or gamead serve without --nats-url prints the whole command that joins it" in text
    assert "config-in-force.yaml" in text and "\n" not in text
