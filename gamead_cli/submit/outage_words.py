"""What ``gamead submit`` says of an outage (:class:`gamead_cli.submit.outage.Outage`: what is done): the line as it
begins, ends or stops the run, the progress bar's words meanwhile, and why the sending stopped. Pure: times are
epoch seconds on the service's clock, ``kind`` ``unreachable`` (no connection, or a proxy answering for the API)
or ``store`` (its store refusing every ad)."""

from __future__ import annotations

from gamead_cli.formats import clock_text


def begun_text(since: float, url: str, cause: str, kind: str, hold_for: float, proxied: bool) -> str:
    """The ``!`` line of an outage begun at ``since``: what is done, and until when (``hold_for``:
    ``client.retry_for``); ``proxied``: a proxy answers for the API (one ad at a time, resent only keyed)."""
    until = clock_text(since + hold_for)
    if kind == "store":
        return (f"{clock_text(since)} the API at {url} refuses every ad for its store ({cause}): sending paused, one "
                "ad at a time tries again (certainly unsent ones are resent, uncertain ones looked up at the end); if "
                f"it still refuses at {until} (client.retry_for {hold_for:g} s) sending stops, the rest not sent. The "
                "--rate schedule resumes where it paused: the run ends later by the pause")
    out, cut = ("one ad at a time tries again (an ad the proxy answered for is resent only with "
                "--idempotency-key, else may be queued)", "the rest are not sent") if proxied else (
        "the requests out are retried", "their ads are not sent (never queued, safe to resend), nor the rest")
    return (f"{clock_text(since)} the API at {url} is unreachable ({cause}): sending paused, {out}; if it still is "
            f"at {until} (client.retry_for {hold_for:g} s) sending stops and {cut}. The --rate schedule resumes "
            "where it paused: the run ends later by the pause")


def at_once_text(since: float, url: str, cause: str) -> str:
    """The ``✗`` line of a proxy answering for the API before any ad of the run was taken, its batch not resent
    (no ``--idempotency-key``): the run stops at once (``gamead submit``'s rule for a first batch with no answer),
    no pause (probe47 F4: the ``!`` line promised one, and the run ended 60 ms later)."""
    return (f"{clock_text(since)} the API at {url} is unreachable ({cause}) and no ad of this run was taken yet: "
            "sending stopped at once, the batch the proxy answered for not resent (only --idempotency-key makes that "
            "safe: its ads may be queued), the rest not sent; the summary says which")


def ended_text(now: float, url: str, seconds: float, kind: str, cause: str) -> str:
    """The ``✓`` line of an outage that ended at ``now`` after ``seconds``."""
    how = "unreachable" if kind == "unreachable" else f"refusing writes ({cause})"
    return (f"{clock_text(now)} the API at {url} answers again after {seconds:.1f} s {how}: sending resumes where it "
            "paused")


def stopped_text(now: float, url: str, kind: str, waited: float, cause: str, hold_for: float) -> str:
    """The ``✗`` line of an outage that stopped the run at ``now``, ``waited`` s after it began."""
    still = "is still unreachable" if kind == "unreachable" else "still refuses every ad for its store"
    return (f"{clock_text(now)} the API at {url} {still} after {waited:.0f} s ({cause}): sending stopped, the "
            f"summary says which ads were not sent (client.retry_for {hold_for:g} s: GAMEAD_CLIENT__RETRY_FOR=S "
            "waits longer)")


def status_text(kind: str, since: float, cause: str) -> str:
    """What the progress bar adds while an outage is under way."""
    what = "API unreachable" if kind == "unreachable" else "the API's store refuses writes"
    return f" · {what} since {clock_text(since)} ({cause}): paused"


def reason_text(kind: str, cause: str) -> str:
    """Why an outage stopped the sending (``stoppedBecause``)."""
    if kind == "store":
        return f"the API's store still refused every ad after client.retry_for ({cause})"
    return "the API was still unreachable after client.retry_for"
