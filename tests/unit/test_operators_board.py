"""The operators' board follows app_queue's AMI events (field names as Asterisk 22 sends them)."""

from __future__ import annotations

from ivr.operators import Board

Q = "kotim-operators"


def added(name: str, **extra: str) -> dict[str, str]:
    return {"Queue": Q, "MemberName": name, "Interface": f"PJSIP/{name}", "StateInterface": f"PJSIP/{name}",
            "Membership": "dynamic", "Penalty": "0", "CallsTaken": "0", "Status": "1", "Paused": "0", "PausedReason": "", **extra}


def test_login_pause_resume_logout_are_followed_and_logged_once_each() -> None:
    board = Board(["andi", "budi"], {Q: 5})
    assert board.get("andi").status() == "logged_out"
    assert [c.action for c in board.apply("QueueMemberAdded", added("andi"))] == ["login"]
    assert board.get("andi").status() == "ready"
    changes = board.apply("QueueMemberPause", {**added("andi"), "Paused": "1", "PausedReason": "istirahat"})
    assert [(c.action, c.detail["reason"]) for c in changes] == [("pause", "istirahat")]
    assert board.get("andi").status() == "paused"
    assert board.apply("QueueMemberPause", {**added("andi"), "Paused": "1", "PausedReason": "istirahat"}) == []
    assert [c.action for c in board.apply("QueueMemberPause", added("andi"))] == ["resume"]
    assert [c.action for c in board.apply("QueueMemberRemoved", {"Queue": Q, "MemberName": "andi", "Interface": "PJSIP/andi"})] == ["logout"]
    assert board.get("andi").status() == "logged_out"


def test_a_queue_call_rings_is_answered_then_wraps_up() -> None:
    board = Board(["andi"], {Q: 600})
    board.apply("QueueMemberAdded", added("andi"))
    board.apply("AgentCalled", {"Queue": Q, "MemberName": "andi", "Interface": "PJSIP/andi", "Uniqueid": "1700.5", "CallerIDNum": "0812"})
    assert board.get("andi").status() == "ringing"
    changes = board.apply("AgentConnect", {"Queue": Q, "MemberName": "andi", "Interface": "PJSIP/andi", "Uniqueid": "1700.5",
                                           "CallerIDNum": "0812", "DestChannel": "PJSIP/andi-00000009", "HoldTime": "3"})
    assert changes[0].action == "answered" and changes[0].detail["channel"] == "1700.5"
    assert board.get("andi").status() == "talking" and board.holding("1700.5") == "andi"
    assert board.get("andi").agent_channel == "PJSIP/andi-00000009"
    board.apply("AgentComplete", {"Queue": Q, "MemberName": "andi", "Interface": "PJSIP/andi", "Uniqueid": "1700.5", "TalkTime": "40"})
    assert board.get("andi").status() == "wrapup" and board.holding("1700.5") is None


def test_an_unregistered_softphone_shows_unreachable_and_unknown_events_are_ignored() -> None:
    board = Board(["andi"])
    board.apply("QueueMemberAdded", added("andi", Status="5"))
    assert board.get("andi").status() == "unreachable"
    assert board.apply("Newchannel", {"Channel": "PJSIP/x"}) == []
    assert board.apply("QueueMemberStatus", {"Queue": Q}) == []


def test_a_resync_rebuilds_membership_and_reports_what_was_missed() -> None:
    board = Board(["andi", "budi"])
    board.apply("QueueMemberAdded", added("andi"))
    # While AMI was down: andi logged out with *12, budi logged in with *11 and paused.
    changes = board.reset([{"Event": "QueueMember", **added("budi", Paused="1", PausedReason="softphone")}])
    assert {c.operator for c in changes} == {"andi", "budi"}
    assert board.get("andi").status() == "logged_out"
    assert board.get("budi").status() == "paused" and board.get("budi").reason == "softphone"
