"""Two edges and a floating address in the cluster file: read, refused when wrong (saying
what to write), and what the nodes trust. Proven on the real cluster in tests/cluster/test_edges.py."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ari_app.cluster import keepalived
from ari_app.cluster.topology import DEFAULT_FILE, Part, load
from ivr.errors import ConfigError


def cluster_file(tmp_path: Path, **changes: object) -> Path:
    raw = yaml.safe_load(DEFAULT_FILE.read_text())
    raw.pop("edge")
    raw.update({"edges": [{"name": "edge1", "address": "10.211.12.10"}, {"name": "edge2", "address": "10.211.12.20"}],
                "edge_vip": "10.211.12.9"})
    raw.update(changes)
    for key in [k for k, v in raw.items() if v is None]:
        del raw[key]
    path = tmp_path / "cluster.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_the_one_edge_form_still_reads_as_one_edge_callers_send_to() -> None:
    one = load()
    assert one.all_edges == (Part("edge", "10.211.12.10"),) and one.sip_address == "10.211.12.10"


def test_the_nodes_trust_each_edge_and_the_floating_address(tmp_path: Path) -> None:
    two = load(cluster_file(tmp_path))
    assert [e.name for e in two.all_edges] == ["edge1", "edge2"] and two.edge.name == "edge1"
    assert two.sip_address == "10.211.12.9"
    assert two.edge_addresses == ("10.211.12.10", "10.211.12.20", "10.211.12.9")
    assert [p.name for p in two.parts] == ["db", "edge1", "edge2", "node1", "node2", "callers"]


@pytest.mark.parametrize(("changes", "says"), [
    ({"edge_vip": None}, "missing key 'edge_vip'"),
    ({"edge": "10.211.12.10"}, "either 'edge'"),
    ({"edges": [{"name": "edge1", "address": "10.211.12.10"}]}, "list two or more"),
    ({"edge_vip": "10.211.12.10"}, "must be none of them"),
    ({"edges": [{"name": "edge1", "address": "10.211.12.10"}, {"name": "edge1", "address": "10.211.12.20"}]}, "own name"),
    ({"edge_vip": "edge.example"}, "is not an IP address"),
])
def test_a_wrong_edges_entry_is_refused_saying_what_to_write(tmp_path: Path, changes: dict[str, object], says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        load(cluster_file(tmp_path, **changes))


def test_a_floating_address_without_edges_is_refused(tmp_path: Path) -> None:
    raw = yaml.safe_load(DEFAULT_FILE.read_text()) | {"edge_vip": "10.211.12.9"}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match="'edge_vip' needs 'edges'"):
        load(tmp_path / "c.yaml")


def test_each_edges_keepalived_has_the_generated_password_and_the_others_as_peers(tmp_path: Path) -> None:
    two = load(cluster_file(tmp_path))
    secret = keepalived.password(tmp_path / "state")
    assert len(secret) == keepalived.PASSWORD_LEN and keepalived.password(tmp_path / "state") == secret
    assert (tmp_path / "state" / "vrrp-password").stat().st_mode & 0o777 == 0o600
    cfg = keepalived.render(two, two.all_edges[1], tmp_path / "edge2", secret=secret)
    text = cfg.read_text()
    assert f"auth_pass {secret}" in text and cfg.stat().st_mode & 0o777 == 0o600
    assert "unicast_peer {\n        10.211.12.10\n" in text and "priority 140" in text and "nopreempt" in text
    assert "10.211.12.9/24 dev eth0" in text
