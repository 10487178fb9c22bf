"""``gamead doctor``: the check that every invariant of ARCHITECTURE.md ("Invariants") holds, and the repair of
what can be repaired safely.

``model`` (the kinds of problem and the report), ``checks`` (the rules: pure), ``read`` (reading the stores the
cheapest way: headers-only listings, per-subject counts, direct gets), ``verdict`` (what a look found, the
judging, the repair actions and their order: pure), ``leftovers`` (stranded messages and jobs whose lease
expired, read and confirmed), ``leases`` (leader leases held by a node that is gone), ``diagnose`` (one run:
read, judge, settle, look again, report), ``repair`` (the fenced actions of a ``repair`` operator job).
"""

from gamead_core.doctor.diagnose import Diagnosis, Doctor, diagnose, summary
from gamead_core.doctor.model import KINDS, Finding, Kind, Report

__all__ = ["KINDS", "Diagnosis", "Doctor", "Finding", "Kind", "Report", "diagnose", "summary"]
