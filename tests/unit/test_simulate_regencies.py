"""`ivr112 simulate` over the plans served side by side: the carrier a call comes through
and the number dialled pick the plan, as Asterisk's carrier contexts do."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ari_app.cli import main
from ivr.plan import load_plans
from tests.support.plan import make_regency_plan, make_test_plan


def _config(tmp_path: Path) -> Path:
    kotim, _ = make_test_plan(tmp_path, {"carriers.0.match": ["127.0.0.1/32"]})
    seruyan, _ = make_regency_plan(tmp_path, "seruyan", "Seruyan", "seruyan-net", "127.0.0.2/32")
    config = tmp_path / "settings.yaml"
    config.write_text(yaml.safe_dump({"plans": [str(kotim), str(seruyan)], "data_dir": str(tmp_path / "data")}))
    return config


def test_the_carrier_picks_the_regency_that_answers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = _config(tmp_path)
    assert main(["--config", str(config), "simulate", "--carrier", "seruyan-net", "--press", "1"]) == 0
    out = capsys.readouterr().out
    assert "call to 112 through carrier seruyan-net answered by Seruyan 112 (plan seruyan)" in out
    assert "Polres Seruyan" in out and "Kotawaringin" not in out.split("→")[-1]
    assert main(["--config", str(config), "simulate", "--carrier", "lokal", "--press", "1"]) == 0
    assert "answered by Kotim 112 (plan kotim)" in capsys.readouterr().out


def test_a_carrier_no_plan_serves_is_refused_and_without_one_the_command_asks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = _config(tmp_path)
    assert main(["--config", str(config), "simulate", "--carrier", "telkomsel"]) == 1
    assert "refused with 404" in capsys.readouterr().out
    assert main(["--config", str(config), "simulate"]) == 2
    assert "--carrier NAME (lokal, seruyan-net)" in capsys.readouterr().err
    # Plan files named on the line are the plans served for the simulation.
    seruyan = str(tmp_path / "seruyan.yaml")
    assert main(["--config", str(config), "simulate", seruyan, "--carrier", "lokal"]) == 1
    assert "serves no carrier 'lokal'" in capsys.readouterr().out


def test_the_route_is_the_one_plan_with_both_carrier_and_number(tmp_path: Path) -> None:
    plans = load_plans([Path(p) for p in yaml.safe_load(_config(tmp_path).read_text())["plans"]])
    route = {(c, n): (p.id if (p := plans.route(c, n)) else None) for c in ("lokal", "seruyan-net", "xl") for n in ("112", "999")}
    assert route == {("lokal", "112"): "kotim", ("seruyan-net", "112"): "seruyan", ("xl", "112"): None,
                     ("lokal", "999"): None, ("seruyan-net", "999"): None, ("xl", "999"): None}
