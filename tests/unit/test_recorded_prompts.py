"""Recorded prompts live in the top-level prompts/ folder (prompts/README.md): a recording
there, or one the plan's `file:` names relative to it, is played instead of the built voice."""

from __future__ import annotations

import wave
from pathlib import Path

import pytest

from ivr import prompts
from ivr.plan import load_plan
from ivr.settings import PROJECT_DIR

KOTIM = PROJECT_DIR / "dialplans" / "kotim.yaml"


def _wav(path: Path) -> Path:
    """One second of silence, 8 kHz mono 16-bit: the format prompts/README.md asks for."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\0\0" * 8000)
    return path


def _played(plan_file: Path, data_dir: Path) -> dict[tuple[str, str], Path]:
    found, _ = prompts.resolve(load_plan(plan_file), data_dir)
    return {(f.name, f.language): f.path for f in found}


def test_the_prompts_folder_is_in_the_repository_with_its_guide() -> None:
    guide = (PROJECT_DIR / "prompts" / "README.md").read_text()
    assert prompts.RECORDED_DIR == PROJECT_DIR / "prompts"
    assert "8 kHz, mono, 16-bit" in guide and "prompts/<plan id>/<language>/<prompt name>.wav" in guide


def test_a_recording_under_prompts_plan_language_name_is_played_for_that_prompt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(prompts, "RECORDED_DIR", tmp_path / "prompts")
    recorded = _wav(tmp_path / "prompts" / "kotim" / "id" / "greeting.wav")
    assert _played(KOTIM, tmp_path / "data")[("greeting", "id")] == recorded


def test_a_plans_file_path_relative_to_the_prompts_folder_is_played(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(prompts, "RECORDED_DIR", tmp_path / "prompts")
    recorded = _wav(tmp_path / "prompts" / "kotim" / "id" / "greeting-2025.wav")
    plan = tmp_path / "kotim.yaml"
    plan.write_text(KOTIM.read_text()
                    .replace("boundaries: kotim-kecamatan.geojson", f"boundaries: {KOTIM.parent / 'kotim-kecamatan.geojson'}")
                    .replace('      en: "Kotawaringin Timur emergency service, one one two."\n',
                             '      en: "Kotawaringin Timur emergency service, one one two."\n    file: {id: kotim/id/greeting-2025.wav}\n', 1))
    assert _played(plan, tmp_path / "data")[("greeting", "id")] == recorded
