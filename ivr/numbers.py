"""Numbers spoken from our own prompt files, in Indonesian and English.

Asterisk's say.c has no Indonesian ("satu ratus" instead of "seratus"), but app_playback
can replace it with the rules of say.conf (`mode=new`): SayNumber and app_queue's position
and hold-time announcements then speak `num:<n>` by those rules, in the channel's language.
This module holds the words a number should sound like (`words`), the prompts the rules
play (`SYSTEM_PROMPTS`, built like plan prompts under the pseudo plan `_system`) and the
rules themselves (`say_conf`). tests/unit/test_numbers.py runs the rules as Asterisk does
and checks they speak `words(n)` for every n it tries.

How Asterisk reads the rules (apps/app_playback.c `do_say`, main/pbx.c, main/file.c):
- the section is the channel's language (`id_ID` falls back to `id`, anything to `en`);
  within it the FIRST rule whose pattern matches wins, in file order (no specificity
  sorting as in the dialplan). Ours never overlap, so order does not matter either way.
- patterns are dialplan patterns: X = 0-9, Z = 1-9, N = 2-9 (lower case too, hence
  `[n]um`), [..] a set, `.` one or more characters; `${SAY:a:b}` is the matched value.
- a rule piece with a `prefix:` is said again by the rules; any other piece is a file.
  A file name starting with `/` is absolute: Asterisk inserts the language before its
  last part (`<dir>/id/<name>`, then `<dir>/<name>`, then `<dir>/en/<name>`), so our
  paths name the language folder themselves and are found at the second try.
- a piece is cut at 127 characters once `${SAY}` is filled in (a 128-byte buffer).
"""

from __future__ import annotations

import re

LANGUAGES = ("id", "en")
MAX_NUMBER = 999_999_999
SAY_PIECE_LIMIT = 127  # app_playback's `char fn[128]`
SAFE_PATH_RE = re.compile(r"^/[A-Za-z0-9_./-]+$")

_ID_UNITS = ("nol", "satu", "dua", "tiga", "empat", "lima", "enam", "tujuh", "delapan", "sembilan")
_EN_SMALL = (
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen",
)
_EN_TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")


def words(n: int, lang: str) -> str:
    """The words for `n` (0 to 999,999,999) in `lang` ("id" or "en"), one space between words."""
    if not 0 <= n <= MAX_NUMBER:
        raise ValueError(f"{n} is out of range: numbers are spoken from 0 to {MAX_NUMBER:,}")
    if lang == "id":
        return " ".join(_id(n))
    if lang == "en":
        return " ".join(_en(n))
    raise ValueError(f"no number words for language {lang!r}; known: {', '.join(LANGUAGES)}")


def _id(n: int) -> list[str]:
    if n < 10:
        return [_ID_UNITS[n]]
    if n < 20:
        return {10: ["sepuluh"], 11: ["sebelas"]}.get(n, [_ID_UNITS[n - 10], "belas"])
    if n < 100:
        tens, unit = divmod(n, 10)
        return [_ID_UNITS[tens], "puluh"] + ([_ID_UNITS[unit]] if unit else [])
    for size, one, many in ((1_000_000, "satu juta", "juta"), (1000, "seribu", "ribu"), (100, "seratus", "ratus")):
        if n >= size:
            head, rest = divmod(n, size)
            # "se-" (one) is bound to ratus and ribu only: 1,000,000 is "satu juta".
            said = one.split() if head == 1 else [*_id(head), many]
            return said + (_id(rest) if rest else [])
    raise AssertionError("unreachable")


def _en(n: int) -> list[str]:
    if n < 20:
        return [_EN_SMALL[n]]
    if n < 100:
        tens, unit = divmod(n, 10)
        return [_EN_TENS[tens]] + ([_EN_SMALL[unit]] if unit else [])
    for size, name in ((1_000_000, "million"), (1000, "thousand"), (100, "hundred")):
        if n >= size:
            head, rest = divmod(n, size)
            return [*_en(head), name] + (_en(rest) if rest else [])
    raise AssertionError("unreachable")


def _digit_prompts(lang: str) -> dict[str, str]:
    texts = {f"digits/{n}": words(n, lang) for n in range(20)}
    texts |= {f"digits/{n}": words(n, lang) for n in range(20, 100, 10)}
    if lang == "id":
        texts |= {"digits/100": "seratus", "digits/hundred": "ratus", "digits/1000": "seribu",
                  "digits/thousand": "ribu", "digits/million": "juta"}
    else:
        texts |= {"digits/hundred": "hundred", "digits/thousand": "thousand", "digits/million": "million"}
    return texts


# app_queue's default sounds (queues.conf: queue-youarenext, queue-thereare, ...,
# periodic-announce). A caller hears: [queue-thereare] <position> [queue-callswaiting],
# or [queue-youarenext] when first; then [queue-holdtime] <minutes> [queue-minute(s)]
# ([queue-seconds] with announce-round-seconds); then [queue-thankyou].
# queue-quantity1/2 frame the number with announce-position = more; queue-reporthold is
# what the operator hears with reportholdtime = yes. (Asterisk 22 plays no queue-less-than.)
_QUEUE_PROMPTS = {
    "id": {
        "queue-youarenext": "Anda berada di urutan pertama. Petugas berikutnya yang tersedia akan segera menjawab panggilan Anda.",
        "queue-thereare": "Saat ini Anda berada di urutan ke",
        "queue-callswaiting": "dalam antrean untuk berbicara dengan petugas.",
        "queue-quantity1": "Saat ini ada lebih dari",
        "queue-quantity2": "penelepon yang sedang menunggu petugas.",
        "queue-holdtime": "Perkiraan waktu tunggu Anda adalah",
        "queue-minute": "menit.",
        "queue-minutes": "menit.",
        "queue-seconds": "detik.",
        "queue-thankyou": "Terima kasih atas kesabaran Anda. Mohon tetap di saluran.",
        "queue-reporthold": "Penelepon ini sudah menunggu",
        "queue-periodic-announce": (
            "Semua petugas sedang melayani penelepon lain. Mohon jangan menutup telepon, "
            "petugas berikutnya yang tersedia akan menjawab panggilan Anda."
        ),
    },
    "en": {
        "queue-youarenext": "You are now first in line. The next available operator will answer your call.",
        "queue-thereare": "You are currently caller number",
        "queue-callswaiting": "in line to speak to an operator.",
        "queue-quantity1": "There are currently more than",
        "queue-quantity2": "callers waiting for an operator.",
        "queue-holdtime": "The estimated waiting time is",
        "queue-minute": "minute.",
        "queue-minutes": "minutes.",
        "queue-seconds": "seconds.",
        "queue-thankyou": "Thank you for your patience. Please stay on the line.",
        "queue-reporthold": "This caller has waited",
        "queue-periodic-announce": (
            "All operators are busy helping other callers. Please do not hang up; "
            "the next available operator will answer your call."
        ),
    },
}

QUEUE_SOUND_OPTIONS = {
    **{name: name for name in _QUEUE_PROMPTS["en"] if name != "queue-periodic-announce"},
    "periodic-announce": "queue-periodic-announce",
}
"""queues.conf option -> the app_queue sound it names (its default, and our prompt's name).
Set each to `<sounds>/_system/<sound>`, without a language: Asterisk puts the caller's
language in front of the last part of an absolute name (`<sounds>/_system/id/<sound>`)."""

SYSTEM_PROMPTS: dict[str, dict[str, str]] = {lang: _digit_prompts(lang) | _QUEUE_PROMPTS[lang] for lang in LANGUAGES}
"""Per language, sound name (a path under `<sounds>/_system/<lang>/`) -> the text it speaks."""


def _nonzero_tails(width: int) -> list[str]:
    """Patterns that together match every `width`-digit string except all zeros, each once:
    [1-9]XX, 0[1-9]X, 00[1-9] for width 3."""
    return ["0" * lead + "[1-9]" + "X" * (width - lead - 1) for lead in range(width)]


def _group_rules(width: int, head: str, say_head: str) -> list[tuple[str, str]]:
    """Rules for numbers `head` followed by `width` more digits: the round one ends with the
    group word, the others also say the rest (leading zeros are dropped by the `0.` rule)."""
    rules = [(head + "0" * width, say_head)]
    rules += [(head + tail, f"{say_head}, num:${{SAY:{_head_len(head)}}}") for tail in _nonzero_tails(width)]
    return rules


def _head_len(head: str) -> int:
    """Digits a head pattern stands for ("[1-9]X" is two)."""
    return len(re.findall(r"\[[^\]]*\]|.", head))


def _rules(lang: str, files: str) -> list[tuple[str, str]]:
    """(pattern after `num:`, what to say) for one language; the patterns never overlap."""
    d = f"{files}/digits"
    rules = [
        ("X", f"{d}/${{SAY}}"),
        ("1X", f"{d}/${{SAY}}"),
        ("[2-9]0", f"{d}/${{SAY}}"),
        ("[2-9][1-9]", f"{d}/${{SAY:0:1}}0, {d}/${{SAY:1}}"),
        # A rest with leading zeros (1,005 -> "005"): drop one and say the rest again.
        ("0.", "num:${SAY:1}"),
    ]
    if lang == "id":
        rules += _group_rules(2, "1", f"{d}/100")
        rules += _group_rules(2, "[2-9]", f"num:${{SAY:0:1}}, {d}/hundred")
        rules += _group_rules(3, "1", f"{d}/1000")
        rules += _group_rules(3, "[2-9]", f"num:${{SAY:0:1}}, {d}/thousand")
    else:
        rules += _group_rules(2, "[1-9]", f"num:${{SAY:0:1}}, {d}/hundred")
        rules += _group_rules(3, "[1-9]", f"num:${{SAY:0:1}}, {d}/thousand")
    rules += _group_rules(3, "[1-9]X", f"num:${{SAY:0:2}}, {d}/thousand")
    rules += _group_rules(3, "[1-9]XX", f"num:${{SAY:0:3}}, {d}/thousand")
    for head, size in (("[1-9]", 1), ("[1-9]X", 2), ("[1-9]XX", 3)):
        rules += _group_rules(6, head, f"num:${{SAY:0:{size}}}, {d}/million")
    return rules


def say_conf(sounds: str) -> str:
    """The say.conf text (new mode, [id] and [en] rules) playing the system prompts from
    `sounds`, the instance's absolute `_system` folder as Asterisk sees it."""
    if not SAFE_PATH_RE.match(sounds):
        raise ValueError(
            f"say.conf needs an absolute folder of letters, digits, '_', '.', '-' and '/'; got {sounds!r} "
            "(',', ':' and ';' would be read as rule syntax)"
        )
    longest = max(len(f"{sounds}/{lang}/{name}") for lang in LANGUAGES for name in SYSTEM_PROMPTS[lang])
    if longest > SAY_PIECE_LIMIT:
        raise ValueError(
            f"say.conf file names under {sounds} reach {longest} characters; Asterisk cuts them at "
            f"{SAY_PIECE_LIMIT}: use a shorter instance name"
        )
    out = [
        "; Rendered by ivr112 (ivr/numbers.py): numbers spoken from the _system prompts.",
        "; First matching rule wins; these never overlap. `[n]um`: a bare n would mean 2-9.",
        "[general]",
        "mode = new",
    ]
    for lang in LANGUAGES:
        out += ["", f"[{lang}]"]
        out += [f"_[n]um:{pattern} => {said}" for pattern, said in _rules(lang, f"{sounds}/{lang}")]
    return "\n".join(out) + "\n"
