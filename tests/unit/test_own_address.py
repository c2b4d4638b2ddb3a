"""A trunk that points at this centre's own SIP address is refused, by `ivr112 validate` and
at the app's start: a call to the agency would come back in as a new 112 call."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ari_app.cli import main
from ivr.errors import PlanError
from ivr.plan import load_plans
from ivr.settings import PROJECT_DIR
from tests.support.plan import edit_plan_file

KOTIM = PROJECT_DIR / "dialplans" / "kotim.yaml"


def _plan(tmp_path: Path, changes: dict[str, object]) -> Path:
    path = tmp_path / "kotim.yaml"
    path.write_text(KOTIM.read_text().replace("boundaries: kotim-kecamatan.geojson", f"boundaries: {KOTIM.parent / 'kotim-kecamatan.geojson'}"))
    edit_plan_file(path, changes)
    return path


def _settings(tmp_path: Path, plan: Path, sip_host: str = "127.0.0.1", sip_port: int = 5060) -> Path:
    config = tmp_path / "settings.yaml"
    config.write_text(yaml.safe_dump({"plans": [str(plan)], "sip_host": sip_host, "sip_port": sip_port, "data_dir": str(tmp_path / "data")}))
    return config


def _first_trunk(plan: Path, agency: str) -> str:
    """line:column of the agency's first trunk in the file."""
    lines = plan.read_text().splitlines()
    start = lines.index(f"  {agency}:")
    n = next(n for n in range(start, len(lines)) if lines[n].lstrip().startswith("- host:"))
    return f"{n + 1}:{lines[n].index('host') + 1}"


def test_validate_refuses_a_police_trunk_on_our_own_sip_port_at_the_trunks_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plan = _plan(tmp_path, {"agencies.police.trunks.0.port": 5060})
    assert main(["--config", str(_settings(tmp_path, plan)), "validate"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out == [
        f"{plan}:{_first_trunk(plan, 'police')}: agency 'police': trunk 127.0.0.1:5060 is this centre's own SIP address "
        "(settings sip_host:sip_port 127.0.0.1:5060); a call to it would come back in as a new 112 call; give the agency's own address and port"
    ]


def test_the_same_trunk_is_fine_when_our_sip_transport_listens_elsewhere(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plan = _plan(tmp_path, {"agencies.police.trunks.0.port": 5060})
    assert main(["--config", str(_settings(tmp_path, plan, sip_port=5070)), "validate"]) == 0
    assert "ok: plan 'kotim'" in capsys.readouterr().out


def test_localhost_and_a_carrier_callback_on_our_port_are_refused_too_when_we_bind_every_address(tmp_path: Path) -> None:
    plan = _plan(tmp_path, {"agencies.fire.trunks.0.host": "localhost", "agencies.fire.trunks.0.port": 5080,
                            "carriers.0.callback.port": 5080})
    with pytest.raises(PlanError) as exc:
        load_plans([plan], own_sip=("0.0.0.0", 5080))
    assert [p.message.split(":")[0] for p in exc.value.problems] == ["agency 'fire'", "carrier 'lokal'"]


def test_the_app_refuses_to_start_on_such_a_plan(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plan = _plan(tmp_path, {"agencies.police.trunks.0.port": 5060})
    assert main(["--config", str(_settings(tmp_path, plan)), "run"]) != 0
    assert "is this centre's own SIP address" in capsys.readouterr().err
