"""The API's error messages in a CLI user's words: where a message names an API path to look at (``follow it at
/v1/jobs/01jb…``, ``GET /ads/01m8… tells``), the red line names the gamead command that shows the same
(``gamead dlq jobs 01jb… --follow --api …``, ``gamead ads get 01m8… --api …``), as every hint of the CLI does
(leftout59: ``doctor --repair`` during another repair said ``follow it at /v1/jobs/ID`` to a CLI user). An API
client reads the API's own words; a path with no gamead command (``POST /ads/batch``) is left as it is. Pure."""

from __future__ import annotations

import re

from gamead_cli.program import follow_up

#: an API path a message names (after a space, ``(`` or a backquote: not inside a URL) → the command's words
#: (``{}``: the id the path names; ``batch`` is a route, not an ad)
_PATHS: tuple[tuple[re.Pattern[str], tuple[str, ...]], ...] = (
    (re.compile(r"(?<![\w/:.])(?:GET )?/v1/jobs/(?!\{)([\w.~-]+)"), ("dlq", "jobs", "{}", "--follow")),
    (re.compile(r"(?<![\w/:.])(?:GET )?/ads/(?!batch\b|\{)([\w.~-]+)"), ("ads", "get", "{}")),
    (re.compile(r"(?<![\w/:.])GET /v1/scale\b(?!/)"), ("scale", "status")),
)


def cli_words(message: str, again: str = "") -> str:
    """``message`` (an API error's) with each API path it names to look at replaced by the gamead command that shows
    it (:data:`_PATHS`), followed by ``again`` (:func:`gamead_cli.options.reach_again`: the flags that reach the same
    API). Pure."""
    for pattern, words in _PATHS:
        message = pattern.sub(
            lambda m, w=words: follow_up(*(part.format(*m.groups()) for part in w), again=again), message)
    return message


__all__ = ["cli_words"]
