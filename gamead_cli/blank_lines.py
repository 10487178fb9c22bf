"""Blank lines of an operator's input file passed over a block of bytes at a time, never a Python step a line
(attack40a F3: 10,000,000 ``\\n`` then one ad kept ``gamead submit`` at 100 % CPU for 51 s before it sent anything,
2.5 us a blank line, twice: once to count the ads, once to read them). A blank line holds only ASCII whitespace (what
``bytes.strip`` takes, the rule :func:`gamead_cli.inputs.bounded_lines`' readers skip by): :func:`skip_blank_run`
passes a run of them in a reader's buffer, :func:`count_holding` counts the lines holding something in bulk."""

from __future__ import annotations

from typing import IO, Any

#: ASCII whitespace as ``bytes.strip`` takes it: a line of only these (and its newline) is blank
WHITESPACE = b" \t\n\r\x0b\x0c"
#: the same less the newline: deleted before the lines are counted
_INLINE_SPACE = b" \t\r\x0b\x0c"
#: bytes :func:`count_holding` reads at a time (one C pass each: memory stays this whatever the file)
COUNT_BLOCK = 256 * 1024


def skip_blank_run(fh: IO[bytes] | Any, limit: int) -> tuple[int, int]:
    """Pass the whole blank lines at ``fh``'s read position, each at most ``limit`` bytes (a longer one is left to
    the reader, which names it too long, as before): ``(lines, bytes)`` passed. Read from ``fh``'s buffer
    (``peek``, then ``read`` of what was seen; a BufferedReader's, or
    :class:`gamead_cli.submit.feeding.StreamLines`'), in windows of at most ``limit`` bytes: the cost is a C pass
    over the bytes, not a step a line. The line after the run (holding something, or not in the buffer whole) is
    left unread. A reader without ``peek`` (a text stdin in tests): ``(0, 0)``, nothing passed. Blocks only as
    ``peek`` does (an empty buffer of a pipe: until bytes come, as the next ``readline`` would)."""
    peek = getattr(fh, "peek", None)
    lines = size = 0
    while peek is not None:
        window = peek(limit)[:limit]
        if isinstance(window, str):
            return lines, size
        space = len(window) - len(window.lstrip())  # ASCII whitespace: WHITESPACE
        cut = window.rfind(b"\n", 0, space) + 1  # after the last newline of the blank start: whole lines only
        if not cut:
            break
        lines, size = lines + window.count(b"\n", 0, cut), size + cut
        fh.read(cut)
        if cut < len(window):  # something follows in the buffer: the run ends here
            break
    return lines, size


def count_holding(fh: IO[bytes] | Any, block: int = COUNT_BLOCK) -> int:
    """How many lines of ``fh`` (read to its end, ``block`` bytes at a time) hold something other than ASCII
    whitespace: the ads and bad lines an NDJSON reader yields (a line over its length bound too: one rejection).
    Two C passes a block (``bytes.translate``, ``bytes.split``), whatever the lines: a file of blank lines costs
    no more than a file of ads. A text reader (tests) gives its text as UTF-8."""
    count, after = 0, b"\n"  #: the last byte kept: ``\n`` when the next one starts a line
    while chunk := fh.read(block):
        if isinstance(chunk, str):
            chunk = chunk.encode("utf-8", "surrogateescape")
        kept = chunk.translate(None, _INLINE_SPACE)  # newlines, and the bytes holding something
        if kept:  # split(): the runs between newlines, one a line holding something (less one line cut in two)
            count += len(kept.split()) - (after != b"\n" and kept[:1] != b"\n")
            after = kept[-1:]
    return count
