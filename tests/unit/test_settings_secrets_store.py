"""Settings, generated secrets and the rendered Asterisk config (the store: tests/store)."""

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
    assert ("Dial(PJSIP/110@kotim-police-1,20,b(ivr112-agency-leg^s^1))\n same => n,Dial(PJSIP/110@kotim-police-2,20,b(ivr112-agency-leg^s^1))"
            in files["extensions.conf"])
    # The operators' queue overflows to the provincial centre, never to nowhere.
    assert "Queue(kotim-operators,r,,,120)" in files["extensions.conf"]
    assert "Goto(ivr112-agency,kotim-provincial,1)" in files["extensions.conf"]
    assert "@@" not in "".join(files.values())


def test_the_apps_ami_user_is_sent_only_the_events_the_operators_desk_reads(tmp_path: Path) -> None:
    settings = load_settings(environ={}).replace(operators=(Operator("operator1"),))
    secrets = load_or_create(tmp_path, ("operator1",))
    files = render(settings, secrets, load_plans([PROJECT_DIR / "dialplans" / "kotim.yaml"]), Layout(tmp_path, "t1"))
    filters = [line for line in files["manager.conf"].splitlines() if line.startswith("eventfilter")]
    # Include filters only: Asterisk then sends just these (every call's channel events stay away).
    for name in ("Hangup", "QueueCallerJoin", "QueueCallerAbandon", "QueueMemberStatus", "AgentConnect", "BlindTransfer",
                 "QueueEntry", "QueueStatusComplete"):
        assert f"eventfilter(name({name})) =" in filters
    assert not any("Newchannel" in f or "exclude" in f for f in filters)
