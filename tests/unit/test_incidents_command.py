"""`ivr112 incidents` says who answered each call and how its route ended."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ari_app.cli import main
from ari_app.store import open_store


def test_incidents_lists_the_operator_who_answered_and_the_outcome(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "settings.yaml"
    config.write_text(yaml.safe_dump({"data_dir": str(tmp_path / "data")}))
    (tmp_path / "data").mkdir()
    store = open_store(tmp_path / "data")
    try:
        inc = store.open_incident(channel_id="c1", plan_id="kotim", caller_number="0812", called_number="112")
        store.update(inc.id, route="queue:operators", route_result="answered", operator="operator1")
    finally:
        store.close()
    assert main(["--config", str(config), "incidents"]) == 0
    line = capsys.readouterr().out.strip()
    assert "from 0812 to 112" in line and "route=queue:operators outcome=answered operator=operator1" in line
