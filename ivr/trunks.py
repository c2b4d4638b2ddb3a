"""Why an agency trunk did not take a call, in the words the incident and the supervisor's
trunk health show. Pure.

The app knows three things about a failed trunk leg: Asterisk's hang-up cause (Q.850), what
the trunk answered to the INVITE (from the SIP capture: the highest provisional code, the
final code), and whether the leg ever rang. The hang-up cause alone misleads: a trunk that
never answered at all ends with "User alerting, no answer" when the ring timeout cuts it,
although nothing rang. So the SIP answers come first, the cause second.
"""

from __future__ import annotations

from dataclasses import dataclass

NO_RESPONSE = "no response"
BUSY = "busy"
REFUSED = "refused"
UNREACHABLE = "unreachable"
NO_ANSWER = "no answer after ringing"
ACCEPTED_NO_ANSWER = "no answer (the trunk took the call but never rang)"

# Q.850 causes, as Asterisk names them (causes.h).
CAUSE_UNALLOCATED = 1
CAUSE_NO_ROUTE_DESTINATION = 3
CAUSE_USER_BUSY = 17
CAUSE_NO_USER_RESPONSE = 18
CAUSE_NO_ANSWER = 19
CAUSE_CALL_REJECTED = 21
CAUSE_DESTINATION_OUT_OF_ORDER = 27
CAUSE_CONGESTION = 34
CAUSE_NETWORK_OUT_OF_ORDER = 38
UNREACHABLE_CAUSES = (CAUSE_NO_ROUTE_DESTINATION, CAUSE_DESTINATION_OUT_OF_ORDER, CAUSE_NETWORK_OUT_OF_ORDER)
BUSY_CODES = (486, 600)
REQUEST_TERMINATED = 487  # what a trunk answers to the CANCEL we send when its ring time is up


@dataclass(frozen=True)
class LegOutcome:
    """All the app saw of one trunk leg that did not answer."""

    cause: int | None = None
    cause_txt: str = ""
    rang: bool = False  # Asterisk saw the leg ringing (180)
    provisional: int | None = None  # highest 1xx the trunk sent, when the capture saw the INVITE
    final: int | None = None  # the trunk's final SIP code
    final_reason: str = ""
    captured: bool = False  # the SIP capture saw our INVITE (so silence means silence)
    timed_out_silent: bool = False  # the app gave up: no answer at all within response_timeout


def trunk_failure(leg: LegOutcome) -> str:
    """One line: the kind (no response, busy, refused, unreachable, no answer after ringing)
    and, in brackets, the SIP answer or Asterisk's cause behind it."""
    if leg.timed_out_silent:
        return NO_RESPONSE
    sip = f"SIP {leg.final} {leg.final_reason}".strip() if leg.final else ""
    if leg.final == REQUEST_TERMINATED:
        # The answer to our own CANCEL (the ring timeout ran out), not the trunk's refusal.
        return NO_ANSWER if leg.rang or (leg.provisional or 0) >= 180 else ACCEPTED_NO_ANSWER if leg.provisional else NO_RESPONSE
    if leg.final is not None:
        if leg.final in BUSY_CODES:
            return f"{BUSY} ({sip})"
        if leg.final == 408:  # the far end's own timeout, or pjsip's when nothing came back
            return f"{NO_RESPONSE} ({sip})" if not leg.provisional else f"{NO_ANSWER} ({sip})"
        return f"{REFUSED} ({sip})"
    because = f" ({leg.cause_txt or leg.cause})" if (leg.cause_txt or leg.cause is not None) else ""
    if leg.cause == CAUSE_USER_BUSY:
        return f"{BUSY}{because}"
    if leg.cause in UNREACHABLE_CAUSES:
        return f"{UNREACHABLE}{because}"
    if leg.rang or (leg.provisional or 0) >= 180:
        return NO_ANSWER
    if leg.provisional:
        return ACCEPTED_NO_ANSWER
    if leg.captured or leg.cause in (CAUSE_NO_ANSWER, CAUSE_NO_USER_RESPONSE):
        return NO_RESPONSE
    if leg.cause in (CAUSE_UNALLOCATED, CAUSE_CALL_REJECTED, CAUSE_CONGESTION):
        return f"{REFUSED}{because}"
    return f"{REFUSED}{because}" if because else NO_RESPONSE
