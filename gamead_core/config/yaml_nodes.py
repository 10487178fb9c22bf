"""A walk over a composed YAML document (PyYAML nodes, not values), for what a config file's values cannot say: where
each key is written (its line) and whether one is written twice.

Nodes, not values: an alias is one node however often it is used, so each node is visited once and a small file of
nested aliases (a "billion laughs") cannot make a walk long.
"""

from __future__ import annotations

from collections.abc import Iterator

import yaml

#: one step of a node's path: a mapping key's text (``<tag>`` for a key that is no scalar) or a sequence index
Part = str | int


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


__all__ = ["Part", "key_part", "walk"]
