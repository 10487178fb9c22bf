"""Every field of the ad record an API user reads is documented: in the OpenAPI document the API serves (each
property of ``AdRecord`` and of every schema it holds has a description) and in the README's record table.

A newcomer met ``delivery`` (and ``lostIn``, ``suspect``…) in ``GET /ads/{id}`` with no word on what it is."""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

from gamead_core.api.app import create_app
from gamead_core.config import load_settings
from gamead_core.models import AdError, AdRecord, Analysis

README = Path(__file__).resolve().parents[2] / "README.md"


@functools.cache
def _schemas() -> dict[str, Any]:
    """The component schemas of the OpenAPI document the API serves, built on first use (not at collection:
    once per pytest-xdist worker)."""
    return create_app(load_settings(None), "nats://127.0.0.1:1").openapi()["components"]["schemas"]


def _refs(node: Any) -> set[str]:
    """Names of the component schemas ``node`` refers to, at any depth."""
    if isinstance(node, dict):
        found = {node["$ref"].rsplit("/", 1)[1]} if isinstance(node.get("$ref"), str) else set()
        return found.union(*(_refs(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(_refs(v) for v in node))
    return set()


def _record_schemas() -> dict[str, dict[str, Any]]:
    """``AdRecord``'s schema as served, and every object schema reachable from it."""
    seen, todo = {}, ["AdRecord"]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen[name] = _schemas()[name]
        todo.extend(_refs(_schemas()[name]) - set(seen))
    return {n: s for n, s in seen.items() if s.get("type") == "object"}


def test_every_field_of_the_record_has_a_description_in_the_served_openapi() -> None:
    schemas = _record_schemas()
    assert {"AdRecord", "AdSubmission", "Analysis", "ComponentScore", "AdError"} <= set(schemas)
    undocumented = [f"{name}.{prop}" for name, schema in schemas.items()
                    for prop, spec in schema["properties"].items() if not (spec.get("description") or "").strip()]
    assert undocumented == []
    assert "<stream sequence>.<delivery count>" in _schemas()["AdRecord"]["properties"]["delivery"]["description"]
    assert set(_schemas()["AdRecord"]["properties"]) == {f.alias or n for n, f in AdRecord.model_fields.items()}


def test_the_readme_record_table_names_every_field() -> None:
    text = README.read_text(encoding="utf-8")
    section = text.split("**The ad record**", 1)[1].split("\n\n", 2)[1]  # the table after the introduction
    named = set(re.findall(r"^\| `([A-Za-z.]+)` \|", section, re.MULTILINE))
    wire = {f.alias or n for n, f in AdRecord.model_fields.items()}
    wire |= {f"analysis.{f.alias or n}" for n, f in Analysis.model_fields.items()}
    wire |= {f"error.{f.alias or n}" for n, f in AdError.model_fields.items()}
    assert wire - named == set(), "fields missing from the README's record table"
    assert named - wire == set(), "README rows for fields the record does not have"
