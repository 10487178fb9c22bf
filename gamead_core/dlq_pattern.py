"""The ``message`` filter of DLQ verbs: an RE2 pattern, compiled one way by the API (:class:`gamead_core.queue.dlq.
DlqFilter`) and by the CLI before it sends one (``gamead dlq … --message``), so a pattern the API would refuse
(422) is a usage error (exit 2) before any request. Imports only ``re2``: a client command stays light.
"""

from __future__ import annotations

from typing import Any

import re2

#: Longest ``message`` filter accepted (characters).
MAX_PATTERN = 1000
#: Memory RE2 may use to compile one pattern; a pattern that needs more is refused (422), never slow.
PATTERN_MAX_MEM = 8 << 20


def compile_pattern(pattern: str) -> Any:
    """Compile an operator's ``message`` filter with RE2 (linear-time matching, bounded memory).

    Raises ValueError (with RE2's reason) for a pattern longer than :data:`MAX_PATTERN`, one RE2 cannot
    parse (e.g. look-behind ``(?<=…)`` or back-references, which need backtracking) or one that needs more
    than :data:`PATTERN_MAX_MEM` to compile. Syntax: https://github.com/google/re2/wiki/Syntax.
    """
    if len(pattern) > MAX_PATTERN:
        raise ValueError(f"the pattern is {len(pattern)} characters; the limit is {MAX_PATTERN}")
    options = re2.Options()
    options.log_errors = False  # RE2 would print to stderr, outside the JSON logs
    options.max_mem = PATTERN_MAX_MEM
    try:
        return re2.compile(pattern, options)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise ValueError(f"not a valid RE2 regular expression: {reason}") from None
