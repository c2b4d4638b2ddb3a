"""A plan with broken YAML is refused in plain words, at the line to fix, with the fix.

The engineer who wrote a second regency's plan met libyaml's own words ("found character
that cannot start any token") for a tab; these are the mistakes an editor makes by hand,
each in Kotim's plan, as `ivr112 validate` reports them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ari_app.cli import main
from ivr.settings import PROJECT_DIR

KOTIM = (PROJECT_DIR / "dialplans" / "kotim.yaml").read_text().splitlines(keepends=True)


def _validate(tmp_path: Path, capsys: pytest.CaptureFixture[str], line: int, edit: str) -> str:
    """`ivr112 validate` on Kotim's plan with `line` (from 1) replaced; its one problem."""
    lines = KOTIM[:]
    lines[line - 1] = edit
    path = tmp_path / "kotim.yaml"
    path.write_text("".join(lines))
    assert main(["validate", str(path)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1, out
    assert "token" not in out[0] and "<block" not in out[0], out[0]
    return out[0].replace(str(path), "kotim.yaml")


def test_a_tab_is_named_at_its_own_line_with_the_fix(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert KOTIM[117] == "    prompts: [main_menu]\n"
    assert _validate(tmp_path, capsys, 118, "\tprompts: [main_menu]\n") == \
        "kotim.yaml:118:1: not valid YAML: a tab at line 118: indent with spaces (YAML does not allow tabs)"


def test_a_key_indented_one_space_too_far_names_both_lines_that_disagree(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _validate(tmp_path, capsys, 118, "     prompts: [main_menu]\n") == (
        "kotim.yaml:118:6: not valid YAML: lines 118 and 119 are indented differently (5 and 4 spaces) but belong to the same section; "
        "start them in the same column, with spaces")


def test_an_unclosed_quote_is_named_where_it_opens_not_where_yaml_gave_up(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _validate(tmp_path, capsys, 16, '      id: "Layanan darurat satu satu dua, Kotawaringin Timur.\n') == \
        'kotim.yaml:16:11: not valid YAML: line 16 opens a quote (") that is never closed; end the text with " on the same line'


def test_a_key_without_its_colon_is_named_at_its_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _validate(tmp_path, capsys, 7, "  id kotim\n") == \
        "kotim.yaml:7:3: not valid YAML: line 7 has no ':' after its key; write it as 'key: value'"


def test_a_colon_inside_a_value_asks_for_quotes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _validate(tmp_path, capsys, 8, "  name: Kotim: 112\n") == \
        "kotim.yaml:8:14: not valid YAML: line 8 has a second ': ' inside a value; put the value in quotes: key: \"a: b\""


def test_an_unclosed_list_is_named_at_the_line_that_opens_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _validate(tmp_path, capsys, 10, '  numbers: ["112", "110", "113"\n') == (
        "kotim.yaml:10:12: not valid YAML: line 10 opens '[' without a matching ']' on that line, or an item lacks its comma; "
        "close it with ']' and separate items with ', '")


def test_a_reserved_character_at_the_start_of_a_value_asks_for_quotes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _validate(tmp_path, capsys, 8, "  name: @Kotim 112\n") == \
        "kotim.yaml:8:9: not valid YAML: line 8 has '@' where a value starts, which YAML reserves; put the value in quotes: \"@...\""
