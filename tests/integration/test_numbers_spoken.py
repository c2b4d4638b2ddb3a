"""A caller waiting for an operator hears numbers in Indonesian: the real Asterisk speaks
SayNumber (the call app_queue makes for the position and the hold time) by the rendered
say.conf, from the `_system` prompts of the instance, in the channel's language.

Asterisk runs alone here (SayNumber needs no app), on its own instance and free ports.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import pytest

from ivr.numbers import SYSTEM_PROMPTS, words
from ivr.prompts import SYSTEM_SET
from tests.integration.stack import Stack, wait_for
from tests.support.stacks import running_stack

PLAYING = re.compile(r"<(?P<channel>[^>]+)> Playing '(?P<file>[^']+)\.[a-z0-9]+' \(language '(?P<lang>[^']+)'\)")
SAY_TIMEOUT = 20.0  # nine short prompts, played in real time


@pytest.fixture(scope="module")
def asterisk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """`ivr112 prompts build` and `ivr112 asterisk up` for an instance of this module's own."""
    with running_stack(tmp_path_factory, "numbers", app=False) as s:
        yield s


@pytest.fixture
def say_contexts(asterisk: Stack, request: pytest.FixtureRequest) -> Iterator[tuple[str, str]]:
    """Two throw-away dialplan contexts: one that answers and waits (the far end of a
    Local channel), one where the near end says the numbers; removed afterwards, with
    Asterisk's log dumped if the test failed."""
    tag = uuid.uuid4().hex[:8]
    answer, say = f"ivr112-test-answer-{tag}", f"ivr112-test-say-{tag}"
    system = f"{asterisk.layout.sounds}/{SYSTEM_SET}"
    steps = {
        answer: ["Answer()", "Wait(30)"],
        say: [
            "Set(CHANNEL(language)=id)",
            "SayNumber(1125)",
            # A queue sound named without its language, as queues.conf will name them:
            # Asterisk looks in <dir>/<channel language>/ first.
            f"Playback({system}/queue-minute)",
            "Set(CHANNEL(language)=en)",
            "SayNumber(121)",
            f"NoOp({say} done)",
            "Hangup()",
        ],
    }
    for context, apps in steps.items():
        for priority, app in enumerate(apps, start=1):
            out = asterisk.asterisk_cli(f'dialplan add extension "s,{priority},{app}" into {context}')
            assert "added into" in out, out
    if "res_clioriginate.so" not in asterisk.asterisk_cli("module show like res_clioriginate"):
        asterisk.asterisk_cli("module load res_clioriginate.so")  # `channel originate`
    try:
        yield answer, say
    finally:
        for context in steps:
            asterisk.asterisk_cli(f"dialplan remove context {context}")
        rep = getattr(request.node, "rep_call", None)
        if rep is not None and rep.failed:
            asterisk.dump_logs()


def test_asterisk_says_1125_as_seribu_seratus_dua_puluh_lima_from_the_system_prompts(
    asterisk: Stack, say_contexts: tuple[str, str]
) -> None:
    answer, say = say_contexts
    assert "say mode is [new]" in asterisk.asterisk_cli("say load")
    log = asterisk.layout.messages_log
    start = log.stat().st_size

    def new_lines() -> list[str]:
        with log.open("rb") as fh:
            fh.seek(start)
            return fh.read().decode(errors="replace").splitlines()

    def said_all() -> list[str] | None:
        lines = new_lines()
        return lines if any(f"{say} done" in ln for ln in lines) else None

    out = asterisk.asterisk_cli(f"channel originate Local/s@{answer} extension s@{say}")
    assert "No such command" not in out, out
    lines = wait_for(f"the Local channel to reach NoOp({say} done)", said_all, timeout=SAY_TIMEOUT)

    ours = [ln for ln in lines if f"Local/s@{answer}-" in ln]
    played = [(m["file"], m["lang"]) for ln in ours if ";1>" in ln and (m := PLAYING.search(ln))]
    system = f"{asterisk.layout.sounds}/{SYSTEM_SET}"
    assert played == [
        (f"{system}/id/digits/1000", "id"),
        (f"{system}/id/digits/100", "id"),
        (f"{system}/id/digits/20", "id"),
        (f"{system}/id/digits/5", "id"),
        (f"{system}/queue-minute", "id"),
        (f"{system}/en/digits/1", "en"),
        (f"{system}/en/digits/hundred", "en"),
        (f"{system}/en/digits/20", "en"),
        (f"{system}/en/digits/1", "en"),
    ]
    # Every file was found: a missing one is a WARNING line (naming no channel).
    assert [ln for ln in lines if " WARNING[" in ln or " ERROR[" in ln] == []
    heard = " ".join(SYSTEM_PROMPTS["id"][f.removeprefix(f"{system}/id/")] for f, _ in played[:4])
    assert heard == words(1125, "id") == "seribu seratus dua puluh lima"
