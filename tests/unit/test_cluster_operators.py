"""Operators across a cluster's nodes, without a cluster: what a node's Asterisk config says
(softphones reached through the edge, callers sent to the queues' node, its standby, then
here) and how the standby's queue members follow the home's (docs/cluster.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ari_app.asterisk.layout import Layout
from ari_app.asterisk.render import render
from ari_app.cluster import kamailio, topology
from ari_app.cluster.members import Member, Step, steps
from ari_app.operators.ami import AmiEvent
from ari_app.operators.desk import as_caller
from ivr.plan import load_plans
from ivr.secrets import load_or_create
from ivr.settings import PROJECT_DIR, Operator, load_settings

KOTIM = PROJECT_DIR / "dialplans" / "kotim.yaml"
HOME, STANDBY, OTHER = "10.0.0.11:5060", "10.0.0.12:5060", "10.0.0.13:5060"


def _files(tmp_path: Path, **changes: object) -> dict[str, str]:
    settings = load_settings(environ={}).replace(operators=(Operator("andi"),), webrtc_port=0, **changes)
    return render(settings, load_or_create(tmp_path, ("andi",)), load_plans([KOTIM]), Layout(tmp_path, "t1"))


def _queue_exten(files: dict[str, str]) -> str:
    text = files["extensions.conf"].split("[ivr112-queue]\n", 1)[1]
    return text.split("\n\n", 1)[0]


def test_one_machine_keeps_softphones_registering_here_and_the_queue_here(tmp_path: Path) -> None:
    files = _files(tmp_path)
    assert "[andi]\ntype = aor\nmax_contacts = 1\nremove_existing = yes\n" in files["pjsip.conf"]
    assert "Dial(" not in _queue_exten(files) and "ivr112-queue-remote" not in files["extensions.conf"]
    assert "ivr112-node" not in files["pjsip.conf"]


def test_a_node_reaches_softphones_through_the_edge_and_sends_callers_to_the_queues_node(tmp_path: Path) -> None:
    files = _files(tmp_path, sip_host="10.0.0.13", sip_edge="10.0.0.10:5060", queue_nodes=(HOME, STANDBY))
    assert "[andi]\ntype = aor\ncontact = sip:andi@10.0.0.10:5060\n" in files["pjsip.conf"]
    queue = _queue_exten(files)
    home, standby, local = (queue.index(s) for s in ("@ivr112-queue-node1,", "@ivr112-queue-node2,", "n(local)"))
    assert home < standby < local, queue
    assert "contact = sip:10.0.0.11:5060\nqualify_frequency = 1" in files["pjsip.conf"]
    assert "X-Ivr112-Caller-Channel" in files["extensions.conf"]


def test_the_standby_sends_to_the_home_then_takes_the_call_itself_and_the_home_keeps_it(tmp_path: Path) -> None:
    standby = _queue_exten(_files(tmp_path, sip_host="10.0.0.12", sip_edge="10.0.0.10:5060", queue_nodes=(HOME, STANDBY)))
    assert "@ivr112-queue-node1," in standby and "@ivr112-queue-node2," not in standby
    home = _files(tmp_path, sip_host="10.0.0.11", sip_edge="10.0.0.10:5060", queue_nodes=(HOME, STANDBY))
    assert "Dial(" not in _queue_exten(home)
    assert "[ivr112-queue-remote]" in home["extensions.conf"] and "[ivr112-node]\ntype = auth" in home["pjsip.conf"]


def test_the_standby_follows_the_homes_members() -> None:
    home = {"andi": Member("andi", True), "budi": Member("budi", True, paused=True, reason="makan"), "sari": Member("sari", False)}
    here = {"andi": Member("andi", True), "budi": Member("budi", False), "sari": Member("sari", True), "tono": Member("tono", True)}
    assert steps(home, here) == [Step("budi", "login", (("phone", "softphone"),)), Step("budi", "pause", (("reason", "makan"),)),
                                 Step("sari", "logout")]
    assert steps(home, home) == []


def test_a_queue_leg_from_another_node_is_followed_as_the_callers_own_channel() -> None:
    leg = AmiEvent("AgentConnect", {"Uniqueid": "node1-2.7", "ChanVariable": "IVR112_CALLER_CHANNEL=node2-1.3", "Queue": "q"})
    assert as_caller(leg).fields["Uniqueid"] == "node2-1.3"
    mine = AmiEvent("AgentConnect", {"Uniqueid": "node1-2.8", "ChanVariable": "IVR112_CALLER_CHANNEL="})
    assert as_caller(mine) is mine



@pytest.mark.parametrize("operators", [{}, {"andi": "generated-Pw_1"}])
def test_the_edges_config_with_or_without_operators_is_one_kamailio_takes_and_only_root_reads(
        tmp_path: Path, operators: dict[str, str]) -> None:
    if not kamailio.BINARY.exists():
        pytest.skip("Kamailio is not installed (apt-get install kamailio)")
    cfg = kamailio.render(topology.load(), tmp_path, load_plans([KOTIM]), operators=operators)
    kamailio.check(cfg, tmp_path / "run")
    assert cfg.stat().st_mode & 0o777 == 0o600
    assert all(f'$sht(operators=>{n}) = "{p}"' in cfg.read_text() for n, p in operators.items())
