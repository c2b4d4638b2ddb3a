"""An upgrade keeps the data: the store of the release before this one (made by its own code,
sqlite-utils' migrations, kept as a fixture) is opened by this code, migrated once, and
every record is still there and readable by the commands and the figures."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from ari_app.cli import main
from ari_app.store import open_store
from ari_app.store.migrations import LATEST
from ivr.figures import figures

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "data-2026-11-30"


@pytest.fixture
def old_data(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    shutil.copytree(FIXTURE, data)
    return data


def test_the_previous_releases_store_opens_migrated_with_every_incident_and_step(old_data: Path) -> None:
    store = open_store(old_data)
    try:
        answered, dropped = store.get(1), store.get(2)
        assert answered is not None and dropped is not None
        assert (answered.caller_number, answered.operator, answered.category, answered.notes) == (
            "081250009001", "operator1", "emergency", "kebakaran di pasar")
        assert answered.operator_answered_at == "2026-11-30T01:00:09.000+00:00" and answered.route_result == "queued"
        assert dropped.ended_at and dropped.operator is None
        assert [(e.kind, e.detail["reason"]) for e in store.events(1)] == [("route", "pressed 0")]
        # The figures the national report reads: one answered within 15 s, one abandoned.
        found = figures(store.incidents_between("2026-11-30", "2026-12-01"), store.agency_answers("2026-11-30", "2026-12-01"))
        assert (found.calls, found.answered, found.within_15s, found.abandoned) == (2, 1, 1, 1)
        # And the store goes on: a new call's incident follows the old ones.
        new = store.open_incident(channel_id="1796900000.1", plan_id="kotim", caller_number="0813", called_number="112")
        assert new.id == 3
    finally:
        store.close()


def test_the_migration_runs_once_and_the_command_reads_the_upgraded_store(old_data: Path, tmp_path: Path,
                                                                            capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "settings.yaml"
    config.write_text(yaml.safe_dump({"data_dir": str(old_data)}))
    assert main(["--config", str(config), "store", "migrate"]) == 0
    assert f"version {LATEST} (this ivr112 knows up to {LATEST})" in capsys.readouterr().out
    assert main(["--config", str(config), "store", "migrate"]) == 0  # again: nothing to do, nothing lost
    assert f"version {LATEST} (this ivr112 knows up to {LATEST})" in capsys.readouterr().out
    assert main(["--config", str(config), "incidents"]) == 0
    out = capsys.readouterr().out
    assert "from 081250009001 to 112" in out and "operator=operator1" in out and "from 081250009002 to 112" in out
