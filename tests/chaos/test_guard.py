"""The guard (`ivr112 guard --asterisk`) on the real stack: the app killed and not coming
back while a caller is in the voice menu, and Asterisk itself killed.

Without the guard, the first caller would sit in Stasis() in silence for as long as the
app stays away; the dialplan fallback only helps calls that arrive after the app is gone.
"""

from __future__ import annotations

import os
import re
import signal

import pytest

from ari_app.asterisk import process
from tests.chaos.test_process_faults import kill_app
from tests.integration.stack import Stack, sipp_args, wait_for

pytestmark = pytest.mark.asterisk


def test_a_caller_in_the_menu_when_the_app_dies_for_good_is_sent_to_an_operator_by_the_guard(broken: Stack) -> None:
    s = broken
    caller = "081277000101"
    guard = s.guard_start()
    try:
        port = s.sipp_port()
        s.register_operator("operator1", port)
        operator = s.sipp("answer", port=port, background=True, timeout=90)
        # The caller says and keys nothing: the app keeps them in its menu (Stasis) for 30 s or more.
        call = s.sipp("caller", *sipp_args(("caller", caller)), "-s", "112", "-d", "40000", background=True, timeout=90)
        wait_for("the caller to be in the app's voice menu", lambda: (i := s.incident_for(caller)) and i.answered_at, timeout=20)
        kill_app(s)  # and it does not come back
        assert operator.wait() == 0, operator.report()
        assert caller in operator.logs(), "the operator's phone did not get the caller's number"
        assert call.wait() == 0, call.report()
        log = s.guard_log.read_text()
        rescue = re.search(r"the app has been away (\d+) s; caller \S+ sent to the operators \(ivr112-queue,kotim-operators,1\)", log)
        assert rescue, log[-2000:]
        print(f"app killed for good with a caller in the menu: 0 lost; the guard sent the caller to the operators "
              f"{rescue.group(1)} s after it saw the app gone")
        # The app comes back: the record says what happened while it was away (from
        # Asterisk's queue_log), so the call counts as answered by operator1, not abandoned.
        s.app_start()
        incident = wait_for("the incident to name the operator", lambda: (i := s.incident_for(caller)) and i.operator and i, timeout=20)
        assert incident.operator == "operator1" and incident.queue == "operators" and incident.route_result == "queued", incident
        assert incident.queued_at and incident.operator_answered_at and incident.arrived_at < incident.queued_at <= incident.operator_answered_at
        closed = wait_for("the incident to be closed", lambda: (i := s.incident_for(caller)) and i.ended_at and i, timeout=20)
        assert closed.operator == "operator1"
        assert caller not in [c["number"] for c in s.api("/api/callbacks")]
        kinds = [e.kind for e in s.incident_events(incident.id)]
        assert "queue_joined" in kinds and "operator_answered" in kinds
    finally:
        s.guard_stop(guard)
        s.stop_all_sipp()
        if s.app_proc is None:
            s.app_start()


def test_an_asterisk_that_dies_is_started_again_by_the_guard_and_the_next_caller_reaches_an_operator(broken: Stack) -> None:
    s = broken
    caller = "081277000102"
    guard = s.guard_start()
    try:
        pid = process.read_pid(s.layout)
        assert pid is not None
        os.kill(pid, signal.SIGKILL)  # as a segfault would: no `asterisk down`, the pid file stays
        wait_for("the guard to start Asterisk again", lambda: (p := process.read_pid(s.layout)) and p != pid and p, timeout=60)
        wait_for("the app to reconnect to the new Asterisk", lambda: s.health().get("ari_connected") and s.health().get("ami_connected"),
                 timeout=30)
        port = s.sipp_port()
        s.register_operator("operator1", port)
        operator = s.sipp("answer", port=port, background=True, timeout=60)
        call = s.sipp("caller", *sipp_args(("caller", caller)), "-s", "112", "-d", "12000",
                      steps=[("pause", "1500"), ("dtmf", "0")], timeout=60)
        assert call.returncode == 0, call.report()
        assert operator.wait() == 0, operator.report()
        assert caller in operator.logs()
        assert "died (pid file left, no process); starting it again" in s.guard_log.read_text()
        incident = wait_for("the incident", lambda: s.incident_for(caller))
        assert incident.operator == "operator1"
    finally:
        s.guard_stop(guard)
