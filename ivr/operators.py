"""Who is on shift and what each operator is doing, from Asterisk's queue events. Pure.

Asterisk's app_queue holds the truth (members are added by AMI or by the softphone's
feature codes, and survive restarts); the `Board` follows it: `reset` from a QueueStatus
listing after every AMI (re)login, then `apply` for each event. States an operator can
be in, in the order the console shows them:

    logged_out   in no queue
    paused       logged in, paused (with a reason)
    ringing      a queue call is ringing the softphone (the caller's channel is known from
                 AgentCalled, so the console can show the call before it is answered)
    talking      on a call (the incident it holds is known from AgentConnect)
    wrapup       the call ended less than the queue's wrap-up time ago
    ready        logged in, free
    unreachable  logged in but the softphone is not registered
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from ivr.store import now

# Asterisk device states, as QueueMember*/QueueMemberStatus `Status` numbers.
NOT_INUSE, INUSE, BUSY, INVALID, UNAVAILABLE, RINGING, RINGINUSE, ONHOLD = 1, 2, 3, 4, 5, 6, 7, 8
MEMBER_EVENTS = ("QueueMember", "QueueMemberAdded", "QueueMemberRemoved", "QueueMemberPause", "QueueMemberStatus")
AGENT_EVENTS = ("AgentCalled", "AgentConnect", "AgentComplete", "AgentRingNoAnswer", "AgentDump")
# Every AMI event the operators' desk reads (the board, the queue's callers, transfers), and
# the events of the QueueStatus list it asks for. Asterisk sends this app's AMI user only
# these (manager.conf's eventfilter): it sent every call-class event of every call before
# (channel states, caller ids, bridges...), a tenth of the app's event loop to parse.
AMI_EVENTS = ("Hangup", "QueueCallerJoin", "QueueCallerLeave", "QueueCallerAbandon", *MEMBER_EVENTS, *AGENT_EVENTS,
              "BlindTransfer", "AttendedTransfer", "QueueParams", "QueueEntry", "QueueStatusComplete")


# The operator's browser phone is a second PJSIP endpoint beside the softphone's: its name
# is the operator's plus this suffix ('.' is never in an operator's name, so no clash).
WEB_SUFFIX = ".web"


def web_endpoint(name: str) -> str:
    """andi -> andi.web: the endpoint the operator's browser phone registers as."""
    return f"{name}{WEB_SUFFIX}"


def operator_of(interface: str) -> str:
    """PJSIP/andi -> andi (any technology prefix); the browser phone PJSIP/andi.web -> andi."""
    endpoint = interface.split("/", 1)[-1] if interface else ""
    return endpoint.removesuffix(WEB_SUFFIX)


def _name(f: dict[str, str]) -> str:
    """The operator an event is about: the softphone's endpoint (Interface, or Location in
    QueueStatus), which is the operator's account name; else the member name."""
    interface = f.get("Interface") or f.get("Location") or f.get("StateInterface") or ""
    return operator_of(interface) or f.get("MemberName", "")


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes")


def _int(value: str | None) -> int:
    try:
        return int(value or "0")
    except ValueError:
        return 0


@dataclass
class OperatorState:
    name: str
    queues: set[str] = field(default_factory=set)
    paused: bool = False
    reason: str = ""
    device: int = 0
    interface: str = ""  # the member's interface in the queues: PJSIP/andi (softphone) or PJSIP/andi.web (browser)
    caller_channel: str = ""  # the caller's channel (its uniqueid) of the call in hand
    caller_number: str = ""
    ringing_channel: str = ""  # the caller's channel (its uniqueid) ringing the softphone now
    ringing_number: str = ""
    agent_channel: str = ""  # the operator's own channel on that call (for transfers)
    call_queue: str = ""  # the queue that call came from (its wrap-up time)
    incident_id: int | None = None  # the incident ringing or in hand (screen data for the console)
    answered_at: str = ""
    wrapup_until: str = ""
    calls_taken: int = 0
    since: str = field(default_factory=now)

    def status(self, at: str | None = None) -> str:
        if not self.queues:
            return "logged_out"
        if self.caller_channel:
            return "talking"
        if self.ringing_channel or self.device in (RINGING, RINGINUSE):
            return "ringing"
        if self.device in (INUSE, BUSY, ONHOLD):
            return "talking"
        if self.paused:
            return "paused"
        if self.device in (INVALID, UNAVAILABLE):
            return "unreachable"
        if self.wrapup_until and (at or now()) < self.wrapup_until:
            return "wrapup"
        return "ready"

    def view(self) -> dict[str, object]:
        return {
            "name": self.name, "status": self.status(), "queues": sorted(self.queues), "paused": self.paused,
            "reason": self.reason, "caller_channel": self.caller_channel or None, "caller_number": self.caller_number or None,
            "ringing_channel": self.ringing_channel or None, "ringing_number": self.ringing_number or None,
            "answered_at": self.answered_at or None, "incident_id": self.incident_id, "calls_taken": self.calls_taken, "since": self.since,
            "phone": self.phone,
        }

    @property
    def phone(self) -> str | None:
        """Which phone the queues ring: "browser", "softphone", or None when logged out."""
        if not self.queues or not self.interface:
            return None
        return "browser" if self.interface.endswith(WEB_SUFFIX) else "softphone"


@dataclass(frozen=True)
class Change:
    """Something worth a line in the operators' log (and the live view)."""

    operator: str
    action: str  # login, logout, pause, resume, ringing, answered, completed, no_answer, ring_ended
    detail: dict[str, str]


class Board:
    def __init__(self, names: list[str], wrapup_s: dict[str, int] | None = None) -> None:
        self.operators = {n: OperatorState(n) for n in names}
        self.wrapup_s = wrapup_s or {}  # per Asterisk queue name

    def get(self, name: str) -> OperatorState:
        if name not in self.operators:
            self.operators[name] = OperatorState(name)
        return self.operators[name]

    def ready(self, queue: str, at: str | None = None) -> list[str]:
        """Operators of `queue` (Asterisk's name) free to take a call now: logged in, not
        paused, not ringing, not on a call, not in wrap-up, softphone reachable."""
        return [o.name for o in self.operators.values() if queue in o.queues and o.status(at) == "ready"]

    def holding(self, caller_channel: str) -> str | None:
        """The operator talking with this caller's channel."""
        return next((o.name for o in self.operators.values() if o.caller_channel == caller_channel), None)

    def reset(self, members: list[dict[str, str]]) -> list[Change]:
        """Rebuild queue membership from a QueueStatus listing; returns what differed."""
        before = {n: (set(o.queues), o.paused) for n, o in self.operators.items()}
        for o in self.operators.values():
            o.queues.clear()
        for m in members:
            self._member(m)
        changes = []
        for name, o in self.operators.items():
            queues, paused = before.get(name, (set(), False))
            if queues != o.queues or paused != o.paused:
                changes.append(Change(name, "resync", {"queues": ",".join(sorted(o.queues)), "paused": str(o.paused).lower()}))
        return changes

    def _member(self, f: dict[str, str]) -> OperatorState | None:
        name = _name(f)
        if not name:
            return None
        o = self.get(name)
        if f.get("Queue"):
            o.queues.add(f["Queue"])
        interface = f.get("Interface") or f.get("Location") or ""
        if interface:
            o.interface = interface
        if "Paused" in f:
            o.paused = _flag(f.get("Paused"))
            o.reason = (f.get("PausedReason") or "") if o.paused else ""
        if "Status" in f:
            o.device = _int(f.get("Status"))
        if "CallsTaken" in f:
            o.calls_taken = _int(f.get("CallsTaken"))
        return o

    def apply(self, event: str, f: dict[str, str]) -> list[Change]:
        """Follow one AMI event; returns the changes to log (none for most status updates)."""
        if event == "Hangup":
            return self._ring_ended(f.get("Uniqueid", ""), "caller hung up") + self._hung_up(f.get("Channel", ""))
        if event == "QueueCallerAbandon":
            return self._ring_ended(f.get("Uniqueid", ""), "caller hung up")
        name = _name(f)
        if event not in MEMBER_EVENTS + AGENT_EVENTS or not name:
            return []
        if event in MEMBER_EVENTS:
            return self._member_event(event, self.get(name), f)
        return self._agent_event(event, self.get(name), f)

    def _member_event(self, event: str, o: OperatorState, f: dict[str, str]) -> list[Change]:
        """Queue membership: login, logout, pause and device status."""
        name, queue = o.name, f.get("Queue", "")
        if event == "QueueMemberRemoved":
            o.queues.discard(queue)
            if not o.queues:
                o.paused, o.reason, o.since = False, "", now()
                return [Change(name, "logout", {"queue": queue})]
            return []
        if event in ("QueueMemberAdded", "QueueMember"):
            first = not o.queues
            self._member(f)
            if first and event == "QueueMemberAdded":
                o.since = now()
                return [Change(name, "login", {"queue": queue})]
            return []
        if event == "QueueMemberPause":
            was = o.paused
            self._member(f)
            if o.paused != was:
                o.since = now()
                return [Change(name, "pause" if o.paused else "resume", {"reason": o.reason})]
            return []
        self._member(f)  # QueueMemberStatus
        return []

    def _agent_event(self, event: str, o: OperatorState, f: dict[str, str]) -> list[Change]:
        """A caller offered to the operator: ringing, answered, finished, not answered."""
        name, queue, caller = o.name, f.get("Queue", ""), f.get("Uniqueid", "")
        if event == "AgentCalled":
            o.device = RINGING
            o.ringing_channel, o.ringing_number = caller, f.get("CallerIDNum", "")
            return [Change(name, "ringing", {"caller": o.ringing_number, "channel": caller})]
        if event == "AgentConnect":
            # Others rung for the same caller (ringall) stop ringing: someone has answered.
            others = self._ring_ended(caller, f"answered by {name}", keep=name)
            o.ringing_channel, o.ringing_number = "", ""
            o.caller_channel, o.caller_number, o.answered_at = caller, f.get("CallerIDNum", ""), now()
            o.agent_channel = f.get("DestChannel", "")
            o.call_queue = queue
            o.device = INUSE
            return [*others, Change(name, "answered", {"channel": caller, "caller": o.caller_number, "hold_s": f.get("HoldTime", "")})]
        if event in ("AgentComplete", "AgentDump"):
            if not o.caller_channel or (caller and o.caller_channel != caller):
                # Ended already when the operator's own leg hung up (a transfer moved the
                # caller on), or about an earlier call than the one in hand now.
                return []
            return [self._release(o, queue, talk_s=f.get("TalkTime", ""), reason=f.get("Reason", ""))]
        # AgentRingNoAnswer
        o.device = NOT_INUSE
        if o.ringing_channel == caller:
            o.ringing_channel, o.ringing_number = "", ""
        return [Change(name, "no_answer", {"channel": caller, "ring_ms": f.get("RingTime", "")})]

    def _ring_ended(self, caller_channel: str, reason: str, *, keep: str = "") -> list[Change]:
        """The caller's channel stopped ringing these softphones (hung up, or answered by
        another operator): each of them is told, so the console takes the pop away."""
        changes = []
        for o in self.operators.values():
            if caller_channel and o.ringing_channel == caller_channel and o.name != keep:
                o.ringing_channel, o.ringing_number = "", ""
                if o.device in (RINGING, RINGINUSE):
                    o.device = NOT_INUSE
                changes.append(Change(o.name, "ring_ended", {"channel": caller_channel, "reason": reason}))
        return changes

    def _hung_up(self, channel: str) -> list[Change]:
        """The operator's own leg of the call in hand hung up: the operator is free, whatever
        happens to the caller next (a blind transfer moves the caller on to an agency, and
        app_queue says the call is complete only when the caller hangs up)."""
        o = next((o for o in self.operators.values() if channel and o.agent_channel == channel), None)
        if o is None or not o.caller_channel:
            return []
        talk = ""
        if o.answered_at:
            talk = str(round((datetime.fromisoformat(now()) - datetime.fromisoformat(o.answered_at)).total_seconds()))
        return [self._release(o, o.call_queue, talk_s=talk, reason="operator leg ended")]

    def _release(self, o: OperatorState, queue: str, *, talk_s: str, reason: str) -> Change:
        held = o.caller_channel
        o.caller_channel, o.caller_number, o.answered_at, o.agent_channel, o.call_queue = "", "", "", "", ""
        o.incident_id = None
        o.device = NOT_INUSE
        wrap = self.wrapup_s.get(queue, 0)
        o.wrapup_until = (datetime.fromisoformat(now()) + timedelta(seconds=wrap)).isoformat(timespec="milliseconds")
        return Change(o.name, "completed", {"channel": held, "talk_s": talk_s, "reason": reason})

