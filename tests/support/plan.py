"""The test plan: Kotim's own plan, loaded as data and changed by key path.

A change names the key it changes (`location.record_seconds`, `agencies.police.trunks.0.port`);
a path the plan no longer has fails at once with the path and where it stopped, so a renamed
key cannot silently leave the tests on the production values.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

from ivr.settings import PROJECT_DIR
from tests.support.net import free_port

KOTIM = PROJECT_DIR / "dialplans" / "kotim.yaml"

# What the real-stack tests need different from the service's plan.
TEST_CHANGES: Mapping[str, object] = {
    # SIPp sends no audio unless told, so Asterisk hears no silence to stop on: keep it short.
    "location.record_seconds": 3,
    "location.dereference": True,
    # The kecamatan list read in full takes 45 s; the tests key a number during a short one.
    "prompts.which_kecamatan.text.id": "Tekan nomor kecamatan Anda.",
    # The plan's own path is relative to dialplans/; the test plan is written elsewhere.
    "location.boundaries": str(PROJECT_DIR / "dialplans" / "kotim-kecamatan.geojson"),
    # The tests of the voice menu need it with an operator free too; tests/integration/
    # test_operators_first.py switches it on.
    "operators_first": False,
}
PLACEHOLDER_RING_TIMEOUT = 20  # an agency trunk's; cut so a trunk nobody answers fails fast
TEST_RING_TIMEOUT = 5


class PlanPathError(AssertionError):
    """A key path the plan does not have (the plan changed under the tests)."""


def _step(node: Any, key: str, path: str, source: Path) -> Any:
    try:
        return node[int(key)] if isinstance(node, list) else node[key]
    except (KeyError, IndexError, ValueError, TypeError):
        raise PlanPathError(f"{source} has no {path!r}: nothing at {key!r}; update the tests to the plan") from None


def get_key(doc: Any, path: str, source: Path = KOTIM) -> Any:
    """The value at a dotted key path (list items by index); fails loudly when it is missing."""
    node = doc
    for key in path.split("."):
        node = _step(node, key, path, source)
    return node


def set_key(doc: Any, path: str, value: object, source: Path = KOTIM) -> object:
    """Replace the value at an existing key path; returns the value it had."""
    parent_path, _, last = path.rpartition(".")
    parent = get_key(doc, parent_path, source) if parent_path else doc
    old = _step(parent, last, path, source)
    parent[int(last) if isinstance(parent, list) else last] = value
    return old


def load(path: Path = KOTIM) -> Any:
    return yaml.safe_load(path.read_text())


def write(doc: Any, path: Path) -> Path:
    path.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))
    return path


def edit_plan_file(path: Path, changes: Mapping[str, object]) -> dict[str, object]:
    """Apply `changes` (key path -> value) to the plan file in place; returns the old values."""
    doc = load(path)
    old = {key: set_key(doc, key, value, path) for key, value in changes.items()}
    write(doc, path)
    return old


def placeholders(doc: Any) -> Iterator[str]:
    """Key paths of the plan's placeholder addresses: agency trunks and carriers' callbacks."""
    for name, agency in get_key(doc, "agencies").items():
        for i, trunk in enumerate(agency.get("trunks", ())):
            if trunk.get("placeholder"):
                yield f"agencies.{name}.trunks.{i}"
    for i, carrier in enumerate(get_key(doc, "carriers")):
        if (carrier.get("callback") or {}).get("placeholder"):
            yield f"carriers.{i}.callback"


def make_test_plan(tmp: Path, changes: Mapping[str, object] = {}) -> tuple[Path, dict[int, int]]:
    """Kotim's plan with its placeholder trunk ports moved to free ports (SIPp stands in),
    written to tmp/plan.yaml with TEST_CHANGES and then `changes` applied.

    Returns the plan file and the map placeholder port -> test port. Agency trunks' ring
    timeouts are cut so a trunk nobody answers fails fast.
    """
    doc, ports = _test_doc(changes)
    return write(doc, tmp / "plan.yaml"), ports


def _test_doc(changes: Mapping[str, object]) -> tuple[Any, dict[int, int]]:
    doc = load(KOTIM)
    ports = move_placeholder_ports(doc)
    for where in placeholders(doc):
        if get_key(doc, where).get("ring_timeout") == PLACEHOLDER_RING_TIMEOUT:
            set_key(doc, f"{where}.ring_timeout", TEST_RING_TIMEOUT)
    for key, value in {**TEST_CHANGES, **changes}.items():
        set_key(doc, key, value)
    return doc, ports


def move_placeholder_ports(doc: Any) -> dict[int, int]:
    """Move every placeholder address of the plan (agency trunks, carriers' callbacks) to a
    free local port, one per placeholder port; returns the map placeholder port -> free port."""
    found = list(placeholders(doc))
    if not found:
        raise PlanPathError(f"{KOTIM} has no placeholder trunk left for SIPp to stand in; update the tests to the plan")
    ports: dict[int, int] = {}
    for where in found:
        port = int(get_key(doc, f"{where}.port"))
        ports.setdefault(port, free_port(socket.SOCK_DGRAM))
        set_key(doc, f"{where}.port", ports[port])
    return ports


def make_regency_plan(tmp: Path, plan_id: str, regency: str, carrier: str, source: str) -> tuple[Path, dict[int, int]]:
    """A second regency's plan, as a new user writes one: the test plan copied, with its own
    id, its agencies named for `regency`, its own trunk ports (SIPp stands in) and its own
    carrier delivering from `source` (an address/prefix). Written to tmp/<plan_id>.yaml.

    Returns the plan file and the map placeholder port -> this plan's test port."""
    doc, ports = _test_doc({})
    set_key(doc, "service.id", plan_id)
    set_key(doc, "service.name", f"{regency} 112")
    for agency in get_key(doc, "agencies").values():
        agency["label"] = agency["label"].replace("Kotawaringin Timur", regency)
    set_key(doc, "carriers.0.name", carrier)
    set_key(doc, "carriers.0.match", [source])
    return write(doc, tmp / f"{plan_id}.yaml"), ports
