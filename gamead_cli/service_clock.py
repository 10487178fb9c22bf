"""The service's clock as the CLI knows it: every relative time the CLI resolves (``--since 1h``) and every age it
prints (``3m05s ago``) is read here, not from this machine's wall clock.

A laptop whose clock was 2 h fast turned ``gamead dlq purge --until 1h`` into "purge everything", entries dead
minutes ago included (attack33a F10): the age was resolved on the laptop's clock. So the CLI learns the
service's time from the ``Date`` header (RFC 9110 §6.6.1) of the API's answers: each answer's header, taken
between this process's local clock readings (:func:`gamead_core.clock.local`) before the request and after the answer, is one sample of
:class:`gamead_core.clock.ServerClock` (the clock filter of the nodes themselves: the shortest round trip
anchors, the local boot-time clock runs between samples). The header has a 1 s resolution: the sample is the
middle of its second, so the time is known within ± (0.5 s + half the round trip); enough for ages of minutes.
Before any answer it is the local wall clock (:meth:`ServerClock.now`). The API's header is written from the
API host's clock (uvicorn's) or nats-server's: either way the service's side, which stamped the times compared.

A machine whose clock differs from the service's by more than :data:`SAY_OVER` seconds is told so once per
process, on stderr (:func:`say_skew`), by the line of :func:`skew_text`.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Final

from gamead_core.clock import ServerClock

#: seconds of difference between this machine's clock and the service's past which the CLI says so (the Date
#: header's 1 s resolution and a round trip make up to ~1.5 s of it noise)
SAY_OVER: Final[float] = 5.0

#: seconds a ``Date`` header's time may be off its second's middle (:func:`date_seconds`): each sample's bracket is
#: widened by it, so two answers a second apart agree (:meth:`gamead_core.clock.Sample.agrees`) and do not
#: replace the anchor at each sample
DATE_UNCERTAINTY: Final[float] = 0.5

#: the service's clock as this process knows it (samples from the API's ``Date`` headers)
SERVICE: Final[ServerClock] = ServerClock()

class _Said:
    """Whether the skew line was said (once per process), how many :func:`held` blocks run, the line they keep."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.said, self.held, self.pending = False, 0, None  # type: bool, int, str | None


_SAID: Final[_Said] = _Said()


def date_seconds(value: str | None) -> float | None:
    """An HTTP ``Date`` header (``Fri, 04 Dec 2026 02:46:12 GMT``) → Unix seconds at the middle of its second
    (+0.5: the header drops the fraction); None when absent or unreadable. Pure."""
    if not value:
        return None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # RFC 9110: always GMT; "-0000" reads as naive
        when = when.replace(tzinfo=timezone.utc)
    return when.timestamp() + 0.5


def note(date: str | None, sent: float, received: float) -> None:
    """Take the ``Date`` header ``date`` of an answer as a sample: the request left at ``sent`` and its answer
    came at ``received`` (:func:`gamead_core.clock.local` seconds). An unreadable header is ignored. Says
    the skew once (:func:`say_skew`) when it is over :data:`SAY_OVER`."""
    at = date_seconds(date)
    if at is None:
        return
    SERVICE.note(sent, at, received, uncertainty=DATE_UNCERTAINTY)
    if not _SAID.said:
        say_skew()


def known() -> bool:
    """Has an answer of the API told this process the service's time yet?"""
    return SERVICE.offset is not None


def now() -> float:
    """The service's time now, Unix seconds (this machine's wall clock before any answer)."""
    return SERVICE.now()


def utcnow() -> datetime:
    """:func:`now` as an aware UTC datetime."""
    return datetime.fromtimestamp(SERVICE.now(), timezone.utc)


def skew_text(offset: float | None, error: float | None = 0.0) -> str | None:
    """The line telling the operator this machine's clock differs from the service's by ``offset`` seconds
    (:attr:`ServerClock.offset`: + when this machine is behind): ``! this machine's clock is 2h00m ahead of the
    service's: times are resolved on the service's clock``; None unless it is past :data:`SAY_OVER` by more than
    the sample's ``error`` (± s: an answer held 8 s by a paused API carries an old ``Date``; its long round trip
    says so, and a right clock was called 5.0 s ahead: newcomer33 F1, F5), or unknown. Pure."""
    if offset is None or abs(offset) - (error or 0.0) <= SAY_OVER:
        return None
    from gamead_cli.formats import age

    side = "behind" if offset > 0 else "ahead of"
    # known within ~1 s (the header's resolution): 599.4 s is said 10m00s, not 9m59s; 7199 s 2h00m, not 1h59m
    amount = abs(offset)
    step = 60 if amount >= 3600 else 10 if amount >= 60 else 1
    return (f"! this machine's clock is {age(round(amount / step) * step)} {side} the service's: times are "
            "resolved on the service's clock")


def say_skew() -> None:
    """Print :func:`skew_text` of the clock known now on stderr, once per process; while :func:`held` (a
    full-screen dashboard owns the terminal) it is kept, and said when the hold ends."""
    text = skew_text(SERVICE.offset, SERVICE.error)
    if text is None:
        return
    with _SAID.lock:
        if _SAID.said:
            return
        _SAID.said = True
        if _SAID.held:
            _SAID.pending = text
            return
    _print(text)


def _print(text: str) -> None:
    from rich.text import Text

    from gamead_cli.output import stderr_console

    stderr_console().print(Text(text, style="yellow"), soft_wrap=True)


@contextlib.contextmanager
def held() -> Iterator[None]:
    """Keep the skew line while the block runs (the full-screen dashboard); say it after, if it came."""
    with _SAID.lock:
        _SAID.held += 1
    try:
        yield
    finally:
        with _SAID.lock:
            _SAID.held -= 1
            text, _SAID.pending = _SAID.pending, None
        if text is not None:
            _print(text)


def forget() -> None:
    """Back to no sample and nothing said (tests)."""
    SERVICE.forget()
    with _SAID.lock:
        _SAID.said, _SAID.held, _SAID.pending = False, 0, None


def service_time(ask: Callable[[], object]) -> datetime:
    """The service's time now as an aware UTC datetime; when no answer has told it yet, ``ask()`` first (a cheap
    request whose answer's ``Date`` is noted, e.g. ``GET /healthz``)."""
    if not known():
        ask()
    return utcnow()
