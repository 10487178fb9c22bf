"""files14: ``gamead dlq import`` streams its file (checked line by line, then read again batch by batch): from
stdin, kept in a temporary file to be read again, and over several batches, against a real API."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from gamead_cli.commands.dlq_transfer import IMPORT_BATCH_BYTES
from gamead_cli.main import app
from tests.integration.dlq_lane import Lane, made_up_entry, shared_lane  # noqa: F401 - shared_lane is a fixture

pytestmark = pytest.mark.usefixtures("isolated_env")


@pytest.fixture(scope="module")
def url(shared_lane: Lane) -> Iterator[str]:  # noqa: F811 - the fixture above
    yield shared_lane.url


def test_dlq_import_from_stdin_in_several_batches_imports_every_line(url: str) -> None:
    entries = [made_up_entry(f"Streamed Import {i}") for i in range(90)]
    text = "".join(json.dumps(e) + "\n" for e in entries)
    assert len(text) > IMPORT_BATCH_BYTES  # more than one request's worth: the file is read again per batch
    result = CliRunner().invoke(app, ["dlq", "import", "-", "--api", url, "-o", "json"], input=text)
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["lines"] == 90 and body["imported"] + body["skipped"] == 90, body
    assert body["imported"] == 90 and len(body["jobs"]) >= 2, body
