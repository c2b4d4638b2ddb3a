"""Prompts: find the WAV file for each prompt and language, check Asterisk can play it,
and render missing ones from their text with espeak-ng's voices through pydub.

Prompts come in sets, each installed as `<sounds>/<set id>/<lang>/<name>.wav`: one per
plan (its id), and the system set `_system` (ivr/numbers.py: the number words say.conf
plays and app_queue's own sentences; names may hold sub-folders, e.g. `digits/20`).
A recorded file wins over a built one: the plan's `file:`, then
`prompts/<set id>/<lang>/<name>.wav`, then `prompts/<lang>/<name>.wav`. Built files live in
`<data_dir>/prompts/<set id>/<lang>/`, with the hash of the text they were made from
beside them, so a changed text is rebuilt. A missing prompt stops start-up: Asterisk would
otherwise play an English file of the same name, or nothing.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
import wave
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ivr.errors import PromptError
from ivr.numbers import SYSTEM_PROMPTS
from ivr.plan import Plan
from ivr.settings import PROJECT_DIR

RECORDED_DIR = PROJECT_DIR / "prompts"
SAMPLE_RATE = 8000
VOICES = {"id": "id", "en": "en"}
ESPEAK_SPEED = 150  # words per minute: calm and clear for a caller in distress
SYSTEM_SET = "_system"  # not a plan id: those start with a letter


@dataclass(frozen=True)
class PromptFile:
    plan_id: str
    name: str
    language: str
    path: Path
    built: bool


@dataclass(frozen=True)
class PromptSet:
    """Prompts built and installed together under one id: a plan's, or the system's."""

    id: str
    needed: tuple[tuple[str, str], ...]  # (name, language), in build order
    texts: dict[tuple[str, str], str]  # what espeak-ng speaks when nothing is recorded
    files: dict[tuple[str, str], str]  # recorded files the plan names (`file:`)
    espeak_options: tuple[str, ...] = ()


def plan_prompts(plan: Plan) -> PromptSet:
    """The prompts of a plan: every prompt in every language the plan speaks."""
    return PromptSet(
        id=plan.id,
        needed=tuple((name, lang) for name in plan.prompt_names() for lang in plan.languages),
        texts={(name, lang): text for name, p in plan.prompts.items() for lang, text in p.text.items()},
        files={(name, lang): file for name, p in plan.prompts.items() for lang, file in p.files.items()},
    )


def system_prompts() -> PromptSet:
    """The system prompts (numbers, app_queue's sentences) of every language that has them."""
    texts = {(name, lang): text for lang, by_name in SYSTEM_PROMPTS.items() for name, text in by_name.items()}
    # Pieces say.conf strings together ("dua puluh" + "lima") must run on like one
    # sentence: no end-of-sentence pause (-z), which would put 0.4 s between the words.
    return PromptSet(id=SYSTEM_SET, needed=tuple(sorted(texts)), texts=texts, files={}, espeak_options=("-z",))


def prompt_sets(plans: Iterable[Plan]) -> list[PromptSet]:
    """Every prompt set the served plans need: theirs, then the system's."""
    return [*(plan_prompts(plan) for plan in plans), system_prompts()]


def built_dir(data_dir: Path, set_id: str) -> Path:
    return data_dir / "prompts" / set_id


def _recorded(ps: PromptSet, name: str, lang: str) -> list[Path]:
    """Recorded files that would serve this prompt, in order of preference."""
    out = []
    explicit = ps.files.get((name, lang))
    if explicit:
        p = Path(explicit)
        # A relative `file:` is from the project (prompts/kotim/id/greeting.wav) or from
        # prompts/ itself (kotim/id/greeting.wav): prompts/README.md shows both.
        out += [p] if p.is_absolute() else [PROJECT_DIR / p, RECORDED_DIR / p]
    out.append(RECORDED_DIR / ps.id / lang / f"{name}.wav")
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
    return resolve_set(plan_prompts(plan), data_dir)


def resolve_set(ps: PromptSet, data_dir: Path) -> tuple[list[PromptFile], list[str]]:
    """Every prompt file of the set, and the problems (missing, wrong format, stale)."""
    found: list[PromptFile] = []
    problems: list[str] = []
    for name, lang in ps.needed:
        candidates = [(p, False) for p in _recorded(ps, name, lang)]
        candidates.append((built_dir(data_dir, ps.id) / lang / f"{name}.wav", True))
        chosen = next(((p, b) for p, b in candidates if p.exists()), None)
        if chosen is None:
            problems.append(f"{ps.id}: prompt '{name}' ({lang}) has no WAV file; run `ivr112 prompts build` to render it from its text")
            continue
        path, built = chosen
        if built and _stale(path, ps.texts.get((name, lang), "")):
            problems.append(f"{ps.id}: prompt '{name}' ({lang}) was built from an older text; run `ivr112 prompts build`")
            continue
        why = check_wav(path)
        if why:
            problems.append(f"{ps.id}: prompt '{name}' ({lang}): {why}")
            continue
        found.append(PromptFile(ps.id, name, lang, path, built))
    return found, problems


def resolve_all(plans: Iterable[Plan], data_dir: Path) -> tuple[list[PromptFile], list[str]]:
    """`resolve_set` for every plan served and the system set: all their files and problems."""
    files: list[PromptFile] = []
    problems: list[str] = []
    for ps in prompt_sets(plans):
        found, missing = resolve_set(ps, data_dir)
        files += found
        problems += missing
    return files, problems


def require(plans: Iterable[Plan], data_dir: Path) -> list[PromptFile]:
    """The prompt files of every plan and the system set, or PromptError listing every
    missing or unplayable one."""
    files, problems = resolve_all(plans, data_dir)
    if problems:
        raise PromptError("refusing to start with prompts missing:\n  " + "\n  ".join(problems))
    return files


def _stale(path: Path, text: str) -> bool:
    stamp = path.with_suffix(".sha")
    return not stamp.exists() or stamp.read_text().strip() != _text_hash(text)


def build(plans: Iterable[Plan], data_dir: Path, *, force: bool = False) -> list[PromptFile]:
    """Render every prompt of the plans and of the system set that has no recorded file
    (or whose text changed); return those built."""
    made: list[PromptFile] = []
    for ps in prompt_sets(plans):
        made += _build_set(ps, data_dir, force=force)
    return made


def speak_to_wav(text: str, lang: str, out: Path, *, options: Sequence[str] = (), what: str = "a prompt") -> None:
    """`text` spoken by espeak-ng's `lang` voice into `out`: 8 kHz mono 16-bit, as Asterisk plays it."""
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        raise PromptError("espeak-ng is not installed: run `make deps` (or apt-get install espeak-ng)")
    from pydub import AudioSegment  # imported here: only building needs it

    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.wav"
        proc = subprocess.run(
            [espeak, "-v", VOICES[lang], "-s", str(ESPEAK_SPEED), *options, "-w", str(raw), text],
            capture_output=True, text=True, check=False,
        )
        if proc.returncode != 0 or not raw.exists():
            raise PromptError(f"espeak-ng could not speak {what} ({lang}): {proc.stderr.strip()}")
        # pydub leaves the files it reads and writes open: give it ours and close them.
        with raw.open("rb") as src:
            audio = AudioSegment.from_wav(src).set_frame_rate(SAMPLE_RATE).set_channels(1).set_sample_width(2)
        with out.open("wb") as dst:
            audio.export(dst, format="wav")


def _build_set(ps: PromptSet, data_dir: Path, *, force: bool) -> list[PromptFile]:
    made: list[PromptFile] = []
    for name, lang in ps.needed:
        if any(p.exists() for p in _recorded(ps, name, lang)):
            continue
        text = ps.texts.get((name, lang))
        if not text:
            continue
        # `name` may hold sub-folders (the system set's digits/20): parents are made here.
        out = built_dir(data_dir, ps.id) / lang / f"{name}.wav"
        if out.exists() and not force and not _stale(out, text):
            continue
        speak_to_wav(text, lang, out, options=ps.espeak_options, what=f"prompt '{ps.id}/{name}'")
        out.with_suffix(".sha").write_text(_text_hash(text) + "\n")
        made.append(PromptFile(ps.id, name, lang, out, True))
    return made


def duration(path: Path) -> float:
    """Length of a WAV file in seconds."""
    with wave.open(str(path), "rb") as w:
        return w.getnframes() / float(w.getframerate())
