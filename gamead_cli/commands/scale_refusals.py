"""The API's refusals of a ``gamead scale`` write said as the bad option they are (exit 2)."""

from __future__ import annotations

import typer

from gamead_core.bound_text import Range
from gamead_core.errors import ApiClientError
from gamead_core.scaling.bounds import MAX_OVERRIDE_SECONDS, TOO_SHORT, too_short_reason


def too_short(exc: ApiClientError, given: str) -> typer.BadParameter | None:
    """The API's 422 for an override shorter than the autoscaler's decision interval (a bound only the leader
    knows: its ``intervalSeconds``) as the bad ``--for`` it is, exit 2 as every other (probe49 F8: exit 1), in the
    sentence of the others: ``--for must be 5s to 7d, not 1s: shorter than …``; None for any other error. Pure."""
    details = exc.details if isinstance(exc.details, list) else []
    floor = next((d.get("min") for d in details if isinstance(d, dict) and d.get("type") == TOO_SHORT), None)
    if exc.status != 422 or isinstance(floor, bool) or not isinstance(floor, (int, float)):
        return None
    span = Range(floor, MAX_OVERRIDE_SECONDS, seconds=True)
    return typer.BadParameter(f"{span.refusal('--for', given)}: {too_short_reason(floor)}", param_hint="--for")
