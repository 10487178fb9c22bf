"""Where a single ``POST /ads`` spends its CPU (issue 14.4), against a plain FastAPI app validating the same body.

Run from the repository root::

    .venv/bin/python benchmarks/bench_submit_profile.py            # ~30 s
    .venv/bin/python benchmarks/bench_submit_profile.py --profile  # and the top functions (cProfile)

Both apps are driven in this process through ASGI directly (no HTTP server, no sockets to the client: the
uvicorn/httptools share is the same for both and is measured by ``bench_pipeline.py``), 64 requests in flight,
alternating rounds, same bodies (``gamead_cli.generate``). gamead's app runs its real lifespan on an embedded
``nats-server`` (the publish and its ack are real). Printed: CPU µs per request of each (median of rounds) and
the ratio plain / gamead, which bounds what the HTTP server can reach with the same uvicorn in front.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fastapi import FastAPI, Request  # noqa: E402
from starlette.responses import Response  # noqa: E402

from gamead_cli.generate import generate_ads  # noqa: E402
from gamead_core.api.app import create_app  # noqa: E402
from gamead_core.config import load_settings  # noqa: E402
from gamead_core.embedded import EmbeddedNats  # noqa: E402
from gamead_core.models import AdSubmission  # noqa: E402


def plain_app() -> FastAPI:
    app = FastAPI()

    @app.post("/ads", status_code=202)
    async def submit(request: Request) -> Response:
        AdSubmission.model_validate_json(await request.body(), strict=True)
        return Response(b'{"id":"x"}', status_code=202, media_type="application/json")

    return app


async def call(app: Any, body: bytes) -> int:
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
             "scheme": "http", "path": "/ads", "raw_path": b"/ads", "query_string": b"", "root_path": "",
             "headers": [(b"host", b"bench"), (b"content-type", b"application/json"),
                         (b"content-length", str(len(body)).encode())],
             "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8080)}
    sent = False
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.sleep(3600)
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


async def rounds(app: Any, bodies: list[bytes], n: int, inflight: int = 64) -> float:
    """CPU seconds per request over ``n`` requests, ``inflight`` at a time."""
    t = time.process_time()
    for k in range(0, n, inflight):
        statuses = await asyncio.gather(*(call(app, bodies[(k + i) % len(bodies)]) for i in range(inflight)))
        assert set(statuses) == {202}, statuses
    return (time.process_time() - t) / n


async def main(args: argparse.Namespace) -> None:
    bodies = [json.dumps(a).encode() for a in generate_ads(2000, seed=5)]
    server = EmbeddedNats(Path(tempfile.mkdtemp(prefix="gamead-bench-submit-"))).start()
    try:
        gamead = create_app(load_settings(), server.url)
        plain = plain_app()
        async with gamead.router.lifespan_context(gamead):
            await asyncio.sleep(1.0)
            await rounds(gamead, bodies, 1024)
            await rounds(plain, bodies, 1024)
            g, p = [], []
            for _ in range(args.rounds):
                g.append(await rounds(gamead, bodies, args.requests))
                p.append(await rounds(plain, bodies, args.requests))
            gm, pm = statistics.median(g) * 1e6, statistics.median(p) * 1e6
            print(f"CPU per request, median of {args.rounds} rounds x {args.requests:,} (ASGI, no HTTP server):")
            print(f"  plain FastAPI, validate the body and answer 202   {pm:7.1f} µs")
            print(f"  gamead POST /ads (gate, validate, publish + ack)   {gm:7.1f} µs")
            print(f"  ratio plain / gamead: {pm / gm:.2f} (gamead spends {gm - pm:.0f} µs more per request)")
            if args.profile:
                prof = cProfile.Profile()
                prof.enable()
                await rounds(gamead, bodies, args.requests)
                prof.disable()
                pstats.Stats(prof).sort_stats("tottime").print_stats(25)
    finally:
        server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=4096)
    parser.add_argument("--profile", action="store_true")
    asyncio.run(main(parser.parse_args()))
