"""The end-of-run summary of ``gamead submit --count`` says what its rate is (rule 7: every figure printed says
what it is). A stall drill of session 17 printed ``rate 642.8 ads/s`` under ``accepted 0``: the rate was of ads
sent, read as throughput."""

from __future__ import annotations

from rich.console import Console

from gamead_cli.submit.views import sent_note, summary_view


def _text(summary: dict[str, object]) -> str:
    console = Console(width=160, record=True, color_system=None)  # a row whole on its line (units46: 4 cells more)
    console.print(summary_view(summary))
    return console.export_text()


def test_a_run_nothing_was_accepted_of_says_its_rate_was_of_ads_sent_and_none_accepted() -> None:
    text = _text({"sent": 3000, "accepted": 0, "duplicates": 0, "rejected": 3000,
                  "rejectedByCode": {"queue_unavailable": 3000},
                  "elapsedSeconds": 16.96, "ratePerSecond": 176.9, "acceptedPerSecond": 0.0})
    assert "176.9 ads/s sent, 0.0 ads/s accepted" in text


def test_a_run_every_ad_was_accepted_of_gives_one_rate_with_its_target() -> None:
    text = _text({"sent": 100, "accepted": 98, "duplicates": 2, "elapsedSeconds": 2.01, "ratePerSecond": 49.6,
                  "acceptedPerSecond": 49.6, "targetRate": 50})
    assert "49.6 ads/s sent (target 50)" in text and "ads/s accepted" not in text


def test_the_line_of_a_lost_stdout_names_the_ads_not_sent_itself() -> None:
    """regress40 F6: an interrupted bulk submit whose stdout was closed said its 2,740 ads not sent were in "the
    summary's not sent row, -o json notSentWhere": no summary was written, and notSentWhere lists only those the stop
    caught. The line now names them: those caught (their lines) and the input after the last ad sent."""
    note = sent_note({"sent": 260, "accepted": 260, "duplicates": 0, "rejected": 0,
                      "rejectedByCode": {}, "notSent": 2740,
                      "notSentCaught": 6, "notSentWhere": ["ads.ndjson:261-266"], "lastSent": "ads.ndjson:260",
                      "stoppedBecause": "interrupted (Ctrl-C)"})
    assert "not sent row" not in note and "2,740 ads (stopped: interrupted (Ctrl-C); none of these is queued" in note
    assert "6 caught by the stop: lines ads.ndjson:261-266" in note
    assert "2,734 never sent: the input after ads.ndjson:260" in note


def test_its_durations_are_printed_as_every_duration_a_command_prints() -> None:
    """regress44 F1: a 2-ad ``gamead submit ads.ndjson --wait`` printed ``elapsed 0.05 s`` and ``latency p50 0.00 s
    · p95 0.01 s``: a p50 of "0.00 s" says nothing. The README says every duration a command prints is
    ``durations.format_duration``'s (``350ms`` under a second, ``2m05s``). Without the fix this test fails (``0.05 s``);
    with it, it passes."""
    text = _text({"sent": 2, "accepted": 2, "duplicates": 0, "elapsedSeconds": 0.05, "ratePerSecond": 38.4,
                  "acceptedPerSecond": 38.4, "completed": 2, "failed": 0, "dead": 0,
                  "latencyP50Seconds": 0.004, "latencyP95Seconds": 0.012})
    words = " ".join(text.split())
    assert "elapsed 50ms" in words and "latency p50 4ms · p95 12ms (submit → completed)" in words
    assert "elapsed 2m05s" in " ".join(_text({"sent": 25060, "accepted": 25060, "elapsedSeconds": 125.3,
                                               "ratePerSecond": 200.0}).split())


def test_every_count_of_the_summary_and_its_red_line_has_thousands_separators() -> None:
    """attack45 F8: `gamead submit --count 100000 --rate 100`, Ctrl-C: `sent 360`, `not sent 99640 (… 99640 never
    sent …)` and `interrupted (Ctrl-C): 360 of 100000 ad(s) sent`, beside `not listed 1,234` in the same panel
    (regress44 F7: every count the CLI prints has them)."""
    from gamead_cli.submit.views import interrupted_line

    summary = {"sent": 12000, "accepted": 10500, "duplicates": 1200, "rejected": 1100,
               "rejectedByCode": {"validation_failed": 1100},
               "maybeQueued": 1500, "maybeQueuedLost": {"timeout": 1500}, "notSent": 88000, "notSentCaught": 0,
               "lastSent": "ad 12000", "stoppedBecause": "interrupted (Ctrl-C)", "elapsedSeconds": 120.0,
               "ratePerSecond": 100.0, "acceptedPerSecond": 87.5, "completed": 9000, "failed": 1500, "dead": 0}
    text = " ".join(_text(summary).split())
    for row in ("sent 12,000 ads", "accepted 10,500 ads", "duplicates 1,200 ads",
                "rejected 1,100 ads (validation_failed 1,100)", "may be queued 1,500 ads",
                "not sent 88,000 ads (stopped",
                "88,000 never sent", "completed 9,000 ads", "failed/dead 1,500 ads"):
        assert row in text, (row, text)
    assert interrupted_line(summary, 100000).startswith("interrupted (Ctrl-C): 12,000 of 100,000 ad(s) sent")
    assert "12,000 sent, 10,500 accepted, 1,200 duplicates, 1,100 rejected" in sent_note(summary)


def test_the_rate_row_has_thousands_separators_and_its_target_as_given() -> None:
    """regress45: `gamead submit --count 3000 --rate 1000000` said `rate 7449.4 ads/s sent (target 1e+06)`, and a
    batch refused bigger `batch size 10000 ads a request`, beside counts with separators in the same panel."""
    summary = {"sent": 3000, "accepted": 1000, "duplicates": 0, "rejected": 2000,
               "rejectedByCode": {"validation_failed": 2000},
               "elapsedSeconds": 0.4, "ratePerSecond": 7449.4, "acceptedPerSecond": 2483.1, "targetRate": 1000000.0,
               "batchSize": 10000}
    text = " ".join(_text(summary).split())
    assert "rate 7,449.4 ads/s sent (target 1,000,000), 2,483.1 ads/s accepted" in text, text
    assert "batch size 10,000 ads a request" in text, text
    assert "(target 0.001)" in " ".join(_text({**summary, "targetRate": 0.001}).split())


def test_every_count_of_the_summary_says_it_counts_ads() -> None:
    """units46: the summary of `gamead submit --count 200` said `sent 200`, `accepted 200`, `duplicates 0`,
    `rejected 0`: 200 of what (a batch is a request of many ads). Each count says `ads` (`1 ad`), as its rate row
    says `ads/s`. Without the fix: `sent 200 ads` not in the panel."""
    summary = {"sent": 200, "accepted": 199, "duplicates": 1, "rejected": 0,
               "rejectedByCode": {}, "elapsedSeconds": 4.0,
               "ratePerSecond": 50.0, "completed": 1, "failed": 0, "dead": 0, "pending": 198}
    text = " ".join(_text(summary).split())
    for row in ("sent 200 ads", "accepted 199 ads", "duplicates 1 ad", "rejected 0 ads", "completed 1 ad",
                "failed/dead 0 ads", "still pending 198 ads", "rate 50.0 ads/s sent", "elapsed 4.0s"):
        assert row in text, (row, text)


def test_the_ways_the_may_be_queued_ads_were_lost_are_counted_with_thousands_separators() -> None:
    """attack52: `gamead submit --count 3000 --rate 1000` with the API SIGSTOPped 1.5 s in (then killed and restarted
    by `gamead up`): `may be queued 3,000 ads (1600 no answer in time, 1400 connection reset before the answer
    came, …)`: the row's own count had separators, its two parts none."""
    summary = {"sent": 3000, "accepted": 0, "duplicates": 0, "maybeQueued": 3000,
               "maybeQueuedLost": {"timeout": 1600, "reset": 1400}, "maybeQueuedWhere": ["ad 1-3000"],
               "elapsedSeconds": 13.0, "ratePerSecond": 238.5, "acceptedPerSecond": 0.0}
    text = " ".join(_text(summary).split())
    assert "may be queued 3,000 ads (1,600 no answer in time, 1,400 connection reset before the answer came" in text


def test_an_interrupted_count_run_says_how_to_send_the_rest() -> None:
    """newcomer56: `gamead submit --count 1000 --rate 10`, SIGTERM after 60: `… the input up to ad 60 (none after
    it); resume from the ad after it` — no flag starts --count's generated ads at 61. Now it names the command's
    change that sends the rest; a file's line still says to resume after its line."""
    from gamead_cli.submit.views import interrupted_line

    counted = {"sent": 60, "accepted": 60, "lastSent": "ad 60", "notSent": 940}
    said = interrupted_line(counted, 1000)
    assert "the input up to ad 60 (none after it); to send the 940 not sent, run it again with --count 940" in said
    assert "resume from the ad after it" not in said
    filed = interrupted_line({"sent": 600, "lastSent": "ads.ndjson:600", "notSent": 1400}, 2000)
    assert filed.endswith("(none after it); resume from the ad after it (next time give --idempotency-key KEY: the "
                          "same command again then queues none twice)")
    keyed = interrupted_line({**counted, "idempotencyKey": "run7"}, 1000)
    assert keyed.endswith("; the same command with the same --idempotency-key resumes, queueing none twice")
