"""Operators on softphones, on the real stack: log in and out through AMI, the queue's
priorities and overflow, the callback list, silent and prank callers, whole-call recordings,
and the queue state resynced after AMI comes back."""

from __future__ import annotations

import array
import re
import time
import wave
from datetime import datetime
from pathlib import Path

import pytest

from ivr import prompts
from ivr.plan import load_plans
from ivr.store import Incident
from tests.integration.media import speak, wav_to_pcap
from tests.integration.stack import Sipp, Stack, sipp_args, wait_for

pytestmark = pytest.mark.asterisk

OPERATOR = "operator1"


def _from_users(sipp: Sipp) -> list[str]:
    return re.findall(r"INVITE-FROM-USER=(\S*)", sipp.logs())


def _ruris(sipp: Sipp) -> list[str]:
    return re.findall(r"INVITE-RURI=(\S*)", sipp.logs())


def _closed(live: Stack, caller: str) -> Incident:
    return wait_for(f"{caller}'s incident to close", lambda: (i := live.incident_for(caller)) and i.ended_at and i, timeout=40)


def _seconds(a: str, b: str) -> float:
    return (datetime.fromisoformat(b) - datetime.fromisoformat(a)).total_seconds()


def _wav(path: Path) -> tuple[float, int]:
    """Length in seconds and the loudest sample of a 16-bit WAV."""
    with wave.open(str(path)) as w:
        frames = w.readframes(w.getnframes())
        samples = array.array("h", frames)
        return w.getnframes() / w.getframerate(), max((abs(x) for x in samples), default=0)


def _prompt_seconds(live: Stack, *names: str) -> float:
    plans = load_plans(live.settings.plan_paths)
    files = {(f.name, f.language): f for f in prompts.require(plans.plans, live.settings.data_path)}
    return sum(prompts.duration(files[(n, "id")].path) for n in names)


def _queue_caller(caller: str, hold_ms: int) -> tuple[list[tuple[str, str]], list[str]]:
    """A caller who presses 0 during the greeting (straight to the operators) and stays on."""
    return [("pause", "1000"), ("dtmf", "0"), ("pause", str(hold_ms))], ["-d", "500"]


def test_an_operator_logs_in_pauses_resumes_takes_a_call_that_is_recorded_whole_and_logs_out(live: Stack) -> None:
    port = live.sipp_port()
    live.register_operator(OPERATOR, port, login=False)
    assert live.board()[OPERATOR]["status"] == "logged_out"
    live.ivr112("operators", "login", OPERATOR)
    wait_for("the board to show the login", lambda: live.board()[OPERATOR]["status"] == "ready")
    assert OPERATOR in live.queue_members()
    live.ivr112("operators", "pause", OPERATOR, "--reason", "istirahat")
    wait_for("the pause", lambda: live.board()[OPERATOR]["status"] == "paused")
    assert live.board()[OPERATOR]["reason"] == "istirahat"
    assert "paused:istirahat" in live.asterisk_cli("queue show kotim-operators").replace(" ", "")
    live.ivr112("operators", "resume", OPERATOR)
    wait_for("the resume", lambda: live.board()[OPERATOR]["status"] == "ready")

    caller = "081250005001"
    operator = live.sipp("answer", port=port, background=True, timeout=40)
    # The caller presses 0 during the greeting, then speaks to the operator.
    words = speak("Tolong, ada kebakaran di Jalan Ahmad Yani dekat pasar Sampit, cepat datang.", live.tmp / "fire.wav")
    spoken = wav_to_pcap(words, live.tmp / "fire.pcap")
    steps = [("pause", "1000"), ("dtmf", "0"), ("pause", "1000"), ("audio", str(live.tmp / "fire.pcap")),
             ("pause", str(int(spoken * 1000) + 500))]
    call = live.sipp("caller", *sipp_args(("caller", caller)), "-s", "112", "-d", "200", steps=steps, timeout=40)
    assert call.returncode == 0, call.report()
    assert operator.wait() == 0, operator.report()
    assert _from_users(operator) == [caller]
    incident = _closed(live, caller)
    assert incident.operator == OPERATOR and incident.operator_answered_at and incident.priority == "normal"
    actions = [row["action"] for row in live.api(f"/api/operators/{OPERATOR}/log")]
    for action in ("login", "pause", "resume", "ringing", "answered"):
        assert action in actions, actions

    # The whole call is recorded on the caller's channel: the greeting, then the caller's words
    # to the operator. (MixMonitor writes the moments audio flows: SIPp sends none between.)
    recording = next(r for r in live.recordings(incident.id) if r.kind == "call")
    path = live.layout.host(recording.path)
    wait_for("the call recording", lambda: path.exists() and path.stat().st_size > 8000)
    seconds, loudest = _wav(path)
    assert incident.ended_at is not None
    # At least the words and a part of the greeting (about 1 s of it before the 0; the
    # recording starts a moment after the answer, later under load: once 0.38 s was there).
    assert spoken + 0.2 <= seconds <= _seconds(incident.answered_at or "", incident.ended_at) + 0.2, (seconds, spoken)
    assert loudest > 1000  # voices, not silence
    live.ivr112("operators", "logout", OPERATOR)
    wait_for("the logout", lambda: live.board()[OPERATOR]["status"] == "logged_out")
    assert OPERATOR not in live.queue_members()


def test_with_nobody_logged_in_or_everyone_paused_the_call_overflows_to_the_backup_centre_and_counts_as_answered(live: Stack) -> None:
    provincial = live.trunk_ports[5079]
    for caller, paused in (("081250005002", False), ("081250005003", True)):
        if paused:
            live.register_operator(OPERATOR, live.sipp_port())
            live.ivr112("operators", "pause", OPERATOR, "--reason", "rapat")
            wait_for("the pause", lambda: live.board()[OPERATOR]["status"] == "paused")
        backup = live.sipp("answer", port=provincial, background=True, timeout=40)
        steps, extra = _queue_caller(caller, 5000)
        call = live.sipp("caller", *sipp_args(("caller", caller)), "-s", "112", *extra, steps=steps, timeout=40)
        assert call.returncode == 0, call.report()
        assert backup.wait() == 0, backup.report()
        assert _from_users(backup) == [caller]
        # The record says the provincial centre answered: not an abandoned call, no callback.
        incident = _closed(live, caller)
        assert incident.route == "agency:provincial" and incident.route_result == "answered by provincial trunk 1", incident
        events = live.incident_events(incident.id)
        assert [e.detail["target"] for e in events if e.kind == "route"] == ["queue:operators", "agency:provincial"]
        kinds = [e.kind for e in events]
        assert kinds.index("overflow") < kinds.index("trunk_dial") < kinds.index("trunk_answered")
        assert caller not in [c["number"] for c in live.api("/api/callbacks")]
        answered_at = live.read(lambda s, i=incident: s.agency_answers(i.arrived_at, i.ended_at or "9999"))[incident.id]
        assert _seconds(incident.arrived_at, answered_at) <= 15  # a person within 15 s, in the figures
    # The number's next call is not taken for a redial after a dropped call.
    again = live.sipp("caller", *sipp_args(("caller", caller)), "-s", "112", "-d", "1500", timeout=20)
    assert again.returncode == 0, again.report()
    latest = wait_for("the next call's incident", lambda: max((i for i in live.incidents() if i.caller_number == caller), key=lambda i: i.id))
    wait_for("its start", lambda: live.incident_events(latest.id))
    assert "redial" not in (latest.flags or "") and "caller_history" not in [e.kind for e in live.incident_events(latest.id)]


def test_a_dropped_caller_is_listed_called_back_once_from_112_and_the_entry_closes(live: Stack) -> None:
    caller = "081250005004"
    # Hangs up during the greeting: no person answered.
    dropped = live.sipp("caller", *sipp_args(("caller", caller)), "-s", "112", "-d", "1500", timeout=20)
    assert dropped.returncode == 0, dropped.report()
    _closed(live, caller)
    listed = wait_for("the callback list", lambda: [c for c in live.api("/api/callbacks") if c["number"] == caller])
    assert listed[0]["status"] == "open" and listed[0]["calls"] == 1

    port = live.sipp_port()
    live.register_operator(OPERATOR, port, login=False)
    sbc = live.sipp("answer_bye", "-d", "3000", port=live.trunk_ports[5090], background=True, timeout=40)
    placed = live.ivr112("callback", caller, "--operator", OPERATOR)
    assert "number: " + caller in placed.stdout
    # While the operator's softphone rings, a second callback is refused: no duplicate.
    status, answer = live.console(f"/api/callbacks/{caller}/call", {"operator": "operator2"})
    assert status == 409 and "already being called back by operator1" in answer["error"]
    # The operator picks up (SIPp answers a retransmission of the INVITE).
    operator = live.sipp("answer", port=port, background=True, timeout=40)
    assert sbc.wait() == 0, sbc.report()
    assert operator.wait() == 0, operator.report()
    # The carrier's SBC was asked for the caller's number, from the service number 112.
    assert _ruris(sbc) == [caller] and _from_users(sbc) == ["112"]
    entry = wait_for("the entry to close",
                     lambda: next((c for c in live.api("/api/callbacks?all=1") if c["number"] == caller and c["status"] == "closed"), None))
    assert entry["closed_reason"] == "callback connected" and entry["attempts"] == 1
    assert caller not in [c["number"] for c in live.api("/api/callbacks")]
    status, answer = live.console(f"/api/callbacks/{caller}/call", {"operator": OPERATOR})
    assert status == 409 and "needs no callback" in answer["error"]


def test_an_urgent_caller_is_answered_before_one_who_waited_longer(live: Stack) -> None:
    """The operator is busy; A (normal) joins, then B (a redial after a dropped call: urgent).
    When the operator is free again, B is offered first."""
    first, a, b = "081250005010", "081250005011", "081250005012"
    dropped = live.sipp("caller", *sipp_args(("caller", b)), "-s", "112", "-d", "1500", timeout=20)
    assert dropped.returncode == 0, dropped.report()
    wait_for("B on the callback list", lambda: [c for c in live.api("/api/callbacks") if c["number"] == b])

    port = live.sipp_port()
    live.register_operator(OPERATOR, port)
    operator = live.sipp("answer", port=port, background=True, timeout=90, calls=2)
    busy = live.sipp("caller", *sipp_args(("caller", first)), "-s", "112", "-d", "500",
                     steps=[("pause", "1000"), ("dtmf", "0"), ("pause", "9000")], background=True, timeout=60)
    wait_for("the operator to take the first call", lambda: live.board()[OPERATOR]["status"] == "talking", timeout=20)
    waiting = [("pause", "1000"), ("dtmf", "0"), ("pause", "22000")]
    call_a = live.sipp("caller", *sipp_args(("caller", a)), "-s", "112", "-d", "500", steps=waiting, background=True, timeout=60)
    wait_for("A in the queue", lambda: (i := live.incident_for(a)) and i.queued_at, timeout=20)
    time.sleep(1.0)
    call_b = live.sipp("caller", *sipp_args(("caller", b)), "-s", "112", "-d", "500", steps=waiting, background=True, timeout=60)
    # The supervisor's wall shows both callers waiting while the operator talks.
    wait_for("A and B on the wall", lambda: {a, b} <= {w["caller"] for w in live.api("/api/wall")["waiting"]}, timeout=15)
    assert live.api("/api/wall")["operators"][0]["status"] == "talking"
    for sipp in (busy, call_a, call_b):
        assert sipp.wait() == 0, sipp.report()
    assert operator.wait() == 0, operator.report()
    # The second call the operator got was B's, though A had waited longer.
    assert _from_users(operator) == [first, b], operator.logs()
    incident_b = max((i for i in live.incidents() if i.caller_number == b), key=lambda i: i.id)
    assert incident_b.priority == "urgent" and "redial" in (incident_b.flags or "")
    incident_a = live.incident_for(a)
    assert incident_a is not None and incident_a.priority == "normal"
    # While they waited, app_queue told them their place, in Indonesian, from our prompts.
    log = live.layout.messages_log.read_text(errors="replace")
    # (Asterisk logs the name it was given; it reads the file from the caller's language folder.)
    assert re.search(r"Playing '[^']*/sounds/_system/queue-(youarenext|thereare)\.\w+' \(language 'id'\)", log)


def test_a_silent_caller_who_presses_the_help_key_goes_urgent_and_is_flagged(live: Stack) -> None:
    caller = "081250005020"
    plan = load_plans(live.settings.plan_paths).default
    menu = plan.menus["main"]
    # Located (a precise PIDF-LO), so not asked where: greeting, menu, its timeout, then the
    # silent prompt; 5 5 pressed while it plays or in the wait after it (a window of the
    # prompt's length plus silent.timeout). Aimed at the middle of the prompt: a machine
    # under load starts the greeting a little late, and a 5 pressed in the menu would be
    # the disaster agency's key.
    silent_prompt = _prompt_seconds(live, plan.silent.prompt)
    before_help = _prompt_seconds(live, *plan.entry.greeting, *menu.prompts) + menu.timeout + silent_prompt / 2 + 1.0
    circle = ('<gs:Circle srsName="urn:ogc:def:crs:EPSG::4326"><gml:pos>-2.533 112.95</gml:pos>'
              '<gs:radius uom="urn:ogc:def:uom:EPSG::9001">20</gs:radius></gs:Circle>')
    port = live.sipp_port()
    live.register_operator(OPERATOR, port)
    operator = live.sipp("answer", port=port, background=True, timeout=60)
    call = live.sipp("caller_pidf", *sipp_args(("caller", caller), ("shape", circle)), "-s", "112", "-d", "500",
                     steps=[("pause", str(int(before_help * 1000))), ("dtmf", "5"), ("dtmf", "5"), ("pause", "5000")], timeout=60)
    assert call.returncode == 0, call.report()
    assert operator.wait() == 0, operator.report()
    incident = _closed(live, caller)
    assert incident.priority == "urgent" and incident.flags == "silent_needs_help"
    assert incident.operator == OPERATOR
    kinds = [e.kind for e in live.incident_events(incident.id)]
    assert kinds.index("silent") < kinds.index("silent_help") < kinds.index("route")


def test_a_prank_flagged_number_is_warned_then_reaches_an_operator_at_low_priority_and_is_recorded(live: Stack) -> None:
    caller = "081250005030"
    for _ in range(3):
        short = live.sipp("caller", *sipp_args(("caller", caller)), "-s", "112", "-d", "1000", timeout=20)
        assert short.returncode == 0, short.report()
    wait_for("three incidents", lambda: len([i for i in live.incidents() if i.caller_number == caller and i.ended_at]) == 3)
    for incident in [i for i in live.incidents() if i.caller_number == caller]:
        live.ivr112("classify", str(incident.id), "prank", "--operator", OPERATOR)
    port = live.sipp_port()
    live.register_operator(OPERATOR, port)
    operator = live.sipp("answer", port=port, background=True, timeout=60)
    call = live.sipp("caller", *sipp_args(("caller", caller)), "-s", "112", "-d", "500",
                     steps=[("pause", "3000"), ("dtmf", "0"), ("pause", "5000")], timeout=60)
    assert call.returncode == 0, call.report()
    assert operator.wait() == 0, operator.report()
    incident = max((i for i in live.incidents() if i.caller_number == caller), key=lambda i: i.id)
    incident = wait_for("the call to end", lambda: (i := live.read(lambda s: s.get(incident.id))) and i.ended_at and i)
    assert incident.priority == "low" and "prank_flagged" in (incident.flags or "")
    events = live.incident_events(incident.id)
    assert "prank_warning" in [e.kind for e in events]
    assert next(e.detail["prompts"] for e in events if e.kind == "prompt") == "prank_warning"  # no greeting first
    assert [r.kind for r in live.recordings(incident.id)] == ["call"]
    # A supervisor clears the number: the next call hears the greeting again.
    live.ivr112("prank", "clear", caller, "--by", "supervisor")
    again = live.sipp("caller", *sipp_args(("caller", caller)), "-s", "112", "-d", "1500", timeout=20)
    assert again.returncode == 0, again.report()
    latest = wait_for("the next incident", lambda: max((i for i in live.incidents() if i.caller_number == caller), key=lambda i: i.id))
    wait_for("its first prompt", lambda: live.incident_events(latest.id))
    assert "prank_warning" not in [e.kind for e in live.incident_events(latest.id)]


def test_the_queue_state_is_resynced_after_the_ami_connection_drops(live: Stack) -> None:
    live.register_operator(OPERATOR, live.sipp_port())
    wait_for("ready", lambda: live.board()[OPERATOR]["status"] == "ready")
    before = live.health()
    assert before["ami_connected"] is True
    sessions = live.asterisk_cli("manager show connected")
    fds = re.findall(r"^\s*ivr112\s+\S+\s+\d+\s+\d+\s+(\d+)", sessions, flags=re.MULTILINE)
    assert len(fds) == 1, sessions
    # Asterisk cuts the app's AMI session; meanwhile the operator is taken out of the queue.
    live.asterisk_cli(f"manager kick session {fds[0]}")
    live.asterisk_cli(f"queue remove member PJSIP/{OPERATOR} from kotim-operators")
    wait_for("AMI to come back and the queue state to be read again",
             lambda: (h := live.health()).get("ami_connected") and h["ami_logins"] > before["ami_logins"], timeout=30)
    wait_for("the board to show the operator out", lambda: live.board()[OPERATOR]["status"] == "logged_out")
    # And the app can act through the new session.
    live.ivr112("operators", "login", OPERATOR)
    wait_for("the operator back in", lambda: OPERATOR in live.queue_members())


def test_the_softphone_feature_codes_log_in_pause_resume_and_log_out(live: Stack) -> None:
    port = live.sipp_port()
    live.register_operator(OPERATOR, port, login=False)
    password = live.operator_password(OPERATOR)

    def dial(code: str) -> None:
        run = live.sipp("operator_dial", *sipp_args(("operator", OPERATOR)), "-s", code, "-au", OPERATOR, "-ap", password,
                        port=port, timeout=20)
        assert run.returncode == 0, run.report()

    dial("*11")
    wait_for("the login", lambda: live.board()[OPERATOR]["status"] == "ready")
    assert OPERATOR in live.queue_members()
    dial("*13")
    wait_for("the pause", lambda: live.board()[OPERATOR]["status"] == "paused")
    assert live.board()[OPERATOR]["reason"] == "softphone"
    dial("*14")
    wait_for("the resume", lambda: live.board()[OPERATOR]["status"] == "ready")
    dial("*12")
    wait_for("the logout", lambda: live.board()[OPERATOR]["status"] == "logged_out")
    assert OPERATOR not in live.queue_members()


def _answered_call(live: Stack, caller: str, hold_ms: int) -> tuple[Sipp, Sipp, Incident]:
    port = live.sipp_port()
    live.register_operator(OPERATOR, port)
    operator = live.sipp("answer", port=port, background=True, timeout=60)
    call = live.sipp("caller", *sipp_args(("caller", caller)), "-s", "112", "-d", "500",
                     steps=[("pause", "1000"), ("dtmf", "0"), ("pause", str(hold_ms))], background=True, timeout=60)
    incident = wait_for("the operator to answer", lambda: (i := live.incident_for(caller)) and i.operator_answered_at and i, timeout=20)
    # The board knows which incident the operator now holds (the console's screen pop).
    assert wait_for("the screen data", lambda: live.board()[OPERATOR]["incident_id"]) == incident.id
    return operator, call, incident


def test_an_answered_caller_is_transferred_blind_to_the_police_with_their_number(live: Stack) -> None:
    caller = "081250005040"
    operator, call, incident = _answered_call(live, caller, 9000)
    police = live.sipp("answer", port=live.trunk_ports[5071], background=True, timeout=60)
    moved = live.ivr112("transfer", str(incident.id), "police")
    assert "to: kotim-police" in moved.stdout
    assert operator.wait() == 0, operator.report()  # the operator is released at once
    # The board shows the operator free while the caller still talks with the police.
    wait_for("the board to free the operator", lambda: live.board()[OPERATOR]["status"] in ("ready", "wrapup"), timeout=10)
    assert live.board()[OPERATOR]["caller_number"] is None
    assert call.proc.poll() is None, "the caller should still be on the line with the police"
    assert call.wait() == 0, call.report()
    assert police.wait() == 0, police.report()
    assert _from_users(police) == [caller]
    assert ("transfer", "blind") in [(e.kind, e.detail.get("mode")) for e in live.incident_events(incident.id)]
    # The operator was free from the transfer on, not until the caller hung up on the police.
    completed = next(row for row in live.api(f"/api/operators/{OPERATOR}/log") if row["action"] == "completed")
    assert _seconds(completed["at"], live.read(lambda s: s.get(incident.id)).ended_at or "") >= 3, completed  # type: ignore[union-attr]
    # And the record says the police answered.
    closed = _closed(live, caller)
    assert closed.operator == OPERATOR and closed.route == "agency:police"
    assert closed.route_result == "answered by police trunk 1", closed
    kinds = [e.kind for e in live.incident_events(closed.id)]
    assert kinds.index("operator_answered") < kinds.index("transfer") < kinds.index("trunk_answered")


def test_a_three_way_conference_keeps_caller_and_police_together_after_the_operator_leaves(live: Stack) -> None:
    caller = "081250005041"
    port = live.sipp_port()
    live.register_operator(OPERATOR, port)
    # The operator's softphone hangs up 4 s after answering; the caller stays 14 s.
    operator = live.sipp("answer_bye", "-d", "4000", port=port, background=True, timeout=60)
    call = live.sipp("caller", *sipp_args(("caller", caller)), "-s", "112", "-d", "500",
                     steps=[("pause", "1000"), ("dtmf", "0"), ("pause", "14000")], background=True, timeout=60)
    incident = wait_for("the operator to answer", lambda: (i := live.incident_for(caller)) and i.operator_answered_at and i, timeout=20)
    police = live.sipp("answer", port=live.trunk_ports[5071], background=True, timeout=60)
    live.ivr112("transfer", str(incident.id), "police", "--conference")
    assert operator.wait() == 0, operator.report()
    assert call.wait() == 0, call.report()
    # The police line stayed until the caller hung up (their BYE reached it), with the caller's number.
    assert police.wait() == 0, police.report()
    assert _from_users(police) == [caller]
    log = live.layout.messages_log.read_text(errors="replace")
    assert "ivr112-conference" in log and f"ivr112-{incident.id}" in log


def test_a_caller_queued_by_the_fallback_while_the_app_was_down_and_who_hangs_up_is_still_listed(live: Stack) -> None:
    caller = "081250005050"
    # operator1 is logged in but its softphone never answers (nothing listens on its port).
    live.register_operator(OPERATOR, live.sipp_port())
    live.app_stop()
    try:
        call = live.sipp("caller", *sipp_args(("caller", caller)), "-s", "112", "-d", "25000", background=True, timeout=60)
        wait_for("the caller in the queue", lambda: "wait:" in live.asterisk_cli("queue show kotim-operators"), timeout=20)
    finally:
        live.app_start()
    assert call.wait() == 0, call.report()
    entry = wait_for("the callback entry", lambda: next((c for c in live.api("/api/callbacks") if c["number"] == caller), None))
    assert entry["incident_id"] is None and entry["status"] == "open"
    assert live.incident_for(caller) is None


def test_a_supervisors_major_incident_message_is_heard_after_the_greeting_and_switched_off_without_a_reload(live: Stack) -> None:
    text = "Banjir di Kecamatan Baamang sudah ditangani BPBD. Jika Anda menelepon untuk hal lain, tekan satu."
    on = live.ivr112("announce", text, "--en", "The flood in Baamang is being handled. For anything else, press one.")
    assert "on: True" in on.stdout
    caller = "081250005060"
    call = live.sipp("caller", *sipp_args(("caller", caller)), "-s", "112", "-d", "1000",
                     steps=[("pause", str(int((_prompt_seconds(live, "greeting") + 1.5) * 1000))), ("dtmf", "1"), ("pause", "1500")],
                     timeout=60)
    assert call.returncode == 0, call.report()
    incident = _closed(live, caller)
    kinds = [e.kind for e in live.incident_events(incident.id)]
    assert kinds.index("announcement") < kinds.index("announcement_skipped")
    log = live.layout.messages_log.read_text(errors="replace")
    assert re.search(r"Playing '[^']*/sounds/_announcement/id/announcement-[0-9a-f]+\.\w+' \(language 'id'\)", log)
    # A key during the message skips it; the caller goes on as usual (here: asked where they are).
    assert kinds[kinds.index("announcement_skipped") + 1] == "ask_location"
    live.ivr112("announce", "off")
    caller = "081250005061"
    call = live.sipp("caller", *sipp_args(("caller", caller)), "-s", "112", "-d", str(int((_prompt_seconds(live, "greeting") + 1.5) * 1000)),
                     timeout=60)
    assert call.returncode == 0, call.report()
    assert "announcement" not in [e.kind for e in live.incident_events(_closed(live, caller).id)]
