"""Client text that can never restyle an operator's terminal: what the API refuses, and how stored text is shown.

Two rules, one module (the API's input check and every CLI and dashboard print site use these):

* **refused on input** (:func:`refused_char`): characters a terminal or a text renderer *obeys*, acting on the
  text around them: C0 controls but tab, LF and CR (U+0000-U+001F), DEL and the C1 controls (U+007F-U+009F:
  U+009B is CSI, U+009D OSC, U+009C ST, which xterm-style terminals obey as ``ESC [``, ``ESC ]``, ``ESC \\``),
  and the bidi embedding, override and isolate controls (U+202A-U+202E, U+2066-U+2069), which reorder
  whole runs of text (U+202E makes ``exe.txt`` read ``txt.exe``). Kept: what legitimate text needs: the
  emoji joiner U+200D, the non-joiner U+200C, the directional marks U+200E, U+200F, U+061C (RTL scripts set
  one neutral character with them, they reorder nothing else), combining marks, variation selectors, RTL
  letters. Also kept, as inert though invisible: U+200B (zero-width space: the word-break hint of Thai, Khmer,
  Lao and Myanmar text), U+FEFF (a stray byte-order mark: it moves nothing), U+2028/U+2029 (line and
  paragraph separators: texts already take LF and CR). Display escapes those (below), so they never hide.
* **escaped on display** (:func:`shown`): everything that does not show as itself, whatever is stored (a
  record from before the input rule, a DLQ import of an older export, a log line, an audit entry): controls
  (but tab and LF, which a renderer lays out, and the CR of a CRLF line end, dropped), format characters
  (category Cf) but the kept ones above, line and paragraph separators, lone surrogates, each as ``\\u009b``
  (``\\U000e0001`` above U+FFFF), visibly.

Pure: no I/O.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from typing import Any

#: what a terminal or renderer obeys beyond the C0 controls: DEL, the C1 controls, the bidi embedding/override/
#: isolate controls (a character-class body, for :data:`REFUSED` and the idempotency-key rule, gamead_core.ids)
OBEYED_PAST_C0 = r"\x7f-\x9f\u202a-\u202e\u2066-\u2069"
#: refused in client text (see the module docstring); tab, LF and CR are layout, not commands
REFUSED = re.compile(rf"[\x00-\x08\x0b\x0c\x0e-\x1f{OBEYED_PAST_C0}]")

#: format characters shown as themselves: joiners and directional marks (text needs them), the tag characters
#: of flag emoji (U+E0020-U+E007F) and the visible prepended concatenation marks of Arabic and other scripts
_SHOWN_FORMAT = frozenset("\u200c\u200d\u200e\u200f\u061c\u0600\u0601\u0602\u0603\u0604\u0605\u06dd\u070f"
                          "\u0890\u0891\u08e2\U000110bd\U000110cd") | frozenset(map(chr, range(0xE0020, 0xE0080)))
_ESCAPED_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})
_LAYOUT = frozenset("\t\n")  #: controls a renderer lays out (rich drops CR; tables fold runs of whitespace)


def refused_char(text: str) -> str | None:
    """The first character of ``text`` the API refuses in client text (see the module docstring), or None."""
    found = REFUSED.search(text)
    return None if found is None else found.group()


def code_point(char: str) -> str:
    """``"\\x9b"`` → ``"U+009B"``: how an error names a character."""
    return f"U+{ord(char):04X}"


def _escaped(char: str) -> str:
    if char in _LAYOUT or char in _SHOWN_FORMAT or unicodedata.category(char) not in _ESCAPED_CATEGORIES:
        return char
    return f"\\u{ord(char):04x}" if ord(char) <= 0xFFFF else f"\\U{ord(char):08x}"


def shown(text: str) -> str:
    """``text`` as a terminal may print it: every character that does not show as itself (module docstring)
    written as its escape, e.g. ``"A\\x9b31m"`` → ``"A\\\\u009b31m"`` (a backslash, ``u009b``, visibly). Text
    that is printable (nearly all) is returned as is, after one ``str.isprintable`` scan."""
    if text.isprintable():
        return text
    return "".join(_escaped(c) for c in text.replace("\r\n", "\n"))  # a CRLF line end is a line end


def shown_tree(value: Any) -> Any:
    """``value`` (decoded JSON: dicts, lists, strings, numbers) with every string, keys included, passed through
    :func:`shown`: what a human view renders, so no view can print a stored text raw. Other values as is."""
    if isinstance(value, str):
        return shown(value)
    if isinstance(value, Mapping):
        return {shown(k) if isinstance(k, str) else k: shown_tree(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [shown_tree(v) for v in value]
    return value


__all__ = ["OBEYED_PAST_C0", "REFUSED", "code_point", "refused_char", "shown", "shown_tree"]
