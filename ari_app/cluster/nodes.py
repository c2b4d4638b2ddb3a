"""A call node's own settings and plans: today's single-machine ivr112 (Asterisk, app,
guard) with its addresses in the cluster, the shared store, and carriers known by the edge's mark.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import yaml

from ari_app.cluster.topology import NODE_AML_PORT, NODE_HTTP_PORT, NODE_RTP, NODE_SIP_PORT, Cluster, Part
from ivr.secrets import SECRETS_FILE, load_or_create
from ivr.settings import PROJECT_DIR, Settings


def node_dir(state_dir: Path, node: Part) -> Path:
    return state_dir / node.name


def config_file(state_dir: Path, node: Part) -> Path:
    return node_dir(state_dir, node) / "ivr112.yaml"


def shared_secrets(settings: Settings, state_dir: Path) -> Path:
    """One set of generated secrets for every node (ARI between nodes, operators' passwords)."""
    folder = state_dir / "shared"
    folder.mkdir(parents=True, exist_ok=True)
    load_or_create(folder, tuple(op.name for op in settings.operators), tuple(g.name for g in settings.aml_gateways))
    return folder / SECRETS_FILE


def write_plans(settings: Settings, state_dir: Path) -> list[str]:
    """The served plans as the nodes see them (files they name made absolute). Carriers keep
    their own `match`: the edge marks each carrier's calls by it, and a node, with `sip_edges`
    set, knows the carrier by the edge's mark. Returns the plans' paths."""
    out = state_dir / "plans"
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in settings.plans:
        source = (PROJECT_DIR / name) if not Path(name).is_absolute() else Path(name)
        doc: Any = yaml.safe_load(source.read_text())
        _absolute_paths(doc, source.parent)
        target = out / source.name
        target.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))
        paths.append(str(target))
    return paths


def _absolute_paths(doc: Any, base: Path) -> None:
    """Files a plan names relative to its own folder, made absolute (the copy lives elsewhere)."""
    location = doc.get("location") or {}
    for key in ("boundaries",):
        value = location.get(key)
        if isinstance(value, str) and value and not Path(value).is_absolute():
            location[key] = str((base / value).resolve())


def write_config(settings: Settings, cluster: Cluster, node: Part, state_dir: Path, *, store_url: str,
                 plans: list[str]) -> Path:
    """The node's settings file; its data folder beside it (secrets, spool, logs)."""
    folder = node_dir(state_dir, node)
    data = folder / "data"
    data.mkdir(parents=True, exist_ok=True)
    shared = shared_secrets(settings, state_dir)
    if not (data / SECRETS_FILE).exists():
        shutil.copyfile(shared, data / SECRETS_FILE)
        os.chmod(data / SECRETS_FILE, 0o600)
    prompts = data / "prompts"
    if not prompts.exists():
        prompts.symlink_to(settings.data_path.resolve() / "prompts")
    values: dict[str, Any] = {
        "instance": cluster.instance(node),
        "node_name": node.name,
        "data_dir": str(data),
        "store_url": store_url,
        "plans": plans,
        "asterisk_root": str(settings.root_path),
        "sip_host": node.address, "sip_port": NODE_SIP_PORT, "sip_edges": list(cluster.edge_addresses),
        # Operators' softphones register at the edge; the queues live on the first node,
        # the second stands by (docs/cluster.md, "Operators across nodes").
        "sip_edge": f"{cluster.sip_address}:{cluster.edge_sip_port}",
        "queue_nodes": [f"{n.address}:{NODE_SIP_PORT}" for n in cluster.queue_nodes],
        # ARI on the node's address: the other nodes' watchers ask it when it started
        # (ari_app/cluster/watch.py). AMI stays on the node's own loopback.
        "ari_host": node.address, "ami_host": "127.0.0.1",
        "http_host": node.address, "http_port": NODE_HTTP_PORT,
        "aml_host": node.address, "aml_port": NODE_AML_PORT,
        "rtp_start": NODE_RTP[0], "rtp_end": NODE_RTP[1],
        "operators": [{"name": op.name, "full_name": op.full_name, "languages": list(op.languages)} for op in settings.operators],
    }
    path = config_file(state_dir, node)
    path.write_text(yaml.safe_dump(values, sort_keys=False))
    os.chmod(path, 0o600)  # it holds the store's password
    return path
