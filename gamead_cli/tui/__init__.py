"""``gamead top``: the Textual dashboard, its data sources and the one-shot rich view."""

from gamead_cli.tui.source import ApiSource, DataSource, fetch_snapshot
from gamead_cli.tui.source_recorded import RecordedSource
from gamead_cli.tui.view import Snapshot, snapshot_view

__all__ = ["ApiSource", "DataSource", "RecordedSource", "Snapshot", "fetch_snapshot", "snapshot_view"]
