"""What a setting of 0 means, said beside it by ``gamead config show``: ``give_up_after: 0.0s  # 0 = keep trying for
ever`` (newcomer49: ``give_up_after: 0.0s`` alone read as "give up at once"). The meaning is the setting's own
description's (``… 0 = keep trying for ever, with a WARNING …``: up to its first ``, with``, ``;``, parenthesis or
sentence end), so the help and this note say one thing. A YAML comment: the output reads back as it was. Pure."""

from __future__ import annotations

import re
from typing import Any

#: ``0 = <meaning>`` in a setting's description, the meaning ending at ``, with``, ``;``, a parenthesis or ``. ``
_ZERO = re.compile(r"\b0 = (.+?)(?:, with |[;()]|\. |\.$|$)")
_KEY = re.compile(r"^( *)([A-Za-z0-9_]+):")


def zero_meanings(settings: Any, data: Any, path: tuple[str, ...] = ()) -> dict[tuple[str, ...], str]:
    """``{("nats", "give_up_after"): "keep trying for ever"}``: each setting of ``settings`` (a pydantic settings
    tree; ``data`` its plain dump) whose value is 0 and whose description says what 0 means. Pure."""
    from pydantic import BaseModel

    if not isinstance(settings, BaseModel) or not isinstance(data, dict):
        return {}
    found: dict[tuple[str, ...], str] = {}
    fields = type(settings).model_fields
    for key, value in data.items():
        field = fields.get(key)
        if isinstance(value, dict):
            found.update(zero_meanings(getattr(settings, key, None), value, (*path, key)))
        elif (field is not None and isinstance(value, (int, float)) and not isinstance(value, bool) and value == 0
              and (said := _ZERO.search(field.description or ""))):
            found[(*path, key)] = said.group(1).strip()
    return found


def with_zero_notes(text: str, meanings: dict[tuple[str, ...], str]) -> str:
    """``text`` (a block-style YAML dump, two spaces a level) with ``  # 0 = <meaning>`` after the line of each
    setting in ``meanings``. Pure."""
    out, stack = [], []
    for line in text.splitlines(keepends=True):
        if (key := _KEY.match(line)) is not None:
            depth = len(key.group(1)) // 2
            stack = [*stack[:depth], key.group(2)]
            if (meaning := meanings.get(tuple(stack))) is not None:
                line = f"{line.rstrip(chr(10))}  # 0 = {meaning}\n"
        out.append(line)
    return "".join(out)


__all__ = ["with_zero_notes", "zero_meanings"]
