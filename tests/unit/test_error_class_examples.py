"""newcomer49: the README's record table and the API schema (`/docs`) gave `Timeout` as an example error class, while
workers write `TaskTimeout` (`gamead dlq list --error-class Timeout` matches nothing). Every error class they name
as an example is one an entry can carry."""

from __future__ import annotations

import re
from pathlib import Path

from gamead_core import errors
from gamead_core.models import AdError

README = Path(__file__).resolve().parents[2] / "README.md"
#: the classes a DLQ entry can carry: the task errors, and what the workers and the doctor write
REAL = {n for n, c in vars(errors).items() if isinstance(c, type) and issubclass(c, errors.TaskError)} | {
    "WorkerLost", "Unknown"}


def test_the_readme_record_tables_error_class_examples_exist() -> None:
    row = next(line for line in README.read_text(encoding="utf-8").splitlines()
               if line.startswith("| `error.errorClass` |"))
    named = set(re.findall(r"`(\w+)`", row.split("|")[2]))
    assert named and named <= REAL, named - REAL


def test_the_api_schemas_error_class_examples_exist() -> None:
    described = AdError.model_fields["error_class"].description or ""
    named = set(re.findall(r'"(\w+)"', described))
    assert named and named <= REAL, named - REAL
