"""The plan drawn as a Graphviz graph: every menu, key, agency and queue is on it."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest

from ivr.graph import GraphError, quote, render, to_dot
from ivr.plan import Plan, load_plan
from ivr.settings import PROJECT_DIR

needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz is not installed: apt-get install graphviz or make deps")


@pytest.fixture(scope="module")
def kotim() -> Plan:
    return load_plan(PROJECT_DIR / "dialplans/kotim.yaml")


def test_the_graph_names_every_menu_agency_and_queue_and_every_key(kotim: Plan) -> None:
    dot = to_dot(kotim)
    assert dot.startswith('digraph "kotim" {')
    # Kotim asks where the caller is before its menu: greeting, question, kecamatan, menu.
    assert '"entry" -> "ask_location"' in dot and '"kecamatan" -> "menu:main" [label="then"]' in dot
    for menu in kotim.menus.values():
        assert f'"menu:{menu.name}" [label="menu {menu.name}' in dot
    for agency in kotim.agencies.values():
        assert f'"agency:{agency.name}" [label="agency {agency.name}\\n{agency.label}' in dot
        assert f'"agency:{agency.name}" -> "{agency.on_failure.kind}:{agency.on_failure.name}" [label="no trunk answers"' in dot
    for queue in kotim.queues.values():
        assert f'"queue:{queue.name}" [label="queue {queue.name}' in dot
    for digit, target in kotim.menus["main"].options.items():
        if target.kind == "language":
            assert f'"menu:main" -> "menu:main" [label="{digit}: switch to {target.name}"' in dot
        else:
            assert f'"menu:main" -> "{target.kind}:{target.name}" [label="{digit}"]' in dot
    assert '"menu:main" -> "queue:operators" [label="no input"' in dot
    assert '"menu:main" -> "queue:operators" [label="wrong input (after 1 retry)"' in dot
    assert '"queue:operators" -> "agency:provincial" [label="after 120 s / nobody logged in"' in dot


def test_menus_show_the_start_of_their_indonesian_text_and_agencies_their_placeholder_trunks(kotim: Plan) -> None:
    dot = to_dot(kotim)
    assert "«Polisi, tekan satu. Pemadam kebakaran" in dot
    assert "trunk 127.0.0.1:5071 → 110 (placeholder)" in dot


def test_quotes_and_backslashes_in_labels_are_escaped_for_dot() -> None:
    assert quote('say "hi" C:\\x\nnext') == '"say \\"hi\\" C:\\\\x\\nnext"'


@needs_dot
def test_an_svg_of_the_plan_is_drawn_even_with_quotes_and_backslashes_in_a_label(kotim: Plan, tmp_path: Path) -> None:
    police = dataclasses.replace(kotim.agencies["police"], label='Polres "Kotim" \\ Sampit')
    plan = dataclasses.replace(kotim, agencies={**kotim.agencies, "police": police})
    out = tmp_path / "kotim.svg"
    render(plan, out)
    svg = out.read_text(encoding="utf-8")
    assert "<svg" in svg
    assert "police" in svg
    assert "Polres &quot;Kotim&quot; \\ Sampit" in svg


@needs_dot
def test_a_png_of_the_plan_is_a_png(kotim: Plan, tmp_path: Path) -> None:
    out = tmp_path / "kotim.png"
    render(kotim, out)
    assert out.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_a_dot_file_gets_the_graph_text(kotim: Plan, tmp_path: Path) -> None:
    out = tmp_path / "kotim.dot"
    render(kotim, out)
    assert out.read_text(encoding="utf-8") == to_dot(kotim)


def test_an_unknown_suffix_is_refused_naming_the_ones_that_work(kotim: Plan, tmp_path: Path) -> None:
    with pytest.raises(GraphError, match=r"\.svg, \.png or \.dot"):
        render(kotim, tmp_path / "kotim.pdf")


def test_without_graphviz_the_error_says_how_to_install_it(kotim: Plan, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(GraphError, match="apt-get install graphviz or make deps"):
        render(kotim, tmp_path / "kotim.svg")


def test_every_step_a_caller_can_meet_is_drawn() -> None:
    from pathlib import Path

    from ivr.plan import load_plan
    from ivr.settings import PROJECT_DIR

    kotim = load_plan(Path(PROJECT_DIR / "dialplans" / "kotim.yaml"))
    dot = to_dot(kotim)
    for node in ('"prank"', '"ask_location"', '"kecamatan"', '"silent"', '"menu:main"', '"queue:operators"', '"agency:provincial"'):
        assert f"{node} [label=" in dot, node
    assert "an operator is free: after the greeting" in dot  # operators first
    assert '"ask_location" -> "kecamatan"' in dot and '"kecamatan" -> "menu:main"' in dot
    assert '"menu:main" -> "silent"' in dot and '"queue:operators" -> "agency:provincial"' in dot
