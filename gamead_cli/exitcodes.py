"""Exit codes of the ``gamead`` command. Scripts may rely on them."""

from __future__ import annotations

from gamead_core.errors import ApiUnreachable, ConfigError, GameadError, NotFound

OK = 0
ERROR = 1  #: any other failure
USAGE = 2  #: bad flags or arguments (Click's own code)
UNREACHABLE = 3  #: the API (or NATS) could not be reached
NOT_FOUND = 4  #: the named ad / entry does not exist
CONFIG = 5  #: the configuration is invalid
AD_FAILED = 6  #: ``submit --wait`` ended with the ad failed or dead
INTERRUPTED = 130


def exit_code_for(exc: GameadError) -> int:
    if isinstance(exc, ApiUnreachable):
        return UNREACHABLE
    if isinstance(exc, NotFound):
        return NOT_FOUND
    if isinstance(exc, ConfigError):
        return CONFIG
    return ERROR
