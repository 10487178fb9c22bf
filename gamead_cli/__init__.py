"""The ``gamead`` command line (``python -m gamead_cli``).

``import httpx`` loads httpx's own command line (``httpx._main``: click, rich.syntax and pygments' lexer table)
whenever click and rich are installed, as they are beside Typer: ~50 ms of CPU in every command and process of
ours, for a ``main`` gamead never runs. Marked absent here, before any module of ours imports httpx, httpx keeps its
fallback ``main`` and everything else."""

import sys

sys.modules.setdefault("httpx._main", None)  # type: ignore[assignment]
