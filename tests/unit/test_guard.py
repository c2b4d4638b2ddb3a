"""The guard's decisions, with Asterisk's CLI answers given as text."""

from __future__ import annotations

from pathlib import Path

from ari_app.guard import Guard, app_connected, stasis_channels
from ivr.settings import load_settings

CONCISE = "\n".join([
    "PJSIP/carrier-lokal-00000001!ivr112-plan-kotim!112!4!Up!Stasis!ivr112,kotim,112!0812!!!3!12!(None)!1795917386.1",
    "PJSIP/operator1-00000002!ivr112-queue!kotim-operators!5!Up!Queue!kotim-operators!!!!3!9!b1!1795917386.2",
    "PJSIP/carrier-lokal-00000003!ivr112-plan-kotim!112!4!Up!Stasis!other-app,kotim,112!0813!!!3!2!(None)!1795917386.3",
    "garbage line",
])


def test_only_channels_in_stasis_of_our_app_are_taken_with_their_plan() -> None:
    assert [(c.name, c.plan_id) for c in stasis_channels(CONCISE, "ivr112")] == [("PJSIP/carrier-lokal-00000001", "kotim")]
    assert app_connected("Application Name\n=========================\nivr112\n", "ivr112")
    assert not app_connected("Application Name\n=========================\nivr112-bench\n", "ivr112")


def _guard(tmp_path: Path, apps: list[str], health: list[bool]) -> tuple[Guard, list[str]]:
    config = tmp_path / "c.yaml"
    config.write_text(f"data_dir: {tmp_path}\nguard_grace: 5\n")
    sent: list[str] = []

    def cli(command: str) -> str:
        sent.append(command)
        if command == "ari show apps":
            return apps.pop(0) if apps else ""
        if command == "core show channels concise":
            return CONCISE
        if command.startswith("channel redirect"):
            return f"Channel '{command.split()[2]}' successfully redirected to {command.split()[3]}"
        return ""

    return Guard(load_settings(config), cli=cli, health_ok=lambda: health.pop(0) if health else False), sent


def test_the_app_away_less_than_the_grace_is_left_alone_then_its_callers_go_to_the_operators(tmp_path: Path) -> None:
    guard, sent = _guard(tmp_path, ["ivr112", "", "", ""], [True])
    guard.check(now=100.0)  # present
    guard.check(now=101.0)  # away
    guard.check(now=105.5)  # away 4.5 s: still waiting
    assert not [c for c in sent if c.startswith("channel redirect")]
    guard.check(now=106.1)  # away 5.1 s
    assert [c for c in sent if c.startswith("channel redirect")] == [
        "channel redirect PJSIP/carrier-lokal-00000001 ivr112-queue,kotim-operators,1"
    ]
    assert guard.rescued == 1


def test_an_app_that_is_connected_but_does_not_answer_counts_as_away(tmp_path: Path) -> None:
    guard, sent = _guard(tmp_path, ["ivr112", "ivr112"], [False, False])
    guard.check(now=0.0)
    guard.check(now=6.0)
    assert any(c.startswith("channel redirect") for c in sent)
