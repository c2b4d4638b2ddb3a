"""The real-stack tests' plan is Kotim's plan changed by key path, and says so when it cannot be."""

from __future__ import annotations

from pathlib import Path

import pytest

from ivr.plan import load_plans
from tests.support.plan import KOTIM, PlanPathError, edit_plan_file, get_key, load, make_test_plan, set_key


def test_the_test_plan_is_a_valid_plan_with_every_placeholder_trunk_on_a_port_of_its_own(tmp_path: Path) -> None:
    path, ports = make_test_plan(tmp_path)
    plan = load_plans([path]).plans[0]
    police = plan.agencies["police"].trunks
    assert [t.port for t in police] == [ports[5071], ports[5072]]
    assert [t.ring_timeout for t in police] == [5, 5]
    assert plan.agencies["provincial"].trunks[0].port == ports[5079]
    assert plan.carriers[0].callback_port == ports[5090]
    assert len(set(ports.values())) == len(ports) and not set(ports) & set(ports.values())


def test_the_test_plan_keeps_recordings_and_the_kecamatan_list_short_and_operators_first_off(tmp_path: Path) -> None:
    plan = load_plans([make_test_plan(tmp_path)[0]]).plans[0]
    assert plan.location.record_seconds == 3
    assert plan.location.dereference is True
    assert plan.prompts["which_kecamatan"].text["id"] == "Tekan nomor kecamatan Anda."
    assert plan.location.boundaries_path(str(tmp_path / "plan.yaml")) == KOTIM.parent / "kotim-kecamatan.geojson"
    assert not plan.operators_first.enabled


def test_a_change_to_a_key_the_plan_no_longer_has_fails_naming_the_path(tmp_path: Path) -> None:
    with pytest.raises(PlanPathError, match=r"has no 'location\.record_secs': nothing at 'record_secs'"):
        make_test_plan(tmp_path, {"location.record_secs": 3})
    with pytest.raises(PlanPathError, match=r"nothing at '7'"):
        set_key(load(), "agencies.police.trunks.7.port", 1)


def test_a_test_can_switch_a_key_of_the_running_plan_and_put_it_back(tmp_path: Path) -> None:
    path, _ = make_test_plan(tmp_path)
    was = edit_plan_file(path, {"operators_first": True})
    assert was == {"operators_first": False}
    assert get_key(load(path), "operators_first") is True
    edit_plan_file(path, was)
    assert not load_plans([path]).plans[0].operators_first.enabled
