"""The shift simulator's SIPp scenarios and what their logs say: a caller per call (its
key or its hang-up in the greeting written into the scenario), a person (operator or
agency trunk) per SIP port answering as the caller number says, and the wall-clock times
both logged, read back per caller number.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from bench.traffic import NUMBER_PREFIX, OPERATORS, Call
from tests.integration.stack import dtmf_pcap

SCENARIOS = Path(__file__).resolve().parent / "sipp"
TICK_MS = 100  # how often a ringing or talking person looks at the clock (answer-time resolution)
_N = r"(\d+)(?:\.0+)?"  # SIPp prints its variables as doubles: 1795917671.000000
_CALL = re.compile(rf"^CALL (\d+) {_N} {_N} {_N} {_N}", re.MULTILINE)
_END = re.compile(rf"^END (\d+) by=(\w+) {_N} {_N}", re.MULTILINE)
_ANSWER = re.compile(rf"^ANSWER (\d+) {_N} {_N}", re.MULTILINE)


def _t(s: str, us: str) -> float:
    return int(s) + int(us) / 1e6


def person_scenario(workdir: Path, *, delay_index: int) -> Path:
    """A person who answers after the caller number's `delay_index`-th delay (0: the first
    operator, and every agency; 1: the second operator)."""
    if not 0 <= delay_index < OPERATORS:
        raise ValueError(f"delay_index is 0..{OPERATORS - 1}, not {delay_index}")
    delays = [f"d{i}" for i in range(OPERATORS)]
    regexp = f"sip:({NUMBER_PREFIX}([0-9])" + "([0-9]{2})" * OPERATORS + "([0-9]{3})([0-9]{2}))@"
    names = ["all", "number", "kind", *delays, "talk", "seq"]
    path = workdir / f"shift_person_{delay_index}.xml"
    if path.exists():  # written once: a SIPp may be reading it
        return path
    text = (SCENARIOS / "shift_person.xml").read_text()
    for old, new in (("NUMBER_REGEXP", regexp), ("NUMBER_VARS", ",".join(names)),
                     ("NUMBER_LOG", " ".join(f"{n}=[${n}]" for n in names if n != "number")),
                     ("DELAY_VAR", delays[delay_index]), ("TICK_MS", str(TICK_MS))):
        assert old in text, f"{old} is missing from shift_person.xml"
        text = text.replace(old, new)
    path.write_text(text)
    return path


def caller_scenario(workdir: Path, call: Call, *, guard_ms: int) -> Path:
    """This caller's scenario: a hang-up in the greeting, or a key, then waiting for the
    person who answers to hang up (at most `guard_ms`)."""
    if call.hangup_ms:
        steps = [f'  <pause milliseconds="{call.hangup_ms}"/>', '  <nop next="hangup"/>']
    elif call.key is not None:
        steps = [f'  <pause milliseconds="{call.key_ms}"/>',
                 f'  <nop><action><exec play_pcap_audio="{dtmf_pcap(call.key, 1, workdir)}"/></action></nop>']
    else:
        steps = []
    text = (SCENARIOS / "shift_caller.xml").read_text()
    text = text.replace("  <!-- AFTER_ANSWER -->", "\n".join(steps)).replace("GUARD_MS", str(guard_ms))
    path = workdir / f"shift_caller_{call.seq}.xml"
    path.write_text(text)
    return path


@dataclass(frozen=True)
class CallerSide:
    invite: float  # wall clock, just before the INVITE left
    answered: float | None  # the IVR's 200 OK
    ended: float | None
    ended_by: str | None  # "person" (a BYE came) or "caller"


def caller_side(logs: str) -> dict[str, CallerSide]:
    """Each caller's times from its SIPp's log, by caller number."""
    ends = {m[1]: (m[2], _t(m[3], m[4])) for m in _END.finditer(logs)}
    out: dict[str, CallerSide] = {}
    for m in _CALL.finditer(logs):
        end = ends.get(m[1])
        out[m[1]] = CallerSide(_t(m[2], m[3]), _t(m[4], m[5]), end[1] if end else None, end[0] if end else None)
    return out


def first_answers(logs_by_person: dict[str, str]) -> dict[str, tuple[float, str]]:
    """When a person first answered each caller, and who (the person's label), by caller number."""
    out: dict[str, tuple[float, str]] = {}
    for who, logs in logs_by_person.items():
        for m in _ANSWER.finditer(logs):
            t = _t(m[2], m[3])
            if m[1] not in out or t < out[m[1]][0]:
                out[m[1]] = (t, who)
    return out
