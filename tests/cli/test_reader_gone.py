"""left39b item 3: ``gamead scale status | head -1`` exited 1, as a failed request does, though nothing failed but the
reader leaving (figure, before: exit 1 for every verb below, ``scale status`` the one reported). Now every verb whose
stdout's reader went away exits 141 (128 + SIGPIPE, what a coreutils tool killed by SIGPIPE shows a shell) and says
nothing: one place decides it for every verb (``gamead_cli.root``: the verbs' output all goes through its guarded
stdout). A write verb still says once what it did (``tests/cli/test_cli_odds_a32.py``).

Real ``gamead`` processes, a real API on its own NATS."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from gamead_cli import exitcodes
from gamead_core.embedded import EmbeddedNats
from tests.forked_popen import reader_gone
from tests.support import Proc, start_api

#: read verbs, table and JSON: each writes its whole output through the same stdout
VERBS = [("scale", "status"), ("scale", "status", "-o", "json"), ("ads", "list"), ("ads", "list", "-o", "json"),
         ("workers",), ("dlq", "list"), ("audit",), ("config", "show"), ("config", "show", "-o", "json")]
#: verbs that talk to no API
OFFLINE = {("config", "show"), ("config", "show", "-o", "json")}




def test_every_read_verb_whose_reader_left_exits_141_and_says_nothing(
        fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path) -> None:
    api, url = start_api(fresh_nats().url, tmp_path)
    procs.append(api)
    got = {" ".join(verb): (done.returncode, done.stderr)
           for verb in VERBS for done in [reader_gone(*verb, *(() if verb in OFFLINE else ("--api", url)))]}
    assert got == {" ".join(verb): (exitcodes.READER_GONE, "") for verb in VERBS}  # before: (1, "") each
