"""Who is where in a cluster: the edge, the database, the call nodes, read from
`config/cluster.yaml` (pure: no process, no socket).

Each part has a name, an address and, on one machine, a network namespace named after it.
The same description serves real hosts; `--nodes N` adds nodes after the listed ones.
The edge is one Kamailio (`edge: ADDRESS`) or several (`edges: [{name, address}, ...]` with
`edge_vip`: a floating address keepalived moves to a live one; docs/cluster.md).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from ivr.errors import ConfigError
from ivr.settings import PROJECT_DIR

DEFAULT_FILE = PROJECT_DIR / "config" / "cluster.yaml"
# Inside each node's namespace every node uses the same ports: the address tells them apart.
NODE_SIP_PORT = 5060
NODE_HTTP_PORT = 8112
NODE_AML_PORT = 8113
NODE_RTP = (10000, 10999)


@dataclass(frozen=True)
class Part:
    """One part of the cluster: `edge`, `db`, `node1`..., `callers`."""

    name: str
    address: str

    def netns(self, cluster: str) -> str:
        return f"{cluster}-{self.name}"

    def host_link(self, cluster: str) -> str:
        """The host's end of the part's veth pair (the one `ip link set ... down` cuts)."""
        return f"{cluster}-{self.name}"[:15]


@dataclass(frozen=True)
class Cluster:
    name: str
    bridge: str
    prefix_len: int
    host_address: str
    edge: Part
    edge_sip_port: int
    database: Part
    database_port: int
    nodes: tuple[Part, ...]
    callers: Part
    probe_interval_s: int = 1
    first_reply_ms: int = 1000
    node_lost_after_s: int = 5
    source: Path = field(default=DEFAULT_FILE, compare=False)
    # With several edges: every edge (`edge` is the first) and the floating address they share.
    edges: tuple[Part, ...] = ()
    edge_vip: str = ""

    @property
    def parts(self) -> tuple[Part, ...]:
        """Every part that gets a namespace, in start order."""
        return (self.database, *self.all_edges, *self.nodes, self.callers)

    @property
    def all_edges(self) -> tuple[Part, ...]:
        return self.edges or (self.edge,)

    @property
    def sip_address(self) -> str:
        """Where carriers and callers send: the floating address, or the one edge's."""
        return self.edge_vip or self.edge.address

    @property
    def edge_addresses(self) -> tuple[str, ...]:
        """Every address a node may see the edge's requests come from (each edge's own, for its
        probes, and the floating one, for the calls it relays)."""
        return (*(e.address for e in self.all_edges), *((self.edge_vip,) if self.edge_vip else ()))

    @property
    def queue_nodes(self) -> tuple[Part, ...]:
        """The node holding the operators' queues (the first), then its standby (docs/cluster.md)."""
        return self.nodes[:2]

    def node(self, name: str) -> Part:
        for n in self.nodes:
            if n.name == name:
                return n
        raise ConfigError(f"{self.source}: no node {name!r}; the nodes are {', '.join(n.name for n in self.nodes)}")

    def instance(self, node: Part) -> str:
        """The node's Asterisk instance name inside the shared root."""
        return f"{self.name}-{node.name}"

    def with_nodes(self, count: int) -> Cluster:
        """This cluster with `count` nodes: the listed ones first, then more on the next addresses."""
        if count < 1:
            raise ConfigError(f"--nodes must be at least 1, not {count}")
        nodes = list(self.nodes[:count])
        last = ipaddress.ip_address(nodes[-1].address)
        while len(nodes) < count:
            last += 1
            nodes.append(Part(f"node{len(nodes) + 1}", str(last)))
        return replace(self, nodes=tuple(nodes))


def load(path: Path = DEFAULT_FILE) -> Cluster:
    """The cluster described in `path`; ConfigError naming the key when it is wrong."""
    try:
        raw: Any = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read the cluster file {path}: {exc.strerror}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of cluster settings")
    try:
        nodes = tuple(Part(str(n["name"]), _address(path, n["address"])) for n in raw["nodes"])
        edges, vip = _edges(path, raw)
        cluster = Cluster(
            name=str(raw["name"]), bridge=str(raw["bridge"]), prefix_len=int(raw["prefix_len"]),
            host_address=_address(path, raw["host_address"]),
            edge=edges[0], edges=edges if vip else (), edge_vip=vip, edge_sip_port=int(raw["edge_sip_port"]),
            database=Part("db", _address(path, raw["database"])), database_port=int(raw["database_port"]),
            nodes=nodes, callers=Part("callers", _address(path, raw["callers"])),
            probe_interval_s=int(raw.get("probe_interval_s", 1)), first_reply_ms=int(raw.get("first_reply_ms", 1000)),
            node_lost_after_s=int(raw.get("node_lost_after_s", 5)), source=path,
        )
    except KeyError as exc:
        raise ConfigError(f"{path}: missing key {exc.args[0]!r}; see config/cluster.yaml for the shape") from None
    if not cluster.nodes:
        raise ConfigError(f"{path}: 'nodes' lists no call node; list at least one")
    return cluster


def _edges(path: Path, raw: dict[str, Any]) -> tuple[tuple[Part, ...], str]:
    """The edge (`edge: ADDRESS`) or the edges and their floating address (`edges` + `edge_vip`)."""
    if "edges" not in raw:
        if "edge_vip" in raw:
            raise ConfigError(f"{path}: 'edge_vip' needs 'edges' (two or more edges to float it between)")
        return (Part("edge", _address(path, raw["edge"])),), ""
    if "edge" in raw:
        raise ConfigError(f"{path}: give either 'edge' (one Kamailio) or 'edges' with 'edge_vip', not both")
    edges = tuple(Part(str(e["name"]), _address(path, e["address"])) for e in raw["edges"] or ())
    if len(edges) < 2:
        raise ConfigError(f"{path}: 'edges' lists {len(edges)} edge; list two or more, or use 'edge: ADDRESS' for one")
    vip = _address(path, raw["edge_vip"])
    if len({e.name for e in edges}) < len(edges) or vip in {e.address for e in edges}:
        raise ConfigError(f"{path}: each edge needs its own name and address, and 'edge_vip' ({vip}) must be none of them")
    return edges, vip


def _address(path: Path, value: object) -> str:
    try:
        return str(ipaddress.ip_address(str(value)))
    except ValueError:
        raise ConfigError(f"{path}: {value!r} is not an IP address") from None
