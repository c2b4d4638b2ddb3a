"""Settings, generated secrets, the incident store and the rendered Asterisk config."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from ari_app.asterisk.layout import Layout
from ari_app.asterisk.render import render
from ivr.errors import ConfigError
from ivr.plan import load_plans
from ivr.secrets import load_or_create
from ivr.settings import PROJECT_DIR, Operator, load_settings
from ivr.store import IncidentStore


def test_defaults_bind_every_service_to_loopback() -> None:
    s = load_settings(environ={})
    assert (s.sip_host, s.ari_host, s.ami_host, s.http_host) == ("127.0.0.1",) * 4
    assert (s.sip_port, s.ari_port, s.ami_port, s.http_port) == (5060, 8088, 5038, 8112)


def test_environment_overrides_the_file_and_a_bad_value_names_the_variable() -> None:
    assert load_settings(environ={"IVR112_SIP_PORT": "5070"}).sip_port == 5070
    with pytest.raises(ConfigError, match="IVR112_SIP_PORT"):
        load_settings(environ={"IVR112_SIP_PORT": "lima"})


def test_an_unknown_setting_in_a_config_file_is_refused(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("sip_prot: 5070\n")
    with pytest.raises(ConfigError, match="unknown setting 'sip_prot'"):
        load_settings(cfg, environ={})


def test_secrets_are_generated_once_private_and_never_empty(tmp_path: Path) -> None:
    first = load_or_create(tmp_path, ("operator1",))
    again = load_or_create(tmp_path, ("operator1", "operator2"))
    assert first.ari_password == again.ari_password
    assert len({first.ari_password, first.ami_secret, first.console_secret}) == 3
    assert again.operator_password("operator1") == first.operator_password("operator1")
    assert again.operator_password("operator2")
    mode = stat.S_IMODE((tmp_path / "secrets.yaml").stat().st_mode)
    assert mode == 0o600


def test_the_rendered_config_holds_the_generated_secrets_and_no_sample_password(tmp_path: Path) -> None:
    settings = load_settings(environ={}).replace(operators=(Operator("operator1"),))
    secrets = load_or_create(tmp_path, ("operator1",))
    plans = load_plans([PROJECT_DIR / "dialplans" / "kotim.yaml"])
    plan = plans.default
    files = render(settings, secrets, plans, Layout(tmp_path, "t1"))
    assert f"password = {secrets.ari_password}" in files["ari.conf"]
    assert f"secret = {secrets.ami_secret}" in files["manager.conf"]
    assert f"password = {secrets.operator_password('operator1')}" in files["pjsip.conf"]
    for number in plan.numbers:
        assert f"exten => {number},1,Goto(ivr112-plan-kotim,{number},1)" in files["extensions.conf"]
    # The fallback plays the greeting from the instance's own sound folder.
    assert "Playback(/srv/ivr112/t1/sounds/kotim/id/greeting)" in files["extensions.conf"]
    # Each agency trunk is an endpoint dialled in order, then the agency's on_failure.
    assert "[kotim-police-2]\ntype = aor\ncontact = sip:127.0.0.1:5072" in files["pjsip.conf"]
    assert "Dial(PJSIP/110@kotim-police-1,20)\n same => n,Dial(PJSIP/110@kotim-police-2,20)" in files["extensions.conf"]
    # The operators' queue overflows to the provincial centre, never to nowhere.
    assert "Queue(kotim-operators,r,,,120)" in files["extensions.conf"]
    assert "Goto(ivr112-agency,kotim-provincial,1)" in files["extensions.conf"]
    assert "@@" not in "".join(files.values())


def test_an_incident_survives_reopening_the_store(tmp_path: Path) -> None:
    store = IncidentStore(tmp_path / "s.sqlite")
    inc = store.open_incident(channel_id="c1", plan_id="kotim", caller_number="0812", called_number="112")
    store.update(inc.id, answered_at="2026-11-28T10:00:00.000+00:00", route="queue:operators")
    store.add_event(inc.id, "prompt", {"prompts": "greeting"})
    assert store.open_incident(channel_id="c1", plan_id="kotim", caller_number="0812", called_number="112").id == inc.id
    store.close()
    again = IncidentStore(tmp_path / "s.sqlite")
    got = again.by_channel("c1")
    assert got is not None and got.route == "queue:operators" and got.caller_number == "0812"
    assert [e.kind for e in again.events(inc.id)] == ["prompt"]
    assert [i.id for i in again.open_incidents()] == [inc.id]
    with pytest.raises(ValueError, match="unknown incident fields"):
        again.update(inc.id, colour="red")
    again.close()


def test_positions_and_recordings_past_retention_are_deleted_and_the_incident_stays(tmp_path: Path) -> None:
    from ivr.location import Location

    store = IncidentStore(tmp_path / "s.sqlite")
    old = store.open_incident(channel_id="old", plan_id="kotim", caller_number="0812", called_number="112",
                              arrived_at="2026-01-01T00:00:00.000+00:00")
    new = store.open_incident(channel_id="new", plan_id="kotim", caller_number="0812", called_number="112")
    for inc in (old, new):
        store.add_location(inc.id, Location(source="aml_http", latitude=-2.53, longitude=112.95, radius_m=12), kecamatan="Baamang", description="x")
        store.add_recording(inc.id, kind="caller_location", name=f"r{inc.id}", path=f"/srv/r{inc.id}.wav")
    # The newer call from the same number finds the older position as a hint.
    hint = store.last_location("0812", since="2025-01-01T00:00:00+00:00", before_incident=new.id)
    assert hint is not None and hint.incident_id == old.id
    gone, paths = store.purge(before="2026-06-01T00:00:00.000+00:00")
    assert (gone, paths) == (1, [f"/srv/r{old.id}.wav"])
    assert store.locations(old.id) == [] and store.recordings(old.id) == []
    assert len(store.locations(new.id)) == 1
    assert store.get(old.id) is not None
    store.close()
