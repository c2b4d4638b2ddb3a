"""Prompts: find the WAV file for each prompt and language, check Asterisk can play it,
and render missing ones from the plan's text with espeak-ng's voices through pydub.

A recorded file wins over a built one: the plan's `file:`, then
`prompts/<plan id>/<lang>/<name>.wav`, then `prompts/<lang>/<name>.wav`. Built files live in
`<data_dir>/prompts/<plan id>/<lang>/`, with the hash of the text they were made from
beside them, so a changed text is rebuilt. A missing prompt stops start-up: Asterisk would
otherwise play an English file of the same name, or nothing.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
import wave
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ivr.errors import PromptError
from ivr.plan import Plan
from ivr.settings import PROJECT_DIR

RECORDED_DIR = PROJECT_DIR / "prompts"
SAMPLE_RATE = 8000
VOICES = {"id": "id", "en": "en"}
ESPEAK_SPEED = 150  # words per minute: calm and clear for a caller in distress


@dataclass(frozen=True)
class PromptFile:
    plan_id: str
    name: str
    language: str
    path: Path
    built: bool


def built_dir(data_dir: Path, plan: Plan) -> Path:
    return data_dir / "prompts" / plan.id


def _recorded(plan: Plan, name: str, lang: str) -> list[Path]:
    """Recorded files that would serve this prompt, in order of preference."""
    prompt = plan.prompts[name]
    out = []
    explicit = prompt.files.get(lang)
    if explicit:
        p = Path(explicit)
        out.append(p if p.is_absolute() else PROJECT_DIR / p)
    out.append(RECORDED_DIR / plan.id / lang / f"{name}.wav")
    out.append(RECORDED_DIR / lang / f"{name}.wav")
    return out


def _text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def check_wav(path: Path) -> str | None:
    """Return why Asterisk could not play `path` as a .wav, or None when it can."""
    try:
        with wave.open(str(path), "rb") as w:
            if w.getframerate() != SAMPLE_RATE or w.getnchannels() != 1 or w.getsampwidth() != 2:
                return (
                    f"{path} is {w.getframerate()} Hz, {w.getnchannels()} channel(s), {8 * w.getsampwidth()}-bit; "
                    "Asterisk needs 8000 Hz mono 16-bit (sox in.wav -r 8000 -c 1 -b 16 out.wav)"
                )
            if w.getnframes() == 0:
                return f"{path} holds no audio"
    except (OSError, EOFError, wave.Error) as exc:
        return f"{path} is not a readable WAV file ({exc})"
    return None


def resolve(plan: Plan, data_dir: Path) -> tuple[list[PromptFile], list[str]]:
    """Every prompt file the plan needs, and the problems (missing, wrong format, stale)."""
    found: list[PromptFile] = []
    problems: list[str] = []
    for name in plan.prompt_names():
        prompt = plan.prompts[name]
        for lang in plan.languages:
            candidates = [(p, False) for p in _recorded(plan, name, lang)]
            candidates.append((built_dir(data_dir, plan) / lang / f"{name}.wav", True))
            chosen = next(((p, b) for p, b in candidates if p.exists()), None)
            if chosen is None:
                problems.append(f"{plan.id}: prompt '{name}' ({lang}) has no WAV file; run `ivr112 prompts build` to render it from the plan's text")
                continue
            path, built = chosen
            if built and _stale(path, prompt.text.get(lang, "")):
                problems.append(f"{plan.id}: prompt '{name}' ({lang}) was built from an older text; run `ivr112 prompts build`")
                continue
            why = check_wav(path)
            if why:
                problems.append(f"{plan.id}: prompt '{name}' ({lang}): {why}")
                continue
            found.append(PromptFile(plan.id, name, lang, path, built))
    return found, problems


def resolve_all(plans: Iterable[Plan], data_dir: Path) -> tuple[list[PromptFile], list[str]]:
    """`resolve` for every plan served: all their files, and all their problems."""
    files: list[PromptFile] = []
    problems: list[str] = []
    for plan in plans:
        found, missing = resolve(plan, data_dir)
        files += found
        problems += missing
    return files, problems


def require(plans: Iterable[Plan], data_dir: Path) -> list[PromptFile]:
    """The prompt files of every plan, or PromptError listing every missing or unplayable one."""
    files, problems = resolve_all(plans, data_dir)
    if problems:
        raise PromptError("refusing to start with prompts missing:\n  " + "\n  ".join(problems))
    return files


def _stale(path: Path, text: str) -> bool:
    stamp = path.with_suffix(".sha")
    return not stamp.exists() or stamp.read_text().strip() != _text_hash(text)


def build(plans: Iterable[Plan], data_dir: Path, *, force: bool = False) -> list[PromptFile]:
    """Render every prompt that has no recorded file (or whose text changed); return those built."""
    made: list[PromptFile] = []
    for plan in plans:
        made += _build_plan(plan, data_dir, force=force)
    return made


def _build_plan(plan: Plan, data_dir: Path, *, force: bool) -> list[PromptFile]:
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        raise PromptError("espeak-ng is not installed: run `make deps` (or apt-get install espeak-ng)")
    from pydub import AudioSegment  # imported here: only the build needs it

    made: list[PromptFile] = []
    for name in plan.prompt_names():
        prompt = plan.prompts[name]
        for lang in plan.languages:
            if any(p.exists() for p in _recorded(plan, name, lang)):
                continue
            text = prompt.text.get(lang)
            if not text:
                continue
            out = built_dir(data_dir, plan) / lang / f"{name}.wav"
            if out.exists() and not force and not _stale(out, text):
                continue
            out.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory() as tmp:
                raw = Path(tmp) / "raw.wav"
                proc = subprocess.run(
                    [espeak, "-v", VOICES[lang], "-s", str(ESPEAK_SPEED), "-w", str(raw), text],
                    capture_output=True, text=True, check=False,
                )
                if proc.returncode != 0 or not raw.exists():
                    raise PromptError(f"espeak-ng could not speak prompt '{name}' ({lang}): {proc.stderr.strip()}")
                audio = AudioSegment.from_wav(str(raw)).set_frame_rate(SAMPLE_RATE).set_channels(1).set_sample_width(2)
                audio.export(str(out), format="wav")
            out.with_suffix(".sha").write_text(_text_hash(text) + "\n")
            made.append(PromptFile(plan.id, name, lang, out, True))
    return made


def duration(path: Path) -> float:
    """Length of a WAV file in seconds."""
    with wave.open(str(path), "rb") as w:
        return w.getnframes() / float(w.getframerate())
