"""A wait the CLI cannot count (``gamead doctor``'s check, ``submit --wait``'s one ad) said nothing to a stderr that
is no terminal (a CI log, a pipe) until it ended (leftout60): it now says where it stands in plain lines, one every
``PLAIN_EVERY`` s at most once it has gone on that long (0 here: each tick says one), then its end; a short one
says nothing; one ended by an error leaves its end to the error's red line."""

from __future__ import annotations

import io
import sys
import time

import pytest

from gamead_cli import output
from gamead_cli.stderr_wait import StderrWait


def _said_a_line(err: io.StringIO) -> None:
    deadline = time.monotonic() + 10
    while "\n" not in err.getvalue():
        assert time.monotonic() < deadline, "no line said in 10 s"
        time.sleep(0.01)


def test_a_long_wait_says_where_it_stands_then_its_end(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(output, "PLAIN_EVERY", 0.0)
    monkeypatch.setattr(sys, "stderr", err := io.StringIO())
    with StderrWait("waiting for ad 01m8 (queued)") as wait:
        _said_a_line(err)
        wait.update("waiting for ad 01m8 (processing)")
        wait.finish("ad 01m8 completed")
    lines = err.getvalue().splitlines()
    assert lines[0].startswith("waiting for ad 01m8 (queued) · "), lines  # before: nothing
    assert lines[-1].startswith("ad 01m8 completed · "), lines


def test_a_short_wait_says_nothing_and_an_error_leaves_its_end_unsaid(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(output, "PLAIN_EVERY", 3600.0)
    monkeypatch.setattr(sys, "stderr", err := io.StringIO())
    with StderrWait("checking every invariant", done="checked every invariant"):
        pass
    assert err.getvalue() == ""
    monkeypatch.setattr(output, "PLAIN_EVERY", 0.0)
    with pytest.raises(KeyboardInterrupt), StderrWait("checking every invariant", done="checked every invariant"):
        _said_a_line(err)
        raise KeyboardInterrupt
    assert "checked" not in err.getvalue() and err.getvalue().startswith("checking every invariant · "), \
        err.getvalue()
