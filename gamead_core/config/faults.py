"""``worker.faults:``, fault injection for drills (:class:`FaultSettings`)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, PrivateAttr, field_validator

from gamead_core.config.section import Section
from gamead_core.dlq_pattern import MAX_PATTERN, compile_pattern


class FaultSettings(Section):
    """Fault injection for drills. Off unless ``rate`` > 0; logged loudly when on.

    ``match`` is an RE2 pattern, checked and compiled when the settings are built (and again only if ``match``
    changes: ``model_copy(update=…)`` runs no validation nor post-init), under the bounds of the
    DLQ ``--message`` filter (:func:`gamead_core.dlq_pattern.compile_pattern`: linear-time search, bounded memory
    and program size); a pattern it refuses is a :class:`ValueError` here, so a
    :class:`~gamead_core.errors.ConfigError` naming ``worker.faults.match`` from :func:`load_settings`. It was a
    Python ``re`` pattern searched on the worker's event loop: ``(a+)+$`` on a title of 34 a's blocked a worker
    until it was killed as wedged, and ``(`` passed validation and dead-lettered every ad (attack24 #2)."""

    rate: float = Field(0.0, ge=0, le=1, description="Share of matching ads that fail (0 = off). At most 1.")
    match: str | None = Field(
        None, description="RE2 regular expression searched in the title; only matching ads can fail (unset or "
        "empty = every ad). RE2 syntax (https://github.com/google/re2/wiki/Syntax), not Python's `re`: no "
        f"look-behind or look-ahead, no back-references. At most {MAX_PATTERN} characters, under the cost bounds of "
        "`gamead dlq … --message` (gamead_core.dlq_pattern); a pattern RE2 refuses, or one over them, is a config "
        "error (exit 5).")
    mode: Literal["retryable", "permanent", "crash", "hang"] = Field(
        "retryable", description="retryable error, permanent error, crash (hard exit) or hang (past task_timeout)."
    )
    attempts: int = Field(
        0, ge=0, le=100, description="Only the first N attempts of a matching ad can fail (0 = every attempt). At "
        "most 100 (worker.max_attempts' own bound).")
    #: (the ``match`` it was compiled from, that pattern compiled by RE2 or None: every title matches): compiled
    #: again whenever ``match`` is no longer the string it came from (``model_copy(update=…)``, an assignment)
    _title_pattern: tuple[str | None, Any] | None = PrivateAttr(None)

    @field_validator("match")
    @classmethod
    def _an_re2_pattern(cls, value: str | None) -> str | None:
        """A pattern :func:`~gamead_core.dlq_pattern.compile_pattern` accepts; its ValueError (RE2's reason, or the
        bound passed) otherwise."""
        if value:
            compile_pattern(value)
        return value

    def model_post_init(self, context: Any, /) -> None:
        self._compiled()  # compiled when the settings are built, not at the first ad

    def _compiled(self) -> Any:
        """``match`` compiled (None: unset or empty), compiled once per pattern string, not at each ad."""
        if self._title_pattern is None or self._title_pattern[0] != self.match:
            self._title_pattern = (self.match, compile_pattern(self.match) if self.match else None)
        return self._title_pattern[1]

    def title_matches(self, title: str) -> bool:
        """True if ``match`` is unset or empty, or found anywhere in ``title`` (an RE2 search: linear in the title,
        never a backtracking blow-up). Raises ValueError only for a ``match`` set past validation that RE2 refuses."""
        pattern = self._compiled()
        return pattern is None or pattern.search(title) is not None


__all__ = ["FaultSettings"]
