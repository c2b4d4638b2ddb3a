"""Operators and supervisors bound to a plan (a regency): the settings keys, what a binding
to a plan the platform does not serve does (a clear refusal, before Asterisk is given any
config), and what a regency's console is shown."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ari_app.asterisk.layout import Layout
from ari_app.asterisk.render import operator_queues, render
from ari_app.web.scope import Scope, stream_shape
from ivr.errors import ConfigError
from ivr.plan import load_plans
from ivr.secrets import load_or_create
from ivr.settings import PROJECT_DIR, Operator, load_settings

KOTIM = PROJECT_DIR / "dialplans" / "kotim.yaml"


def test_an_operator_takes_a_plan_in_the_settings_file(tmp_path: Path) -> None:
    config = tmp_path / "ivr112.yaml"
    config.write_text(yaml.safe_dump({"operators": [{"name": "andi"}, {"name": "sari", "plan": "seruyan"}]}))
    ops = load_settings(config, environ={}).operators
    assert [(o.name, o.plan) for o in ops] == [("andi", ""), ("sari", "seruyan")]
    config.write_text(yaml.safe_dump({"operators": [{"name": "sari", "plan": ["seruyan"]}]}))
    with pytest.raises(ConfigError, match=r"operators\[0\] plan must be a plan's id"):
        load_settings(config, environ={})


def test_an_operator_of_a_plan_not_served_is_refused_with_the_plans_that_are(tmp_path: Path) -> None:
    plans = load_plans([KOTIM])
    assert operator_queues(Operator("andi"), plans) == ["kotim-operators"]
    assert operator_queues(Operator("andi", plan="kotim"), plans) == ["kotim-operators"]
    lost = Operator("sari", plan="seruyan")
    settings = load_settings(environ={}).replace(operators=(lost,), webrtc_port=0)
    with pytest.raises(ConfigError, match=r"operator 'sari' belongs to plan 'seruyan', which is not served \(plans: kotim\)"):
        render(settings, load_or_create(tmp_path, ("sari",)), plans, Layout(tmp_path, "t1"))


def test_a_supervisor_watching_a_plan_not_served_is_refused(tmp_path: Path) -> None:
    settings = load_settings(environ={"IVR112_SUPERVISOR_PLANS": "supervisor2 = seruyan"}).replace(webrtc_port=0)
    assert settings.supervisor_plan("supervisor2") == "seruyan" and settings.supervisor_plan("supervisor1") == ""
    with pytest.raises(ConfigError, match=r"supervisor 'supervisor2' watches plan 'seruyan', which is not served \(plans: kotim\)"):
        render(settings, load_or_create(tmp_path, ()), load_plans([KOTIM]), Layout(tmp_path, "t1"))
    with pytest.raises(ConfigError, match=r"'supervisor_plans' must be a list of NAME=PLAN_ID"):
        load_settings(environ={"IVR112_SUPERVISOR_PLANS": "supervisor2"})


def test_a_regency_sees_its_plan_and_what_belongs_to_no_plan_and_its_stream_is_cut_to_that() -> None:
    seruyan, province = Scope("seruyan"), Scope("")
    assert [seruyan.sees(p) for p in ("seruyan", "kotim", "")] == [True, False, True]
    assert all(province.sees(p) for p in ("seruyan", "kotim", "")) and stream_shape(province, load_settings(environ={}), {}) is None
    settings = load_settings(environ={}).replace(operators=(Operator("andi", plan="kotim"), Operator("sari", plan="seruyan"), Operator("budi")))
    shape = stream_shape(seruyan, settings, {"kotim-operators": "kotim", "seruyan-operators": "seruyan"})
    assert shape is not None
    step = {"id": 7, "kind": "location", "detail": {"number": "0812"}}
    assert shape("incident", {**step, "plan": "kotim"}) is None
    assert shape("incident", {**step, "plan": "seruyan"}) == {**step, "plan": "seruyan"}
    assert shape("incident", {**step, "plan": ""}) == {"id": 7, "kind": "location"}
    assert [shape("operator", {"name": n}) is not None for n in ("andi", "sari", "budi")] == [False, True, True]
    waiting = {"waiting": [{"queue": "kotim-operators", "caller": "1"}, {"queue": "seruyan-operators", "caller": "2"}]}
    assert shape("wall", waiting) == {"waiting": [{"queue": "seruyan-operators", "caller": "2"}]}
    assert shape("announcement", {"on": True}) == {"on": True}
