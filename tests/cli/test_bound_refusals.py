"""Every number of the command line refused for its range says it one way (range46): ``<what> must be <lo> to
<hi>, not <given>``, one red line, exit 2 (bad usage: README's exit codes) — whoever checked it: Typer's own
``min``/``max`` (was pydantic's ``Input should be less than or equal to 64``), a callback (was ``0 is not a number
from 0.2 to 60``) or a hand check (``scale set``'s ``the worker count must be 0 to 10,000, not …``, attack45 F9,
and ``must be at least --workers (3)``). A flag that feeds a setting (``--port``) is an invalid configuration,
exit 5, in the same sentence."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gamead_cli import exitcodes
from tests.cli.test_review_c4 import invoke, one_red_line
from tests.support import clean_env, run_gamead

pytestmark = pytest.mark.usefixtures("isolated_env")

MAX_CURSOR = f"{2**63 - 1:,}"
LONG = "9" * 5000  # more digits than Python converts (sys.get_int_max_str_digits(): 4,300)
LONG_SHOWN = "9" * 40 + "…"  # a refused text, cut to its first 40 characters

#: (command line, the sentence): every bounded option and argument, a value past each of its bounds
BOUNDED: list[tuple[str, str]] = [
    ("up --workers -1", "--workers must be 0 to 64, not -1"),
    ("up --workers 65", "--workers must be 0 to 64, not 65"),
    ("up --max-workers 0", "--max-workers must be 1 to 64, not 0"),
    ("up --max-workers 65", "--max-workers must be 1 to 64, not 65"),
    ("up --workers 3 --max-workers 2", "--max-workers must be 3 to 64, not 2"),  # was "must be at least --workers"
    ("up --concurrency 0", "--concurrency must be 1 to 1,024, not 0"),
    ("up --concurrency 1025", "--concurrency must be 1 to 1,024, not 1,025"),
    ("up --metrics-port 0", "--metrics-port must be 1 to 65,535, not 0"),
    ("up --metrics-port 65536", "--metrics-port must be 1 to 65,535, not 65,536"),
    ("worker --concurrency 0", "--concurrency must be 1 to 1,024, not 0"),
    ("worker --concurrency 1025", "--concurrency must be 1 to 1,024, not 1,025"),
    ("worker --metrics-port -1", "--metrics-port must be 0 to 65,535, not -1"),
    ("worker --metrics-port 65536", "--metrics-port must be 0 to 65,535, not 65,536"),
    ("worker --after-pid 0", "--after-pid must be at least 1, not 0"),
    ("worker --give-up-after 8d", "--give-up-after must be 0 to 7d, not 8d"),
    ("serve --give-up-after 8d", "--give-up-after must be 0 to 7d, not 8d"),
    ("doctor --sample 0", "--sample must be 1 to 1,000, not 0"),
    ("doctor --sample 1001", "--sample must be 1 to 1,000, not 1,001"),
    ("doctor --settle 11", "--settle must be 0 to 10s, not 11"),
    ("dlq list --limit 0", "--limit must be 1 to 1,000, not 0"),
    ("dlq list --limit 1001", "--limit must be 1 to 1,000, not 1,001"),
    ("dlq list --cursor -1", f"--cursor must be 0 to {MAX_CURSOR}, not -1"),
    (f"dlq list --cursor {2**63}", f"--cursor must be 0 to {MAX_CURSOR}, not {2**63:,}"),
    ("dlq list --until-seq -1", f"--until-seq must be 0 to {MAX_CURSOR}, not -1"),
    # minors50: an int past a float's range was "unexpected OverflowError" (exit 1) in the sequence's check
    (f"dlq list --until-seq {10**400}", f"--until-seq must be 0 to {MAX_CURSOR}, not {10**400:,}"),
    ("dlq list --priority 0", "--priority must be 1 to 5, not 0"),
    ("dlq purge --priority 6", "--priority must be 1 to 5, not 6"),
    ("dlq replay --priority 6", "--priority must be 1 to 5, not 6"),
    ("dlq replay --all --rate 0.0001", "--rate must be 0.001 to 100,000, not 0.0001"),
    ("dlq replay --all --rate 100001", "--rate must be 0.001 to 100,000, not 100,001"),
    ("dlq replay --all --stop-on-failure-rate -0.5", "--stop-on-failure-rate must be 0 to 1, not -0.5"),
    ("dlq replay --all --stop-on-failure-rate 1.5", "--stop-on-failure-rate must be 0 to 1, not 1.5"),
    ("dlq jobs --limit 0", "--limit must be 1 to 1,000, not 0"),
    ("dlq jobs --limit 1001", "--limit must be 1 to 1,000, not 1,001"),
    ("ads list --priority 0", "--priority must be 1 to 5, not 0"),
    ("ads list --priority 6", "--priority must be 1 to 5, not 6"),
    ("ads list --limit 0", "--limit must be 1 to 500, not 0"),
    ("ads list --limit 501", "--limit must be 1 to 500, not 501"),
    ("audit --limit 0", "--limit must be 1 to 500, not 0"),
    ("audit --limit 501", "--limit must be 1 to 500, not 501"),
    ("audit --cursor -1", f"--cursor must be 0 to {MAX_CURSOR}, not -1"),
    ("submit --duration 0", "--duration must be 1 to 600, not 0"),
    ("submit --duration 601", "--duration must be 1 to 600, not 601"),
    ("submit --priority 0", "--priority must be 1 to 5, not 0"),
    ("submit --priority 6", "--priority must be 1 to 5, not 6"),
    ("submit --count 0", "--count must be at least 1, not 0"),
    ("submit --concurrency 0", "--concurrency must be 1 to 256, not 0"),
    ("submit --concurrency 257", "--concurrency must be 1 to 256, not 257"),
    ("submit --batch-size 0", "--batch-size must be 1 to 10,000, not 0"),
    ("submit --batch-size 10001", "--batch-size must be 1 to 10,000, not 10,001"),
    ("submit --timeout 8d", "--timeout must be 0 to 7d, not 8d"),
    ("submit --rate -1", "--rate must be 0 or 0.001 to 1,000,000, not -1"),
    ("submit --rate 2000000", "--rate must be 0 or 0.001 to 1,000,000, not 2,000,000"),
    ("top --refresh 0.1", "--refresh must be 0.2s to 1m, not 0.1"),
    ("top --refresh 61", "--refresh must be 0.2s to 1m, not 61"),
    ("top --record-max-mb 0", "--record-max-mb must be 0.01 to 10,000, not 0"),
    ("top --record-max-mb 10001", "--record-max-mb must be 0.01 to 10,000, not 10,001"),
    ("scale set -1", "REPLICAS (the worker count) must be 0 to 10,000, not -1"),
    ("scale set 10001", "REPLICAS (the worker count) must be 0 to 10,000, not 10,001"),
    (f"scale set {10**400}", f"REPLICAS (the worker count) must be 0 to 10,000, not {10**400:,}"),
    ("scale set 1 --for 0", "--for must be more than 0 and at most 7d, not 0"),
    ("scale set 1 --for 8d", "--for must be more than 0 and at most 7d, not 8d"),
    # an age: no DLQ entry or audit record is older than 10 years (polish47: "dead before 1753-02-20 …" was taken)
    ("dlq purge --until 99999d --dry-run", "--until must be 0 to 3650d, not 99999d"),
    ("dlq list --since 3651d", "--since must be 0 to 3650d, not 3651d"),
    ("dlq replay --since 11y", "--since must be 0 to 3650d, not 11y"),
    ("audit --until 3651d", "--until must be 0 to 3650d, not 3651d"),
    # attack55: more digits than Python converts (4,300) was pydantic's "Unable to parse input string as an integer,
    # exceeded maximum size" (tests/unit/test_numbers_too_long.py)
    (f"ads list --limit {LONG}", f"--limit must be 1 to 500, not {LONG_SHOWN}"),
    (f"submit --priority {LONG}", f"--priority must be 1 to 5, not {LONG_SHOWN}"),
    (f"dlq list --priority -{LONG}", f"--priority must be 1 to 5, not -{LONG_SHOWN[:-2]}…"),
    (f"scale set {LONG}", f"REPLICAS (the worker count) must be 0 to 10,000, not {LONG_SHOWN}"),
    (f"submit --count -{LONG}", f"--count must be at least 1, not -{LONG_SHOWN[:-2]}…"),
    # past no bound it has (--count is at least 1, and it is): said in digits
    (f"submit --count {LONG}", "--count has 5,000 digits; gamead reads numbers of at most 4,300 digits"),
]


@pytest.mark.parametrize(("line", "sentence"), BOUNDED, ids=[line[:60] for line, _ in BOUNDED])
def test_a_number_past_its_bound_is_one_sentence_and_exit_2(line: str, sentence: str) -> None:
    code, out, err = invoke(*line.split())
    assert code == exitcodes.USAGE, err
    words = line.split()
    verb = " ".join(words[:2] if words[0] in ("ads", "dlq", "scale") else words[:1])
    assert one_red_line(err) == f"error: {sentence} (see `gamead {verb} --help`)"
    assert out == ""


def test_under_json_the_document_says_the_same_sentence() -> None:
    code, out, err = invoke("ads", "list", "--limit", "0", "-o", "json")
    assert code == exitcodes.USAGE
    assert json.loads(out)["error"] == {"code": "bad_usage", "exitCode": 2,
                                        "message": "--limit must be 1 to 500, not 0 (see `gamead ads list --help`)"}


@pytest.mark.parametrize("verb", ["up", "serve"])
def test_a_port_flag_past_its_bound_is_bad_usage_as_every_flag_and_its_variable_a_configuration_error(
        verb: str, tmp_path: Path) -> None:
    """``--port`` feeds ``api.port``, whose bound (pydantic ``le=65535``) refuses it: bad usage, exit 2, naming the
    flag, as ``--metrics-port 99999`` (attack57b: ``up --port 99999`` was exit 5 ``invalid configuration: api.port (a
    command-line option) …``, ``--metrics-port 99999`` exit 2: 2 of 2 verbs exit 5 before, 0 now). The same value
    from ``GAMEAD_API__PORT`` is the configuration's, exit 5, naming the variable."""
    done = run_gamead(verb, "--port", "70000", env=clean_env(), cwd=tmp_path, timeout=60)
    assert done.returncode == exitcodes.USAGE, done.stderr
    assert done.stderr.strip() == f"error: --port must be 0 to 65,535, not 70,000 (see `gamead {verb} --help`)"
    if verb == "up":  # up's own flag, no setting: the same exit and sentence
        metrics = run_gamead(verb, "--metrics-port", "70000", env=clean_env(), cwd=tmp_path, timeout=60)
        assert (metrics.returncode, metrics.stderr.strip()) == (exitcodes.USAGE, "error: --metrics-port must be 1 to "
                                                                "65,535, not 70,000 (see `gamead up --help`)")
    by_env = run_gamead(verb, env=clean_env(GAMEAD_API__PORT="70000"), cwd=tmp_path, timeout=60)
    assert by_env.returncode == exitcodes.CONFIG, by_env.stderr
    assert by_env.stderr.strip() == ("error: invalid configuration: api.port (GAMEAD_API__PORT=70000) must be 0 to "
                                     "65,535, not 70,000")
