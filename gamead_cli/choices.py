"""Every value refused for not being one of a parameter's choices says it one way, as a number past its range does
(:mod:`gamead_cli.bounds`): ``--status must be one of queued, processing, completed, failed or dead, not 'bogus'``
— a usage error, exit 2, one red line. Before (newcomer58) four ways: Typer's ``Invalid value for '--status' / '-s':
'bogus' is not one of 'queued', …``, ``Invalid value for --state: 'bogus': use one of queued, …``, ``… --action:
'bogus' is not one of replay, …`` and ``Invalid value for --role: must be api or worker`` (without the value). Two
kinds reach it: Typer's own check of a choice (an enum option: ``-o``, ``--status``), read by :func:`choice_line`
from its message, and a hand check that raises :class:`NotOneOf`."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import typer

from gamead_cli.bounds import param_name
from gamead_core.bound_text import not_one_of

#: Typer's (pydantic's) refusal of a choice: ``Value error, 'yaml' is not one of 'table', 'json'.``
_TYPER_CHOICE = re.compile(r"^(?:Value error, )?'(?P<given>.*)' is not one of (?P<choices>'.*')\.?$", re.S)


class NotOneOf(typer.BadParameter):
    """``given`` is none of ``choices`` (a hand check of an option: ``--role``, ``--state``). Exit 2."""

    def __init__(self, given: Any, choices: Iterable[str], **kw: Any) -> None:
        self.given, self.choices = given, list(choices)
        super().__init__(not_one_of(param_name(None, kw.get("param_hint")), self.choices, given), **kw)

    def format_message(self) -> str:
        return not_one_of(param_name(self.param, self.param_hint), self.choices, self.given)


def choice_line(exc: BaseException) -> str | None:
    """The one sentence of a value refused for its choices (:func:`gamead_core.bound_text.not_one_of`), or None if
    ``exc`` is no such refusal: a :class:`NotOneOf`, or Typer's ``BadParameter`` of a choice it checked. Pure."""
    if isinstance(exc, NotOneOf):
        return exc.format_message()
    from gamead_cli.failures import error_kinds

    said = exc.message if isinstance(exc, error_kinds("UsageError")) else ""  # type: ignore[attr-defined]
    param, found = getattr(exc, "param", None), _TYPER_CHOICE.match(str(said))
    if param is None or found is None:
        return None
    return not_one_of(param_name(param), re.findall(r"'([^']*)'", found["choices"]), found["given"])


__all__ = ["NotOneOf", "choice_line"]
