"""Numbers a waiting caller hears: the words, and the say.conf rules that speak them.

The rules are proved by running them here the way app_playback does (apps/app_playback.c
`do_say`, patterns as main/pbx.c `_extension_match_core` matches them): every number from
0 to 100,000 and a sample up to 999,999,999 must come out as the prompt files whose texts,
read one after the other, are exactly `words(n)`.
"""

from __future__ import annotations

import functools
import random
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from ari_app.asterisk.layout import Layout
from ari_app.asterisk.render import render
from ivr import prompts
from ivr.numbers import LANGUAGES, MAX_NUMBER, QUEUE_SOUND_OPTIONS, SYSTEM_PROMPTS, say_conf, words
from ivr.plan import load_plans
from ivr.secrets import load_or_create
from ivr.settings import PROJECT_DIR, Operator, load_settings

INSTANCE = "t1"
SOUNDS = f"/srv/ivr112/{INSTANCE}/sounds/_system"
FN_SIZE = 128  # app_playback's `char fn[128]`: a longer piece is cut
MAX_DEPTH = 10  # app_playback gives up past this recursion depth


@pytest.mark.parametrize(
    ("n", "indonesian", "english"),
    [
        (0, "nol", "zero"),
        (7, "tujuh", "seven"),
        (10, "sepuluh", "ten"),
        (11, "sebelas", "eleven"),
        (12, "dua belas", "twelve"),
        (19, "sembilan belas", "nineteen"),
        (20, "dua puluh", "twenty"),
        (21, "dua puluh satu", "twenty one"),
        (100, "seratus", "one hundred"),
        (101, "seratus satu", "one hundred one"),
        (111, "seratus sebelas", "one hundred eleven"),
        (121, "seratus dua puluh satu", "one hundred twenty one"),
        (200, "dua ratus", "two hundred"),
        (1000, "seribu", "one thousand"),
        (1001, "seribu satu", "one thousand one"),
        (1100, "seribu seratus", "one thousand one hundred"),
        (1125, "seribu seratus dua puluh lima", "one thousand one hundred twenty five"),
        (2000, "dua ribu", "two thousand"),
        (11_000, "sebelas ribu", "eleven thousand"),
        (21_000, "dua puluh satu ribu", "twenty one thousand"),
        (100_000, "seratus ribu", "one hundred thousand"),
        (101_000, "seratus satu ribu", "one hundred one thousand"),
        (1_000_000, "satu juta", "one million"),
        (1_001_000, "satu juta seribu", "one million one thousand"),
        (2_000_100, "dua juta seratus", "two million one hundred"),
        (100_000_000, "seratus juta", "one hundred million"),
    ],
)
def test_numbers_are_said_as_people_say_them(n: int, indonesian: str, english: str) -> None:
    assert words(n, "id") == indonesian
    assert words(n, "en") == english


def test_a_number_out_of_range_or_an_unknown_language_is_refused() -> None:
    with pytest.raises(ValueError, match="out of range"):
        words(MAX_NUMBER + 1, "id")
    with pytest.raises(ValueError, match="out of range"):
        words(-1, "en")
    with pytest.raises(ValueError, match="no number words for language 'fr'"):
        words(5, "fr")


# A small say.conf interpreter, as Asterisk runs it ---------------------------------------


@dataclass(frozen=True)
class Pattern:
    """A say.conf rule name compiled as main/pbx.c `_extension_match_core` reads it (E_MATCH).

    `sets` are the characters each position takes; what stopped the pattern sets the
    lengths it matches: its end or '/' exactly len(sets), '.' one or more characters
    more, '!' zero or more. A '[' without ']' never matches.
    """

    name: str
    sets: tuple[frozenset[str], ...]
    shortest: int
    longest: float

    @staticmethod
    def compile(name: str) -> Pattern:
        if not name.startswith("_"):  # a plain name: equal, '-' ignored
            plain = name.replace("-", "")
            return Pattern(name, tuple(frozenset(c) for c in plain), len(plain), len(plain))
        sets: list[frozenset[str]] = []
        i = 1
        while i < len(name) and name[i] not in "./!":
            c = name[i]
            if c == "-":
                i += 1
                continue
            if c == "[":
                end = name.find("]", i + 1)
                if end < 0:
                    return Pattern(name, (), 1, 0)  # "Wrong usage of [] in the extension"
                body = name[i + 1 : end]
                if body:  # an empty [] is skipped
                    sets.append(_charset(body))
                i = end + 1
                continue
            sets.append(_SPECIAL.get(c, frozenset(c)))
            i += 1
        tail = name[i] if i < len(name) else ""
        n = len(sets)
        shortest, longest = {"": (n, n), "/": (n, n), ".": (n + 1, float("inf")), "!": (n, float("inf"))}[tail]
        return Pattern(name, tuple(sets), shortest, longest)

    def match(self, data: str) -> bool:
        if "-" in data:
            data = data.replace("-", "")  # '-' in data is skipped
        if not self.shortest <= len(data) <= self.longest:
            return False
        return all(c in s for c, s in zip(data, self.sets, strict=False))

    def overlaps(self, other: Pattern) -> bool:
        """Whether some data matches both."""
        if max(self.shortest, other.shortest) > min(self.longest, other.longest):
            return False
        return all(a & b for a, b in zip(self.sets, other.sets, strict=False))


_DIGITS = frozenset("0123456789")
_SPECIAL = {
    **dict.fromkeys("nN", frozenset("23456789")),
    **dict.fromkeys("xX", _DIGITS),
    **dict.fromkeys("zZ", frozenset("123456789")),
}


def _charset(body: str) -> frozenset[str]:
    """[...]: single characters and a-b ranges."""
    out: set[str] = set()
    i = 0
    while i < len(body):
        if i + 2 < len(body) and body[i + 1] == "-":
            out |= {chr(c) for c in range(ord(body[i]), ord(body[i + 2]) + 1)}
            i += 3
        else:
            out.add(body[i])
            i += 1
    return frozenset(out)


@dataclass(frozen=True)
class Rule:
    pattern: Pattern
    value: str


def parse_say_conf(text: str) -> dict[str, list[Rule]]:
    """Sections of rules, in file order (the order app_playback tries them)."""
    sections: dict[str, list[Rule]] = {}
    current: list[Rule] | None = None
    for raw in text.splitlines():
        line = raw.split(";", 1)[0].strip()
        if not line:
            continue
        if line.startswith("["):
            current = sections.setdefault(line[1 : line.index("]")], [])
            continue
        name, sep, value = line.partition("=")
        assert sep and current is not None, f"not a rule: {raw!r}"
        current.append(Rule(Pattern.compile(name.strip()), value.removeprefix(">").strip()))
    return sections


SAY_VAR = re.compile(r"\$\{SAY(?::(\d+)(?::(\d+))?)?\}")


def _substitute(piece: str, say: str) -> str:
    """${SAY}, ${SAY:offset} and ${SAY:offset:length} (the only expressions our rules use)."""

    def value(m: re.Match[str]) -> str:
        start = int(m.group(1) or 0)
        return say[start : start + int(m.group(2))] if m.group(2) else say[start:]

    out = SAY_VAR.sub(value, piece)
    assert "${" not in out and "$[" not in out, f"unsupported expression in {piece!r}"
    return out


class Say:
    """app_playback's `do_say`: which files Asterisk plays for `num:<n>` in a language."""

    def __init__(self, text: str) -> None:
        self.sections = parse_say_conf(text)

    def rule(self, s: str, language: str) -> tuple[str, Rule] | None:
        """The first matching rule: in the language's section, then without its _suffix, then en."""
        lang = language
        while True:
            for rule in self.sections.get(lang, []):
                if rule.pattern.match(s):
                    return lang, rule
            if "_" in lang:
                lang = lang[: lang.index("_")]
            elif lang != "en":
                lang = "en"
            else:
                return None

    @functools.cache  # noqa: B019 - one interpreter per test module
    def files(self, s: str, language: str, depth: int = 0) -> tuple[str, ...]:
        assert depth <= MAX_DEPTH, f"Asterisk gives up: recursion too deep saying {s!r}"
        found = self.rule(s, language)
        assert found is not None, f"no rule says {s!r}: Asterisk would say nothing"
        section, rule = found
        assert section == language, f"{s!r} ({language}) fell back to the [{section}] rules"
        say = s
        for _ in range(2):  # skip up to two prefixes: the rest is ${SAY}
            say = say.split(":", 1)[1] if ":" in say else say
        out: list[str] = []
        for piece in rule.value.split(","):
            fn = _substitute(piece.strip(), say)
            assert len(fn) < FN_SIZE, f"Asterisk cuts {fn!r} at {FN_SIZE - 1} characters"
            colon = fn.find(":")
            if colon <= 0:
                out.append(fn)  # a file
            elif ":" not in fn[colon + 2 :] or fn[colon + 1] == ":":
                out += self.files(fn, language, depth + 1)  # prefix:data, said again
            else:
                raise AssertionError(f"{fn!r}: prefix:format:data is not used by our rules")
        return tuple(out)


@pytest.fixture(scope="module")
def rendered_say_conf(tmp_path_factory: pytest.TempPathFactory) -> str:
    """say.conf as `ivr112 asterisk up` writes it for instance t1."""
    tmp = tmp_path_factory.mktemp("render")
    settings = load_settings(environ={}).replace(operators=(Operator("operator1"),))
    plans = load_plans([PROJECT_DIR / "dialplans" / "kotim.yaml"])
    return render(settings, load_or_create(tmp, ("operator1",)), plans, Layout(tmp, INSTANCE))["say.conf"]


@pytest.fixture(scope="module")
def say(rendered_say_conf: str) -> Say:
    return Say(rendered_say_conf)


def _sample_numbers() -> list[int]:
    rng = random.Random(112)
    edges = [10**k + d for k in range(5, 9) for d in (-1, 0, 1, 10, 100, 1000)]
    edges += [MAX_NUMBER, 1_000_100, 1_010_000, 11_000_011, 101_001_001, 110_000_000, 999_000_000, 200_000_002]
    return edges + [rng.randrange(100_001, MAX_NUMBER + 1) for _ in range(5000)]


def _spoken(say: Say, n: int, lang: str) -> tuple[str, ...]:
    """The prompt names Asterisk plays for n, from the absolute files of the rules."""
    folder = f"{SOUNDS}/{lang}/"
    files = say.files(f"num:{n}", lang)
    assert all(f.startswith(folder) for f in files), f"{n} ({lang}) plays files outside {folder}: {files}"
    return tuple(f.removeprefix(folder) for f in files)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_the_rendered_rules_speak_every_number_as_its_words(say: Say, lang: str) -> None:
    texts = SYSTEM_PROMPTS[lang]
    used: set[str] = set()
    wrong = []
    for n in [*range(100_001), *_sample_numbers()]:
        names = _spoken(say, n, lang)
        used.update(names)
        heard = " ".join(texts[name] for name in names)
        if heard != words(n, lang):
            wrong.append(f"{n}: {heard!r} from {names}")
    assert wrong == []
    # Every number prompt is played for some number; the rest are app_queue's sentences.
    assert used == {name for name in texts if name.startswith("digits/")}


def test_a_waiting_caller_hears_1125_as_seribu_seratus_dua_puluh_lima(say: Say) -> None:
    assert _spoken(say, 1125, "id") == ("digits/1000", "digits/100", "digits/20", "digits/5")
    assert _spoken(say, 121, "en") == ("digits/1", "digits/hundred", "digits/20", "digits/1")


def test_a_dialect_uses_its_language_rules_and_an_unknown_language_the_english_ones(say: Say) -> None:
    found = say.rule("num:21", "id_ID")
    assert found is not None and found[0] == "id"
    found = say.rule("num:21", "fr")
    assert found is not None and found[0] == "en"


def test_no_two_rules_match_the_same_number_so_their_order_does_not_matter(say: Say) -> None:
    # Asterisk takes the first match in file order (no dialplan-style specificity), so
    # rules that never overlap behave the same in any order.
    for lang in LANGUAGES:
        rules = [r.pattern for r in say.sections[lang]]
        overlapping = [(a.name, b.name) for i, a in enumerate(rules) for b in rules[i + 1 :] if a.overlaps(b)]
        assert overlapping == []


def test_the_general_section_switches_asterisk_to_the_say_conf_rules(rendered_say_conf: str) -> None:
    general = parse_say_conf(rendered_say_conf)["general"]
    assert [(r.pattern.name, r.value) for r in general] == [("mode", "new")]
    assert "@@" not in rendered_say_conf


def test_the_pattern_reader_agrees_with_asterisk_on_its_corner_cases() -> None:
    # `.` needs one more character; `n` is 2-9 even in lower case; '-' is ignored.
    assert not Pattern.compile("_[n]um:0.").match("num:0")
    assert Pattern.compile("_[n]um:0.").match("num:05")
    assert not Pattern.compile("_num:X").match("num:5")
    assert Pattern.compile("_[n]um:1-X").match("num:15")
    assert Pattern.compile("_[n]um:X!").match("num:1")
    assert not Pattern.compile("_[n]um:[2-9").match("num:2")
    assert Pattern.compile("mode").match("mode")


def test_the_longest_instance_name_still_fits_asterisks_file_name_buffer() -> None:
    sounds = f"/srv/ivr112/{'i' * 41}/sounds/_system"
    say = Say(say_conf(sounds))
    for lang in LANGUAGES:
        for n in (MAX_NUMBER, 777_777_777, 1125):
            assert say.files(f"num:{n}", lang)
    with pytest.raises(ValueError, match="cuts them at 127"):
        say_conf("/srv/" + "x" * 120)
    with pytest.raises(ValueError, match="absolute folder"):
        say_conf("sounds/_system")
    with pytest.raises(ValueError, match="absolute folder"):
        say_conf("/srv/a,b")


# The queue's own sounds --------------------------------------------------------------------

SAMPLE_DEFAULT = re.compile(r"^;(queue-[a-z0-9-]+|periodic-announce)\s*=\s*(queue-[a-z0-9-]+)\s*$")


def test_every_sound_app_queue_plays_by_default_has_a_prompt_in_both_languages() -> None:
    for lang in LANGUAGES:
        assert all(SYSTEM_PROMPTS[lang].get(sound, "").strip() for sound in QUEUE_SOUND_OPTIONS.values())
    sample = load_settings(environ={}).root_path / "usr/share/asterisk/conf/samples/queues.conf.sample"
    if sample.exists():  # the options and defaults documented by the Asterisk in the root
        documented = dict(m.groups() for line in sample.read_text().splitlines() if (m := SAMPLE_DEFAULT.match(line)))
        assert documented == QUEUE_SOUND_OPTIONS


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
@pytest.mark.filterwarnings("ignore:'audioop' is deprecated:DeprecationWarning")  # pydub on Python 3.11-3.12
def test_system_prompts_are_built_in_their_sub_folders_and_a_recording_replaces_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorded = tmp_path / "recorded"
    monkeypatch.setattr(prompts, "RECORDED_DIR", recorded)
    data = tmp_path / "data"
    made = prompts.build([], data)
    assert {(f.name, f.language) for f in made} == {(n, lang) for lang in LANGUAGES for n in SYSTEM_PROMPTS[lang]}
    built = data / "prompts" / "_system" / "id" / "digits" / "20.wav"
    assert prompts.check_wav(built) is None
    assert prompts.build([], data) == []  # unchanged texts are not built again

    override = recorded / "_system" / "id" / "digits" / "20.wav"
    override.parent.mkdir(parents=True)
    shutil.copyfile(built, override)
    files = {(f.name, f.language): f for f in prompts.require([], data)}
    assert files[("digits/20", "id")].path == override
    assert not files[("digits/20", "id")].built
    assert files[("digits/20", "en")].built
    assert all(f.plan_id == "_system" for f in files.values())
