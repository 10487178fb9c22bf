"""The API's error messages in a CLI user's words: where a message names an API path to look at (``follow it at
/v1/jobs/01jb…``, ``GET /ads/01m8… tells``), the red line names the gamead command that shows the same
(``gamead dlq jobs 01jb… --follow --api …``, ``gamead ads get 01m8… --api …``), as every hint of the CLI does
(leftout59: ``doctor --repair`` during another repair said ``follow it at /v1/jobs/ID`` to a CLI user). So do the
other texts of the API the CLI prints: ``gamead doctor``'s findings and notes (``GET /ads/{id} then answers it`` →
``gamead ads get ID … then answers it``: leftout60), a job's ``stopReason`` and ``waiting``. An API client reads
the API's own words; a path with no gamead command (``POST /ads/batch``) is left as it is. Pure."""

from __future__ import annotations

import re

from gamead_cli.program import follow_up

#: an id in a path: one (``01m8…``), or a template's name (``{id}``, ``{ad_id}``: a doctor finding's
#: ``GET /ads/{id}``)
_ID = r"(\{\w+\}|[\w.~-]+)"

#: an API path a message names (after a space, ``(`` or a backquote: not inside a URL) → the command's words
#: (``{}``: the id the path names; ``batch`` is a route, not an ad)
_PATHS: tuple[tuple[re.Pattern[str], tuple[str, ...]], ...] = (
    (re.compile(rf"(?<![\w/:.])(?:GET )?/v1/jobs/{_ID}"), ("dlq", "jobs", "{}", "--follow")),
    (re.compile(rf"(?<![\w/:.])(?:GET )?/ads/(?!batch\b){_ID}"), ("ads", "get", "{}")),
    (re.compile(r"(?<![\w/:.])GET /v1/scale\b(?!/)"), ("scale", "status")),
)


def _id(named: str) -> str:
    """The id a path names as the command takes it: a template's name in the README's form (``{id}`` → ``ID``, not
    quoted: a placeholder, not an argument). Pure."""
    return named[1:-1].upper().removeprefix("AD_") if named.startswith("{") else named


def cli_words(message: str, again: str = "") -> str:
    """``message`` (an API error's) with each API path it names to look at replaced by the gamead command that shows
    it (:data:`_PATHS`), followed by ``again`` (:func:`gamead_cli.options.reach_again`: the flags that reach the same
    API). Pure."""
    for pattern, words in _PATHS:
        message = pattern.sub(lambda m, w=words: follow_up(
            *(part.format(*map(_id, m.groups())) for part in w), again=again), message)
    return message


__all__ = ["cli_words"]
