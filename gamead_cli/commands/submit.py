"""Submit game ads for analysis: one from a file, stdin or flags, or many generated ones.

[bold]Examples[/bold]

  gamead submit ad.json --wait
  cat ad.json | gamead submit - --priority 1
  gamead submit -t "Sky Saga" -g RPG --wait
  gamead submit -t "Sky Saga" -d "Epic RPG" -g rpg --cta "Play" --duration 30
  gamead submit --count 1000 --rate 200 --wait -o json
  gamead submit ads.ndjson --wait

A JSON file may also hold an array of ads: it is sent as a batch, as an NDJSON file, each ad named by its jq
path (ads.json[0]). With -o json, a batch (NDJSON, an array, --count) lists each of its first 10,000 ads in
input order: items (where, outcome accepted / duplicate / maybeQueued with its id, or rejected with code and
message) and acceptedIds; later ads are counted, not listed (itemsOmitted), so an endless stdin keeps memory
flat. One ad prints its 202 body, with its id.

An ad built from flags needs --title and --genre; the rest has defaults (description from the title and
genre, --cta "Play now", --duration 30, --priority 3). --count and NDJSON files (one ad a line) are sent
with POST /ads/batch, --batch-size ads a request: if the API's api.batch_max is smaller (422
batch_too_large), each refused batch is split to that size and resent (a refused batch queued nothing, so no ad
is sent twice) and the rest go at that size. Each rejected ad is named on stderr (FILE:LINE or "ad N": code:
message, field paths for validation_failed; the first 20 in input order, then "… and N more") and in -o json
(rejections, rejectionsNotListed). An ad whose publish got no answer in time (503 queue_unavailable naming
its id) is not rejected: before the summary the client looks each up (GET /ads/ID, within 30 s): "queued
(found)", or "not queued" (no such ad: safe to resend; its FILE:LINE ranges named), or, unsettled, "may be
queued" (ids in -o json, maybeQueuedIds; ranges named); so is every ad of a batch that got no answer at all (ids unknown:
maybeQueuedUnknown; with --idempotency-key, their keys in maybeQueuedKeys, and the same command with the same key
settles them). An API gone away during a run (connection refused) pauses the sending and the --rate schedule,
said on stderr when it begins and ends; still unreachable after client.retry_for, the sending stops (the ads
out and the rest not sent, never queued): a run lasts N/R s plus its pauses. Ctrl-C during --count prints
what was sent so far. The keys --idempotency-key KEY gives
many ads go by position (KEY-<index of the ad in the input, from 0, blank lines not counted>): the same command
on the same input settles a run, but a line deleted, blanked, inserted or moved shifts every later key (an ad
queued twice, the next ones refused idempotency_key_reused, which the line then names as the likely cause).

Exit codes: 0 ok, 1 rejected, may be queued, not queued or timed out, 2 bad usage or a file missing or not JSON,
3 API unreachable, 6 an ad failed (--wait), 130 interrupted (Ctrl-C; SIGTERM 143 and SIGHUP 129 alike: the
summary says what was sent, up to which line).
"""

from __future__ import annotations

from typing import Annotated

import typer

from gamead_cli import exitcodes
from gamead_cli.ad_fields import with_overrides
from gamead_cli.client import ApiClient
from gamead_cli.inputs import input_name
from gamead_cli.options import (
    ApiOpt, ConfigOpt, OutputFormat, OutputOpt, WaitTimeoutOpt, bounded_float, client_settings_from, reach_again,
)
from gamead_cli.stops import signals_interrupt, stopped_by
from gamead_cli.submit.batches import BATCH_SIZE
from gamead_cli.submit.reading import (
    ad_from_flags,
    ads_of_array,
    complete_flag_ad,
    count_ndjson,
    first_read,
    generated_ads,
    is_ndjson,
    load_ad_input,
    read_ndjson,
)
from gamead_cli.submit.runs import submit_bulk, submit_one


def idempotency_key_arg(value: str | None) -> str | None:
    """``--idempotency-key KEY`` checked by the API's own rule (:func:`gamead_core.ids.idempotency_key_problem`)
    before anything is sent: a key the API would refuse (``a,b``: 400 ``duplicate_header``; ``ключ``: not printable
    ASCII, which httpx cannot even put in a header) is bad usage, exit 2,
    one line naming the flag."""
    from gamead_core.ids import idempotency_key_problem

    if value is not None and (problem := idempotency_key_problem(value)) is not None:
        raise typer.BadParameter(f"{value[:60]!r}: {problem}", param_hint="--idempotency-key")
    return value


#: bounds of ``--rate`` (ads per second; 0 = as fast as possible): slower than one ad in 1000 s is no rate
MIN_RATE = 0.001
MAX_RATE = 1_000_000.0


def submit(
    file: Annotated[
        str | None,
        typer.Argument(
            metavar="FILE",
            help="JSON file with one ad (spec fields, camelCase) or an array of ads, or NDJSON (one ad a line: "
            "*.ndjson, *.jsonl or --ndjson); several ads go in batches; '-' reads stdin. Flags override it.",
            show_default=False,
        ),
    ] = None,
    title: Annotated[str | None, typer.Option("--title", "-t", help="Ad title.")] = None,
    description: Annotated[str | None, typer.Option("--description", "-d", help="Ad description.")] = None,
    genre: Annotated[str | None, typer.Option("--genre", "-g", help="Game genre, e.g. rpg.")] = None,
    audience: Annotated[
        list[str] | None, typer.Option("--audience", "-a", help="Target audience; repeat for several.")
    ] = None,
    visual: Annotated[
        list[str] | None, typer.Option("--visual", help="Visual element; repeat for several.")
    ] = None,
    cta: Annotated[str | None, typer.Option("--cta", help="Call to action, e.g. 'Download now'.")] = None,
    duration: Annotated[
        int | None, typer.Option("--duration", min=1, max=600, help="Ad length in seconds (1-600).")
    ] = None,
    priority: Annotated[
        int | None,
        typer.Option("--priority", "-p", min=1, max=5, help="1 most urgent … 5 least (default 3)."),
    ] = None,
    idempotency_key: Annotated[
        str | None,
        typer.Option(
            "--idempotency-key",
            help="Resubmitting with the same key returns the first ad (duplicate=true)."
            " With --count or a file of several ads: KEY-0, KEY-1, … by position (the Nth ad of the input, from 0;"
            " blank lines not counted): between runs fix a bad line in place (or replace it by {}), never delete,"
            " blank, insert or reorder lines. 1-200 printable ASCII characters, no comma.",
            callback=idempotency_key_arg,
        ),
    ] = None,
    wait: Annotated[
        bool,
        typer.Option("--wait", "-w", help="Wait until analysed, then show the analysis (exit 6 if failed)."),
    ] = False,
    timeout: WaitTimeoutOpt = "60s",
    count: Annotated[
        int | None,
        typer.Option(
            "--count", "-n", min=1, help="Send N generated ads (flags/file fields override theirs)."
        ),
    ] = None,
    rate: Annotated[
        float, typer.Option("--rate", "-r", callback=bounded_float(MIN_RATE, MAX_RATE, zero=True),
                            help=f"With --count: ads per second, {MIN_RATE:g} to {MAX_RATE:,.0f}; 0 = max.")
    ] = 0.0,
    concurrency: Annotated[
        int, typer.Option("--concurrency", min=1, max=256, help="With --count: requests in flight.")
    ] = 16,
    seed: Annotated[int, typer.Option("--seed", help="With --count: seed of the generated ads.")] = 0,
    ndjson: Annotated[
        bool, typer.Option("--ndjson", help="FILE holds one ad a line (implied by *.ndjson, *.jsonl).")
    ] = False,
    batch_size: Annotated[
        int,
        typer.Option("--batch-size", min=1, max=10_000,
                     help="With --count or NDJSON: ads per POST /ads/batch request; a batch over the API's api.batch_max "
                          "is split to it and resent (nothing is sent twice)."),
    ] = BATCH_SIZE,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Print only the ad's id, e.g. ID=$(gamead submit … -q).")
    ] = False,
    output: OutputOpt = OutputFormat.table,
    api: ApiOpt = None,
    config: ConfigOpt = None,
) -> None:
    flags = ad_from_flags(
        title=title,
        description=description,
        genre=genre,
        audience=audience,
        visual=visual,
        cta=cta,
        duration=duration,
        priority=priority,
    )
    bulk_file = is_ndjson(file, ndjson)
    if bulk_file and not file:
        raise typer.BadParameter("--ndjson reads FILE ('-' for stdin): give one", param_hint="--ndjson")
    if bulk_file and count is not None:
        raise typer.BadParameter("sends generated ads: it does not go with an NDJSON file", param_hint="--count")
    if count is None and not file and not flags:
        raise typer.BadParameter(
            "nothing to submit: give a JSON file, '-' for stdin, field flags (--title …), or --count N"
        )
    try:  # stdin (or a FIFO) waits on its writer: a stop there has the command started, reading (leftovers56)
        loaded = load_ad_input(file) if file and not bulk_file else {}
    except KeyboardInterrupt:  # before, "… while gamead submit was starting: nothing was sent"
        raise exitcodes.Interrupted(f"interrupted ({stopped_by()}) while reading {input_name(file)}: "
                                    "nothing was sent") from None
    array = loaded if isinstance(loaded, list) else None  # a JSON array of ads: sent as a batch, as NDJSON
    if array is not None and count is not None:
        raise typer.BadParameter("sends generated ads: it does not go with a file of several ads", param_hint="--count")
    overrides = with_overrides(loaded if isinstance(loaded, dict) else {}, flags)
    if count is None and not file:
        overrides = complete_flag_ad(overrides)
    if quiet and (count is not None or bulk_file or array is not None):
        source = "stdin" if str(file) == "-" else file  # attack54: it said '--count' for a file
        given = ("--count" if count is not None else f"{source}, an array of ads" if array is not None
                 else f"{source}, read as NDJSON (any number of ads)")
        raise typer.BadParameter(f"prints the id of one ad: it does not go with {given}", param_hint="--quiet")

    settings = client_settings_from(config, api)  # --api, env, config, else the stack running here
    # SIGTERM / SIGHUP as Ctrl-C: the summary says what was sent (gamead_cli.stops)
    with signals_interrupt(), ApiClient.from_settings(settings.client, max_connections=concurrency) as client:
        client.again = reach_again(api, config, client.api_url)
        if count is None and not bulk_file and array is None:
            code = submit_one(client, overrides, idempotency_key=idempotency_key, wait=wait, timeout=timeout,
                              output=output, quiet=quiet)
        else:
            if array is not None:
                assert file is not None
                labelled = ads_of_array(file, array, flags)
                total, ads = len(labelled), iter(labelled)
            elif bulk_file:
                assert file is not None
                try:
                    ads = first_read(read_ndjson(file, overrides))  # a file that is not NDJSON: refused first,
                    total = count_ndjson(file)  # before the count reads it whole (by bytes: attack40a F3)
                except KeyboardInterrupt:  # before the first ad is sent (a stream of blank lines): as README says
                    raise exitcodes.Interrupted(f"interrupted ({stopped_by()}): nothing was sent") from None
            else:
                assert count is not None
                total, ads = count, generated_ads(count, seed, overrides)
            if idempotency_key and total:  # the API's rule holds for the longest key sent, KEY-(N-1), too
                idempotency_key_arg(f"{idempotency_key}-{total - 1}")
            code = submit_bulk(
                client,
                ads,
                count=total,
                rate=rate,
                concurrency=concurrency,
                idempotency_key=idempotency_key,
                wait=wait,
                timeout=timeout,
                output=output,
                batch_size=batch_size,
                live=bulk_file and file == "-",  # a stream: a batch goes out when it pauses, not only when full
                lookup_for=settings.client.lookup_for,
            )
    if code != exitcodes.OK:
        raise typer.Exit(code)
