"""A walk over a composed YAML document (PyYAML nodes, not values), for what a config file's values cannot say: where
each key is written (its line) and whether one is written twice.

Nodes, not values: an alias is one node however often it is used, so each node is visited once and a small file of
nested aliases (a "billion laughs") cannot make a walk long.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator

import yaml

from gamead_core.bound_text import past_int_digits

#: one step of a node's path: a mapping key's text (``<tag>`` for a key that is no scalar) or a sequence index
Part = str | int


#: PyYAML's libyaml-backed loader where it is installed (the wheels ship it): composing 1 MiB of YAML takes
#: ~1.6 s of CPU with it against ~11.5 s in pure Python (400,000 list items); libyaml refuses nesting past 1,000.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def compose(text: str) -> yaml.Node | None:
    """The node tree of the YAML ``text`` (None: an empty document), composed with libyaml where installed.
    Raises ``yaml.YAMLError`` (not YAML, or nested too deeply) or ``RecursionError`` (the pure-Python loader)."""
    return yaml.compose(text, Loader=_LOADER)


_NODE_EVENTS = (yaml.ScalarEvent, yaml.SequenceStartEvent, yaml.MappingStartEvent, yaml.AliasEvent)


def count_nodes(text: str, limit: int) -> int:
    """How many nodes (keys, values, list items, aliases) the YAML ``text`` holds, read as a stream of parse
    events and counted no further than ``limit + 1``: a file over ``limit`` is told without building its tree
    (400,000 list items as nodes took ~230 MB). Raises ``yaml.YAMLError`` if ``text`` is not YAML before that."""
    seen = 0
    for event in yaml.parse(text, Loader=_LOADER):
        if isinstance(event, _NODE_EVENTS):
            seen += 1
            if seen > limit:
                break
    return seen


def key_part(key: yaml.Node) -> str:
    """A mapping key node as one step of a path: its text, or ``<tag>`` for a key that is no scalar."""
    return str(key.value) if isinstance(key, yaml.ScalarNode) else f"<{key.id}>"


def walk(root: yaml.Node | None) -> Iterator[tuple[tuple[Part, ...], yaml.Node]]:
    """Every node under ``root`` (a ``yaml.compose`` result; None: an empty document) once, with its path from the
    root: mapping keys (:func:`key_part`) and sequence indexes."""
    stack: list[tuple[yaml.Node, tuple[Part, ...]]] = [(root, ())] if root is not None else []
    seen: set[int] = set()
    while stack:
        node, where = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        yield where, node
        if isinstance(node, yaml.MappingNode):
            stack.extend((value, (*where, key_part(key))) for key, value in node.value)
        elif isinstance(node, yaml.SequenceNode):
            stack.extend((item, (*where, i)) for i, item in enumerate(node.value))


#: an int PyYAML (YAML 1.1) reads in base 8: written with a leading zero (``010`` is 8, ``030`` is 24), which YAML 1.2,
#: JSON and the ``GAMEAD_*`` variables read in base 10 (``GAMEAD_WORKER__CONCURRENCY=010`` is 10)
_OCTAL = re.compile(r"[-+]?0[0-7_]+")
OCTAL_WORDS = ("a number written with a leading 0 is octal in YAML (030 is read as 24): write it without the 0, or "
               "in quotes if it is text ('030')")


def misread_number(root: yaml.Node | None) -> tuple[tuple[Part, ...], int, str] | None:
    """The first value under ``root`` that YAML 1.1 reads as an int other than as written: ``(its path, its line
    from 1, what is wrong)``; None if there is none.

    * an octal int, :data:`OCTAL_WORDS`. A quoted ``'010'`` is text, not such a number (attack46 F4:
      ``queue.ack_wait: 030`` ran with 24 s and ``worker.concurrency: 010`` with 8, not a word said);
    * an int of more digits than Python converts (``sys.get_int_max_str_digits()``, 4,300): PyYAML's ``ValueError``
      was said as ``config file … must hold a mapping of sections at the top level`` (attack55)."""
    for where, node in walk(root):
        if isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:int" and not node.style:
            if _OCTAL.fullmatch(node.value):
                return where, node.start_mark.line + 1, OCTAL_WORDS  # never the value: it may be a secret's
            digits = sum(c.isdigit() for c in node.value)  # base 10 (0x, 0b: a power of 2's base has no limit)
            if past_int_digits(digits) and not node.value.lstrip("+-").startswith(("0x", "0b")):
                return where, node.start_mark.line + 1, (f"a number of {digits:,} digits, past any bound a setting "
                                                         f"has (Python reads at most {sys.get_int_max_str_digits():,} "
                                                         "digits)")
    return None


__all__ = ["Part", "compose", "count_nodes", "key_part", "misread_number", "OCTAL_WORDS", "walk"]
