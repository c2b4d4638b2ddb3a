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


def _connected(board: Board, caller: str, agent_channel: str) -> None:
    board.apply("AgentConnect", {"Queue": Q, "MemberName": "andi", "Interface": "PJSIP/andi", "Uniqueid": caller,
                                 "CallerIDNum": "0812", "DestChannel": agent_channel, "HoldTime": "3"})


def test_an_operator_whose_own_leg_ends_in_a_blind_transfer_is_free_though_the_caller_talks_on() -> None:
    """app_queue says AgentComplete only when the caller hangs up on the agency; the
    operator's own channel hanging up is the end of the operator's call."""
    board = Board(["andi"], {Q: 5})
    board.apply("QueueMemberAdded", added("andi"))
    _connected(board, "1700.5", "PJSIP/andi-00000009")
    assert board.apply("Hangup", {"Channel": "PJSIP/kotim-police-1-0000000a", "Uniqueid": "x"}) == []  # not the operator's
    changes = board.apply("Hangup", {"Channel": "PJSIP/andi-00000009", "Uniqueid": "1700.6"})
    assert [(c.action, c.detail["channel"], c.detail["reason"]) for c in changes] == [("completed", "1700.5", "operator leg ended")]
    assert board.get("andi").status() == "wrapup" and board.holding("1700.5") is None
    # The operator takes the next call; app_queue's late AgentComplete of the first changes nothing.
    _connected(board, "1700.9", "PJSIP/andi-0000000c")
    late = board.apply("AgentComplete", {"Queue": Q, "MemberName": "andi", "Interface": "PJSIP/andi", "Uniqueid": "1700.5", "TalkTime": "60"})
    assert late == [] and board.holding("1700.9") == "andi" and board.get("andi").status() == "talking"
    # Nor does a second Hangup of the old leg.
    assert board.apply("Hangup", {"Channel": "PJSIP/andi-00000009"}) == []
    # app_queue's AgentComplete after a transfer may come without the caller's Uniqueid.
    board.apply("Hangup", {"Channel": "PJSIP/andi-0000000c"})
    assert board.apply("AgentComplete", {"Queue": Q, "MemberName": "andi", "Interface": "PJSIP/andi", "TalkTime": "10", "Reason": "caller"}) == []


def test_a_call_ended_by_app_queue_is_logged_once_even_when_the_operators_leg_hangup_follows() -> None:
    board = Board(["andi"], {Q: 5})
    board.apply("QueueMemberAdded", added("andi"))
    _connected(board, "1700.5", "PJSIP/andi-00000009")
    done = board.apply("AgentComplete", {"Queue": Q, "MemberName": "andi", "Interface": "PJSIP/andi", "Uniqueid": "1700.5", "TalkTime": "40"})
    assert [(c.action, c.detail["talk_s"]) for c in done] == [("completed", "40")]
    assert board.apply("Hangup", {"Channel": "PJSIP/andi-00000009"}) == []


def _called(name: str, channel: str) -> dict[str, str]:
    return {"Queue": Q, "MemberName": name, "Interface": f"PJSIP/{name}", "Uniqueid": channel, "CallerIDNum": "0812"}


def test_a_ringing_softphone_names_the_caller_until_the_ring_ends_unanswered() -> None:
    board = Board(["andi"])
    board.apply("QueueMemberAdded", added("andi"))
    board.apply("AgentCalled", _called("andi", "1700.5"))
    view = board.get("andi").view()
    assert view["status"] == "ringing" and view["ringing_channel"] == "1700.5" and view["ringing_number"] == "0812"
    # A late device-state update saying "not in use" does not take the ringing caller away.
    board.apply("QueueMemberStatus", added("andi", Status="1"))
    assert board.get("andi").status() == "ringing"
    changes = board.apply("AgentRingNoAnswer", {**_called("andi", "1700.5"), "RingTime": "15000"})
    assert [c.action for c in changes] == ["no_answer"]
    assert board.get("andi").status() == "ready" and board.get("andi").view()["ringing_channel"] is None


def test_a_caller_hanging_up_or_another_operator_answering_ends_the_ring_for_everyone_rung() -> None:
    board = Board(["andi", "budi", "citra"])
    for name in ("andi", "budi", "citra"):
        board.apply("QueueMemberAdded", added(name))
    board.apply("AgentCalled", _called("andi", "1700.5"))
    board.apply("AgentCalled", _called("budi", "1700.5"))
    changes = board.apply("AgentConnect", {**_called("budi", "1700.5"), "DestChannel": "PJSIP/budi-00000001"})
    assert [(c.operator, c.action) for c in changes] == [("andi", "ring_ended"), ("budi", "answered")]
    assert board.get("andi").status() == "ready" and board.get("budi").status() == "talking"
    board.apply("AgentCalled", _called("citra", "1700.6"))
    changes = board.apply("Hangup", {"Channel": "PJSIP/carrier-00000002", "Uniqueid": "1700.6"})
    assert [(c.operator, c.action, c.detail["reason"]) for c in changes] == [("citra", "ring_ended", "caller hung up")]
    assert board.get("citra").status() == "ready"
