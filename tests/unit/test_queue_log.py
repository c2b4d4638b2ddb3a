"""Asterisk's queue_log read back (ivr/queue_log.py): what app_queue did with a caller while
the app was not listening."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ivr.queue_log import facts, parse_line, tail_lines

Q = "kotim-operators"
LOG = f"""1796136000|NONE|NONE|NONE|QUEUESTART|
1796136010|1796136001.7|{Q}|NONE|ENTERQUEUE||081277000101|1
1796136012|1796136001.7|{Q}|operator1|RINGNOANSWER|2000
1796136016|1796136001.7|{Q}|operator2|CONNECT|6|1796136015.9|1
1796136040|1796136001.7|{Q}|operator2|COMPLETECALLER|6|24|1
1796136050|1796136003.2|{Q}|NONE|ENTERQUEUE||0812|1
1796136059|1796136003.2|{Q}|NONE|ABANDON|1|1|9
1796136060|1796136004.1|other-queue|NONE|ENTERQUEUE||0812|1
"""


def test_a_caller_answered_by_an_operator_and_one_who_gave_up() -> None:
    found = facts(LOG.splitlines(), {Q})
    answered, gave_up = found["1796136001.7"], found["1796136003.2"]
    assert answered.queue == Q and answered.operator == "operator2"
    assert answered.joined_at == "2026-12-01T14:40:10.000+00:00" and answered.answered_at == "2026-12-01T14:40:16.000+00:00"
    assert gave_up.operator == "" and gave_up.abandoned_at and not gave_up.answered_at
    assert "1796136004.1" not in found  # another plan's queue, not asked for


def test_member_interfaces_are_operator_names_and_broken_lines_are_skipped() -> None:
    line = parse_line("1796136016|1796136001.7|q|PJSIP/operator1|CONNECT|6|x|1")
    assert line is not None and line.agent == "operator1" and line.data == ("6", "x", "1")
    for broken in ("", "garbage", "abc|1.2|q|NONE|CONNECT", "1796136016||q|NONE|CONNECT", "1e400|1.2|q|NONE|CONNECT"):
        assert parse_line(broken) is None


def test_the_tail_of_a_file_read_mid_line_keeps_only_whole_lines() -> None:
    data = LOG.encode()
    cut = data[30:-10]  # starts and ends in the middle of a line
    lines = tail_lines(cut, from_start=False)
    assert lines and all(line in LOG.splitlines() for line in lines)
    assert tail_lines(data, from_start=True) == LOG.splitlines()


@given(st.text(max_size=300))
def test_any_text_is_read_without_an_error(text: str) -> None:
    facts(text.splitlines())
