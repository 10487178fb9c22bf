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
  (``\\U000e0001`` above U+FFFF), visibly. Also escaped, though not Cf, as they never show (attack32a F2, F6):
  the tag characters (U+E0020-U+E007F: a run of them spells hidden ASCII, "ASCII smuggling") but inside an emoji
  tag sequence (U+1F3F4, tags, U+E007F: the flags of Scotland, Wales, England), which shows as one flag; a
  variation selector (U+FE00-FE0F, U+E0100-E01EF, the Mongolian U+180B-180D, U+180F) but one right after a
  character it can vary (a run of them hides bytes after an emoji); the Hangul fillers U+115F, U+1160, U+3164,
  U+FFA0, the Khmer inherent vowels U+17B4/5 and U+FFF0-FFF8 (blank, or nothing); anything else of plane 14. Shown as itself:
  U+2800 BRAILLE PATTERN BLANK, a braille space (blank as a space, hiding nothing), which, as whitespace,
  does not count as a character that shows (:func:`shows`). Escaped on display rather than refused on input:
  flag emoji need the tags, text needs the selectors, and stored text (older records, DLQ imports) must show
  them anyway.

* **a character that shows** (:func:`has_shown_char`, the input rule of every client text): not whitespace,
  U+2800, a control, separator, surrogate or format character (but the visible prepended marks), nor any of the
  invisible characters above.

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

#: format characters that show: the prepended concatenation marks of Arabic and other scripts
_VISIBLE_FORMAT = frozenset("\u0600\u0601\u0602\u0603\u0604\u0605\u06dd\u070f\u0890\u0891\u08e2\U000110bd\U000110cd")
#: format characters shown as themselves: joiners and directional marks (text needs them), the visible ones
_SHOWN_FORMAT = frozenset("\u200c\u200d\u200e\u200f\u061c") | _VISIBLE_FORMAT
_ESCAPED_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})
_LAYOUT = frozenset("\t\n")  #: controls a renderer lays out (rich drops CR; tables fold runs of whitespace)
#: variation selectors: shown after a character they can vary, else escaped
_SELECTORS = "\u180b-\u180d\u180f\ufe00-\ufe0f\U000e0100-\U000e01ef"
_SELECTOR = re.compile(f"[{_SELECTORS}]")
#: never show, whatever their category: Hangul fillers, Khmer inherent vowels, the reserved default ignorables
#: U+FFF0-FFF8 (besides plane 14: tags, selectors)
_BLANK = "\u115f\u1160\u17b4\u17b5\u3164\uffa0\ufff0-\ufff8"
#: characters ``str.isprintable`` passes that may not show as themselves (the fast path of :func:`shown`)
_QUIET = re.compile(f"[{_BLANK}{_SELECTORS}\U000e0000-\U000e0fff]")
#: emoji tag sequences (UTS #51 ED-14a: U+1F3F4 BLACK FLAG, tag_spec, TAG CANCEL U+E007F): shown as one flag
_FLAG = re.compile("\U0001f3f4[\U000e0020-\U000e007e]+\U000e007f")
#: not a character that shows (:func:`has_shown_char`), beyond whitespace, controls and format characters: all
#: ``str.isprintable`` passes, so a printable text without them holds a character that shows (a fast path)
UNSHOWN_PRINTABLE = re.compile(f"[{_BLANK}{_SELECTORS}\u2800\u034f\U000e0000-\U000e0fff]")


def refused_char(text: str) -> str | None:
    """The first character of ``text`` the API refuses in client text (see the module docstring), or None."""
    found = REFUSED.search(text)
    return None if found is None else found.group()


def code_point(char: str) -> str:
    """``"\\x9b"`` → ``"U+009B"``: how an error names a character."""
    return f"U+{ord(char):04X}"


#: a byte that is no text in the locale's encoding, as Python's surrogateescape (PEP 383) reads it: U+DC80-U+DCFF
_BYTE = re.compile("[\udc80-\udcff]")
#: such a byte as ``repr()`` escapes it (``\udcff``): after an even number of backslashes (an odd one: typed)
_BYTE_ESCAPE = re.compile(r"(?<!\\)((?:\\\\)*)\\udc([89a-f][0-9a-f])")


def byte_escapes(text: str) -> str:
    """``text`` (a line naming a command-line value) with each byte that was no text written ``\\xff``, as typed
    (``$'\\xff'``): a raw one (U+DCFF) and one ``repr()`` escaped (``'\\udcff'``: probe49 F8). Pure."""
    return _BYTE_ESCAPE.sub(r"\1\\x\2", _BYTE.sub(lambda m: _byte(m.group()), text))


def _byte(char: str) -> str:
    """A byte read by surrogateescape (U+DC80-U+DCFF), written as it was typed: ``\\xff``. Pure."""
    return f"\\x{ord(char) - 0xDC00:02x}"


def _escape(char: str) -> str:
    if _BYTE.match(char):
        return _byte(char)  # a byte read by surrogateescape: as it was typed
    return f"\\u{ord(char):04x}" if ord(char) <= 0xFFFF else f"\\U{ord(char):08x}"


def _escaped(char: str) -> str:
    if char in _LAYOUT or char in _SHOWN_FORMAT or unicodedata.category(char) not in _ESCAPED_CATEGORIES:
        return char
    return _escape(char)


def _varied(before: str) -> bool:
    """A variation selector right after ``before`` shows as itself: a character it can vary (not a space, a
    control or format character, nor another selector)."""
    return not before.isspace() and unicodedata.category(before)[0] not in "CZ" and not _SELECTOR.match(before)


def _contextual(text: str) -> str:
    flags = {i for m in _FLAG.finditer(text) for i in range(m.start(), m.end())}
    out = []
    for i, char in enumerate(text):
        if _QUIET.match(char) is None:
            out.append(_escaped(char))
        elif i in flags or (_SELECTOR.match(char) and i > 0 and _varied(text[i - 1])):
            out.append(char)
        else:
            out.append(_escape(char))
    return "".join(out)


def shown(text: str) -> str:
    """``text`` as a terminal may print it: every character that does not show as itself (module docstring)
    written as its escape, e.g. ``"A\\x9b31m"`` → ``"A\\\\u009b31m"`` (a backslash, ``u009b``, visibly);
    ``"EVIL\\U000e0069"`` → ``"EVIL\\\\U000e0069"`` (a tag outside a flag). Text that is printable and holds no
    selector or blank character (nearly all) is returned as is, after one ``str.isprintable`` and one regex scan."""
    quiet = _QUIET.search(text) is not None
    if not quiet and text.isprintable():
        return text
    text = text.replace("\r\n", "\n")  # a CRLF line end is a line end
    return _contextual(text) if quiet else "".join(_escaped(c) for c in text)


def shown_cut(text: str, most: int = 80) -> str:
    """:func:`shown` of ``text``'s first ``most`` characters, ending ``…`` when cut: a client's text echoed in an
    answer (a request path in a 405: ``/ads/\\u001b[2J``, not the escape itself, nor 8 KiB of it, attack55). Pure."""
    return shown(text[:most]) + ("…" if len(text) > most else "")


def shows(char: str) -> bool:
    """True when ``char`` shows on a terminal: not whitespace (nor U+2800, a braille space), not a control,
    separator, surrogate or format character but the visible prepended marks (U+0600 …), not a Hangul filler,
    variation selector, tag or other character that never shows (module docstring)."""
    if char.isspace() or UNSHOWN_PRINTABLE.match(char):
        return False
    return char in _VISIBLE_FORMAT or unicodedata.category(char) not in _ESCAPED_CATEGORIES


def has_shown_char(text: str) -> bool:
    """True when ``text`` holds a character that :func:`shows` (the input rule: a text of only Hangul fillers,
    U+200B or tags is refused, attack32a F6)."""
    return any(shows(c) for c in text)


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


__all__ = ["OBEYED_PAST_C0", "REFUSED", "UNSHOWN_PRINTABLE", "byte_escapes", "code_point", "has_shown_char",
           "refused_char", "shown", "shown_cut", "shown_tree", "shows"]
