"""Run ``gamead`` with this host's wall clock off by a given number of seconds (tests of clock skew, attack33a).

``python tests/skewed_gamead.py SECONDS ARGS…``: ``time.time`` and ``time.time_ns`` read SECONDS ahead (negative:
behind) before gamead is imported, the monotonic clock untouched, as on a host whose NTP is off. Every time gamead
stamps or compares goes through those two (``gamead_core.clock``), so this is the skew a real host would show; the
kernel's clock and other processes are not touched (libfaketime is not a dependency of `make test`)."""

from __future__ import annotations

import sys
import time

if __name__ == "__main__":
    skew = float(sys.argv.pop(1))
    _time, _time_ns = time.time, time.time_ns
    time.time = lambda: _time() + skew  # type: ignore[assignment]
    time.time_ns = lambda: _time_ns() + int(skew * 1e9)  # type: ignore[assignment]
    from gamead_cli.main import main

    main()
