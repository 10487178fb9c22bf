"""The service level objective of the oldest waiting ad, per priority level: one rule for the README (*Service
level objectives*), the alert ``GameadOldestAdOverSLO`` (``manifests/monitoring/gamead.rules.yml``) and its
thresholds for a ``queue.aging_step`` other than the default.

The bound is the level's aging horizon — MAX WAIT in ``gamead top``, ``max(p − 1, 1) × queue.aging_step``
(:func:`gamead_core.stats.rates.aging_horizon`: one step for priority 1) — plus :data:`SLO_SLACK` seconds. With
the default step of 10 s: p1 and p2 30 s, p3 40 s, p4 50 s, p5 60 s. (attack32b F4: the README's formula
``(p − 1) × step + 20`` gave p1 20 s while the README and the alert said 30 s.)

``python -m gamead_core.slo --aging-step 5`` prints the alert's ``expr`` for that step."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from gamead_core.stats.rates import aging_horizon

#: seconds past the aging horizon the oldest waiting ad of a level may wait before the SLO is missed
SLO_SLACK = 20.0
#: the priority levels, most urgent first
LEVELS = (1, 2, 3, 4, 5)


def slo_seconds(level: int, aging_step: float) -> float:
    """Seconds the oldest waiting ad of priority ``level`` (1-5) may wait under the SLO, for ``aging_step``
    (seconds, ``queue.aging_step``): ``max(level − 1, 1) × aging_step + 20``. Pure."""
    return aging_horizon(level, aging_step) + SLO_SLACK


def alert_expr(aging_step: float) -> str:
    """The PromQL ``expr`` of ``GameadOldestAdOverSLO`` for ``aging_step`` seconds: the levels that share a bound
    in one ``priority=~"1|2"`` matcher, one line per bound, joined by ``or``. Pure."""
    bounds: dict[float, list[int]] = {}
    for level in LEVELS:
        bounds.setdefault(slo_seconds(level, aging_step), []).append(level)
    lines = []
    for bound, levels in bounds.items():
        match = f'=~"{"|".join(map(str, levels))}"' if len(levels) > 1 else f'="{levels[0]}"'
        lines.append(f"gamead:queue_oldest_age_seconds:max{{priority{match}}} > {bound:g}")
    return "\n".join(lines[:1] + [f"or {line}" for line in lines[1:]]) + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    """Print :func:`alert_expr` for ``--aging-step`` (default 10 s, the configuration's default)."""
    parser = argparse.ArgumentParser(prog="python -m gamead_core.slo", description=__doc__.splitlines()[0])
    parser.add_argument("--aging-step", type=float, default=10.0, help="queue.aging_step in seconds (default 10)")
    print(alert_expr(parser.parse_args(argv).aging_step), end="")


if __name__ == "__main__":
    main()
