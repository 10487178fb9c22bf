"""Operator jobs: actions that change many ads (DLQ replay, purge, import; the doctor's repair) run on the
server with an id, survive the client's disconnect, are resumed by another API node if theirs dies, and are
fenced so two jobs never both act on one ad. ``model`` (the document), ``policy`` (pure decisions), ``store``
(KV bucket ``gamead_jobs``), ``runner`` (running and resuming); the per-entry actions are in
``gamead_core.dlq_ops``, a repair's in ``gamead_core.doctor.repair``.
"""
