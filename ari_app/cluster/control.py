"""`ivr112 cluster up|down|status`: build on this machine what a province runs on several.

`up` makes the private network (ari_app/cluster/netns.py), starts PostgreSQL in the
database's namespace, Kamailio in the edge's (in each edge's, with keepalived beside it,
when the cluster has several edges and a floating address), and in each node's namespace one
`ivr112 run --with-asterisk` (Asterisk, app and guard, as on a single machine; the
namespace is inherited, so every process of the node sees only the node's address).
Each pid is kept in `<data_dir>/cluster/state.json`; `down` stops exactly those pids.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import psycopg

from ari_app.asterisk import cel, process
from ari_app.asterisk.layout import Layout
from ari_app.cluster import kamailio, keepalived, netns, nodes
from ari_app.cluster.topology import NODE_HTTP_PORT, Cluster, Part
from ari_app.store.pg_server import PostgresServer, alive
from ari_app.store.pg_server import available as pg_available
from ivr.errors import ConfigError
from ivr.plan import PlanSet, load_plans
from ivr.secrets import load_or_create
from ivr.settings import PROJECT_DIR, Settings

log = logging.getLogger(__name__)
DATABASE = "ivr112"
NODE_READY_TIMEOUT_S = 180.0
EDGE_READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 30.0
POLL_S = 0.2


@dataclass(frozen=True)
class Paths:
    state_dir: Path

    @property
    def state_file(self) -> Path:
        return self.state_dir / "state.json"

    @property
    def db(self) -> Path:
        return self.state_dir / "db"

    @property
    def edge(self) -> Path:
        return self.state_dir / "edge"

    @property
    def edge_run(self) -> Path:
        return self.edge / "run"

    def edge_dir(self, edge: Part) -> Path:
        """Where an edge's configs, log and control socket live (`edge/` for the one edge)."""
        return self.state_dir / edge.name


def paths(settings: Settings) -> Paths:
    return Paths(settings.data_path.resolve() / "cluster")


def read_state(p: Paths) -> dict[str, int]:
    try:
        raw = json.loads(p.state_file.read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): int(v) for k, v in raw.items()}


def _write_state(p: Paths, state: dict[str, int]) -> None:
    p.state_file.write_text(json.dumps(state, indent=1) + "\n")


def database(cluster: Cluster, p: Paths) -> PostgresServer:
    """The cluster's PostgreSQL server (its password generated once, kept 0600 beside its data)."""
    pw_file = p.db.parent / "db-password"
    if not pw_file.exists():
        p.state_dir.mkdir(parents=True, exist_ok=True)
        pw_file.write_text(secrets.token_urlsafe(24) + "\n")
        pw_file.chmod(0o600)
    return PostgresServer(p.db, host=cluster.database.address, port=cluster.database_port,
                          prefix=netns.prefix(cluster, cluster.database), password=pw_file.read_text().strip(),
                          max_connections=100)


def store_url(cluster: Cluster, p: Paths) -> str:
    return database(cluster, p).url_for(DATABASE)


def up(settings: Settings, cluster: Cluster) -> dict[str, int]:
    """Start every part that is not running; return the pids by part name."""
    _preflight(settings, cluster)
    p = paths(settings)
    state = read_state(p)
    netns.up(cluster)
    state["db"] = _db_up(cluster, p)
    _write_state(p, state)
    served = load_plans(settings.plan_paths)
    for edge in cluster.all_edges:
        if not alive(state.get(edge.name, 0) or -1):
            state[edge.name] = _edge_up(settings, cluster, p, edge, served)
            _write_state(p, state)
    if cluster.edge_vip:
        _vrrp_up(cluster, p, state)
    plans = nodes.write_plans(settings, p.state_dir)
    url = store_url(cluster, p)
    for node in cluster.nodes:
        if not alive(state.get(node.name, 0) or -1):
            state[node.name] = start_node(settings, cluster, node, p, store_url=url, plans=plans)
            _write_state(p, state)
    for node in cluster.nodes:
        wait_node_ready(cluster, node, p, state[node.name])
        if not alive(state.get(f"watch-{node.name}", 0) or -1):
            state[f"watch-{node.name}"] = start_watch(cluster, node, p)
            _write_state(p, state)
    for edge in cluster.all_edges:
        wait_edge_sees(cluster, p, {n.address for n in cluster.nodes}, run_dir=p.edge_dir(edge) / "run")
    if cluster.edge_vip:
        wait_vip_held(cluster)
    return state


def cannot_start(settings: Settings, cluster: Cluster | None = None) -> str:
    """What this machine lacks to run a cluster (`cluster`, when given), and how to get it
    ('' when nothing)."""
    if os.geteuid() != 0:
        return "`ivr112 cluster up` makes network namespaces: run it as root"
    if not kamailio.BINARY.exists():
        return "Kamailio is not installed: `apt-get install kamailio` (Debian 12 ships 5.6)"
    if cluster is not None and cluster.edge_vip and not keepalived.BINARY.exists():
        return "keepalived is not installed (the edges' floating address): `apt-get install keepalived`"
    if not pg_available():
        return "PostgreSQL 15 is not installed: `apt-get install postgresql-15`"
    if not (settings.root_path / "usr/sbin/asterisk").exists():
        return f"no Asterisk root at {settings.root_path}: `ivr112 asterisk up` makes it (or set asterisk_root)"
    return ""


def _preflight(settings: Settings, cluster: Cluster) -> None:
    if why := cannot_start(settings, cluster):
        raise ConfigError(why)


def _db_up(cluster: Cluster, p: Paths) -> int:
    server = database(cluster, p)
    if not server.initialised:
        server.init()
        hba = server.data / "pg_hba.conf"
        # The nodes reach the store over the cluster's network, with the password.
        network = ipaddress.ip_interface(f"{cluster.host_address}/{cluster.prefix_len}").network
        hba.write_text(hba.read_text() + f"host all all {network} scram-sha-256\n")
    pid = server.adopt()
    if pid is None:
        server.start()
        pid = server.pid
    assert pid is not None
    with psycopg.connect(server.url_for("postgres"), autocommit=True, connect_timeout=10) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)).fetchone() is None:
            conn.execute(f'CREATE DATABASE "{DATABASE}"')
    with psycopg.connect(server.url_for(DATABASE), autocommit=True, connect_timeout=10) as conn:
        conn.execute(cel.CREATE_TABLE)  # before the nodes: cel_pgsql reads its columns when it loads
        conn.execute(cel.CREATE_INDEX)
    log.info("PostgreSQL up at %s:%d (pid %d)", cluster.database.address, cluster.database_port, pid)
    return pid


def _edge_up(settings: Settings, cluster: Cluster, p: Paths, edge: Part, plans: PlanSet) -> int:
    folder = p.edge_dir(edge)
    names = tuple(op.name for op in settings.operators)
    shared = load_or_create(nodes.shared_secrets(settings, p.state_dir).parent, names)
    cfg = kamailio.render(cluster, folder, plans, operators={n: shared.operator_password(n) for n in names}, edge=edge)
    kamailio.check(cfg, folder / "run")
    return start_edge(cluster, p, edge)


def start_edge(cluster: Cluster, p: Paths, edge: Part | None = None) -> int:
    """Start Kamailio in the edge's namespace (the config already rendered); return its pid."""
    edge = edge or cluster.edge
    folder = p.edge_dir(edge)
    with (folder / "kamailio.log").open("ab") as out:
        proc = subprocess.Popen([*netns.prefix(cluster, edge), *kamailio.command(folder / "kamailio.cfg", folder / "run")],
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    log.info("Kamailio %s at %s:%d (pid %d)", edge.name, edge.address, cluster.edge_sip_port, proc.pid)
    return proc.pid


def _vrrp_up(cluster: Cluster, p: Paths, state: dict[str, int]) -> None:
    """keepalived beside each edge's Kamailio (ari_app/cluster/keepalived.py), those not running."""
    secret = keepalived.password(p.state_dir)
    for edge in cluster.all_edges:
        key = f"vrrp-{edge.name}"
        if alive(state.get(key, 0) or -1):
            continue
        folder = p.edge_dir(edge)
        cfg = keepalived.render(cluster, edge, folder, secret=secret)
        keepalived.check(cfg)
        with (folder / "keepalived.log").open("ab") as out:
            proc = subprocess.Popen([*netns.prefix(cluster, edge), *keepalived.command(cfg)], stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
        state[key] = proc.pid
        _write_state(p, state)
        log.info("keepalived for %s (pid %d)", edge.name, proc.pid)


def wait_vip_held(cluster: Cluster, timeout: float = EDGE_READY_TIMEOUT_S) -> str:
    """Until exactly one edge holds the floating address; its name."""
    deadline = time.monotonic() + timeout
    while True:
        held = keepalived.holders(cluster)
        if len(held) == 1:
            return held[0]
        if time.monotonic() > deadline:
            raise ConfigError(f"the floating address {cluster.edge_vip} is held by {held or 'no edge'}, not by one; "
                              "see keepalived.log beside each edge's kamailio.log")
        time.sleep(POLL_S)


def start_node(settings: Settings, cluster: Cluster, node: Part, p: Paths, *, store_url: str, plans: list[str]) -> int:
    """Start `ivr112 run --with-asterisk` in the node's namespace; return its pid."""
    cfg = nodes.write_config(settings, cluster, node, p.state_dir, store_url=store_url, plans=plans)
    env = _node_env()
    cmd = [*netns.prefix(cluster, node), sys.executable, "-m", "ari_app.cli", "--config", str(cfg), "run", "--with-asterisk"]
    with (nodes.node_dir(p.state_dir, node) / "app.log").open("ab") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, cwd=PROJECT_DIR,
                                start_new_session=True)
    log.info("node %s at %s (pid %d)", node.name, node.address, proc.pid)
    return proc.pid


def start_watch(cluster: Cluster, node: Part, p: Paths) -> int:
    """Start `ivr112 cluster watch` in the node's namespace (it closes a lost node's calls)."""
    cmd = [*netns.prefix(cluster, node), sys.executable, "-m", "ari_app.cli", "--config", str(nodes.config_file(p.state_dir, node)),
           "cluster", "watch", "--cluster", str(cluster.source), "--nodes", str(len(cluster.nodes))]
    with (nodes.node_dir(p.state_dir, node) / "watch.log").open("ab") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=_node_env(), cwd=PROJECT_DIR,
                                start_new_session=True)
    return proc.pid


def _node_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IVR112_")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def health(node: Part, timeout: float = 2.0) -> dict[str, object] | None:
    """The node app's /health answer, or None when it does not answer."""
    url = f"http://{node.address}:{NODE_HTTP_PORT}/health"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as res:
            body: dict[str, object] = json.loads(res.read())
            return body
    except urllib.error.HTTPError as exc:
        with contextlib.suppress(ValueError):
            answer: dict[str, object] = json.loads(exc.read())
            return answer
        return None
    except (OSError, ValueError):
        return None


def wait_node_ready(cluster: Cluster, node: Part, p: Paths, pid: int) -> None:
    deadline = time.monotonic() + NODE_READY_TIMEOUT_S
    while True:
        h = health(node)
        if h is not None and h.get("ari_connected"):
            return
        if not alive(pid):
            raise ConfigError(f"node {node.name} stopped while starting; see {nodes.node_dir(p.state_dir, node) / 'app.log'}")
        if time.monotonic() > deadline:
            raise ConfigError(f"node {node.name} not ready in {NODE_READY_TIMEOUT_S:.0f} s (last /health: {h}); "
                              f"see {nodes.node_dir(p.state_dir, node) / 'app.log'}")
        time.sleep(POLL_S)


def wait_edge_sees(cluster: Cluster, p: Paths, up_addresses: set[str], timeout: float = EDGE_READY_TIMEOUT_S,
                   *, run_dir: Path | None = None) -> None:
    """Until the edge's dispatcher (the one edge's, or the one in `run_dir`) has exactly `up_addresses` up."""
    run_dir = run_dir or p.edge_run
    deadline = time.monotonic() + timeout
    while True:
        states = kamailio.node_states(run_dir)
        if {a for a, s in states.items() if s == "up"} == up_addresses:
            return
        if time.monotonic() > deadline:
            raise ConfigError(f"the edge sees {states or 'nothing'}, expected {sorted(up_addresses)} up; see {run_dir.parent / 'kamailio.log'}")
        time.sleep(POLL_S)


def stop_pid(pid: int, sig: signal.Signals = signal.SIGTERM, timeout: float = STOP_TIMEOUT_S) -> None:
    """Stop one process we started, by its pid: `sig`, then SIGKILL after `timeout`."""
    if not alive(pid):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
    deadline = time.monotonic() + timeout
    while alive(pid):
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            break
        time.sleep(POLL_S / 2)


def stop_group(pid: int, timeout: float = STOP_TIMEOUT_S) -> None:
    """Stop a process we started in its own session, then what is left of its group: Kamailio's
    workers outlive a main process killed alone, and keep its sockets."""
    stop_pid(pid, timeout=timeout)
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # ours when `up` ran in this process
        try:
            os.killpg(pid, signal.SIGTERM if time.monotonic() < deadline else signal.SIGKILL)
        except ProcessLookupError:
            return
        if time.monotonic() > deadline + timeout:
            log.warning("process group %d still there after SIGKILL; see `ps -g %d`", pid, pid)
            return
        time.sleep(POLL_S / 2)


def down(settings: Settings, cluster: Cluster) -> None:
    """Stop every part this machine started (by the pids kept at `up`), then the network."""
    p = paths(settings)
    state = read_state(p)
    for name in [k for k in state if k.startswith("watch-")]:
        stop_pid(state.pop(name))
    for node in cluster.nodes:
        if node.name in state:
            stop_pid(state.pop(node.name))  # the run stops its guard and its Asterisk
        # A run killed hard leaves its guard to stop its Asterisk; one still there goes now,
        # by its pid file (before its namespace is removed under it).
        process.stop(Layout(settings.root_path, cluster.instance(node)))
    for name in [k for k in state if k.startswith("node")]:
        stop_pid(state.pop(name))
    for edge in cluster.all_edges:
        if f"vrrp-{edge.name}" in state:
            stop_pid(state.pop(f"vrrp-{edge.name}"))  # first: it gives the floating address up
        if edge.name in state:
            stop_group(state.pop(edge.name))
    server = database(cluster, p)
    if server.adopt() is not None:
        server.stop()
    state.pop("db", None)
    _write_state(p, state)
    netns.down(cluster)


def status(settings: Settings, cluster: Cluster) -> list[str]:
    """One line per part: running or not, and what it says of itself."""
    p = paths(settings)
    state = read_state(p)
    held = keepalived.holders(cluster) if cluster.edge_vip else []
    seer = next((e for e in cluster.all_edges if e.name in held), cluster.edge)  # the edge calls go through
    edge_view = kamailio.node_states(p.edge_dir(seer) / "run") if alive(state.get(seer.name, 0) or -1) else {}
    lines = [_line("db", cluster.database, state), *_edge_lines(cluster, p, state)]
    for node in cluster.nodes:
        line = _line(node.name, node, state)
        h = health(node) if alive(state.get(node.name, 0) or -1) else None
        if h is not None:
            line += f"; app {h.get('status')}, ARI {'connected' if h.get('ari_connected') else 'away'}, store {h.get('store')}"
        line += f"; edge sees it {edge_view.get(node.address, 'unknown')}"
        lines.append(line)
    return lines


def _edge_lines(cluster: Cluster, p: Paths, state: dict[str, int]) -> list[str]:
    """One line per edge; with a floating address, which edge holds it and each keepalived."""
    if not cluster.edge_vip:
        return [_line("edge", cluster.edge, state)]
    held = keepalived.holders(cluster)
    lines = []
    for edge in cluster.all_edges:
        vrrp = state.get(f"vrrp-{edge.name}")
        line = _line(edge.name, edge, state)
        pid = state.get(edge.name, 0)
        if pid and not alive(pid) and _group_alive(pid):
            line += f"; its main process is gone but its workers run (`ps -g {pid}`)"
        line += f"; keepalived {f'running (pid {vrrp})' if vrrp and alive(vrrp) else 'stopped'}"
        line += f"; holds {cluster.edge_vip}" if edge.name in held else "; standby"
        lines.append(line)
    return lines


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _line(name: str, part: Part, state: dict[str, int]) -> str:
    pid = state.get(name)
    running = pid is not None and alive(pid)
    return f"{name:6} {part.address:15} {f'running (pid {pid})' if running else 'stopped'}"
