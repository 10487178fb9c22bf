"""leftovers56: httpcore asks ``import sniffio`` at each async request it makes (its locks and events), ~12 times a
second in an idle ``gamead up`` (its readiness and liveness readings). sniffio was not installed: each import
searched the whole ``sys.path`` (``strace -f -c -e trace=%file,%stat`` on an idle up for 20 s: 1,040 newfstatat,
52 a second, 4 per import); with sniffio a dependency (pyproject.toml) the import is found in ``sys.modules``
(80 in 20 s, the child checks')."""

from __future__ import annotations

import subprocess
import sys

#: httpcore's question at 3 async requests after the first, under an audit hook that sees each import that searches
PROBE = """
import asyncio, sys
from httpcore._synchronization import current_async_library

searched = []

async def main():
    current_async_library()  # the first: an import found or not
    sys.addaudithook(lambda event, args: searched.append(args[0]) if event == "import" else None)
    for _ in range(3):
        current_async_library()

asyncio.run(main())
print(searched.count("sniffio"))
"""


def test_httpcore_s_import_of_sniffio_searches_nothing_at_each_async_request() -> None:
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.split() == ["0"], done.stdout + done.stderr
