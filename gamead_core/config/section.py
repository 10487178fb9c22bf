"""The base of every section of ``config.yaml``: unknown keys are refused."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    """A section of the config file (``api:``, ``queue:``…): an unknown key is refused (``extra="forbid"``),
    so a typo is an error that names it, not a silently ignored setting."""

    model_config = ConfigDict(extra="forbid")

