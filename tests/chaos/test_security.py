"""The security check (issue 7): with the stack running, every socket the Asterisk and app
processes listen on is on loopback, each demands its authentication (shown by refusing a
stranger and a wrong secret), and no generated secret is written to a log.

The table of ports and their authentication is printed (`pytest -s` shows it).
"""

from __future__ import annotations

import os
import socket
import ssl
import time
import urllib.error
import urllib.request
from base64 import b64encode
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from ari_app.asterisk.process import read_pid
from ari_app.asterisk.render import AMI_USER, ARI_USER
from ivr.secrets import load_or_create
from tests.integration.stack import Stack, sipp_args, wait_for

pytestmark = pytest.mark.asterisk

Record = Callable[[str, object], None]  # pytest's record_property


def _count(record_property: Record, line: str) -> None:
    """What a test broke and counted: printed, and kept for the suite's summary."""
    print("\n" + line)
    record_property("chaos", line)

LOOPBACK = {"127.0.0.1", "::1"}
WILDCARD = {"0.0.0.0", "::"}
# res_pjsip creates pjproject's DNS resolver from the root's /etc/resolv.conf: one UDP socket
# per address family on the wildcard address and a random port, which takes only answers to
# its own queries. It is not a service, but it is not on loopback either: an empty
# resolv.conf in the Asterisk root (trunks and carriers given as addresses) removes it.
DNS_CLIENT = "pjproject's DNS resolver (client: answers to its own queries only) - NOT on loopback"
# res_hep sends its HEP3 copies (hep.conf) from an unbound UDP socket: the kernel gives it the
# wildcard address and a random port on the first send to 127.0.0.1:hep_port. Asterisk never
# reads from it (hep.conf has no source address option): one more IPv4 client socket.
HEP_SENDERS = 1
TCP_LISTEN, UDP_UNCONNECTED = "0A", "07"


@dataclass(frozen=True)
class Listening:
    process: str
    pid: int
    proto: str  # tcp, tcp6, udp, udp6
    address: str
    port: int


def _descendants(pid: int) -> list[int]:
    """`pid` and every process under it (Asterisk may run under sudo, chroot is exec'd)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def _address(hex_addr: str) -> tuple[str, int]:
    host, port = hex_addr.split(":")
    raw = bytes.fromhex(host)
    if len(raw) == 4:
        return socket.inet_ntop(socket.AF_INET, raw[::-1]), int(port, 16)
    # /proc prints IPv6 as four little-endian 32-bit words
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
    return socket.inet_ntop(socket.AF_INET6, words), int(port, 16)


def listening_sockets(name: str, pid: int) -> list[Listening]:
    """What `pid` (and its children) listens on: TCP in LISTEN, UDP bound and not connected,
    matched by socket inode between /proc/<pid>/fd and /proc/<pid>/net/*."""
    found: list[Listening] = []
    for p in _descendants(pid):
        try:
            inodes = {os.readlink(f"/proc/{p}/fd/{fd}")[8:-1] for fd in os.listdir(f"/proc/{p}/fd")
                      if os.readlink(f"/proc/{p}/fd/{fd}").startswith("socket:[")}
        except OSError:
            continue  # gone, or not ours to read
        for proto in ("tcp", "tcp6", "udp", "udp6"):
            try:
                lines = Path(f"/proc/{p}/net/{proto}").read_text().splitlines()[1:]
            except OSError:
                continue
            for line in lines:
                cols = line.split()
                local, remote, state, inode = cols[1], cols[2], cols[3], cols[9]
                if inode not in inodes:
                    continue
                listening = state == TCP_LISTEN if proto.startswith("tcp") else state == UDP_UNCONNECTED and remote.strip("0:") == ""
                if listening:
                    address, port = _address(local)
                    found.append(Listening(name, p, proto, address, port))
    return sorted(set(found), key=lambda s: (s.process, s.proto, s.port))


def _http(url: str, headers: dict[str, str] | None = None, data: bytes | None = None, *, cafile: Path | None = None) -> int:
    req = urllib.request.Request(url, headers=headers or {}, data=data, method="POST" if data is not None else "GET")
    context = ssl.create_default_context(cafile=str(cafile)) if cafile is not None else None
    try:
        with urllib.request.urlopen(req, timeout=10, context=context) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        exc.close()
        return int(exc.code)


def _basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + b64encode(f"{user}:{password}".encode()).decode()}


def _ami_login(host: str, port: int, user: str, secret: str) -> str:
    """The AMI's answer to a login: the Response and Message lines."""
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.settimeout(10)
        sock.recv(1024)  # banner
        sock.sendall(f"Action: Login\r\nUsername: {user}\r\nSecret: {secret}\r\n\r\n".encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    return " ".join(line for line in data.decode(errors="replace").splitlines() if line.startswith(("Response", "Message")))


def _sip_invite(host: str, port: int, user: str, to: str) -> str:
    """Send one INVITE from 127.0.0.3 claiming to be `user`; the first final response line."""
    call_id = f"sec-{time.monotonic_ns()}@127.0.0.3"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.3", 0))
        sock.settimeout(5)
        local = sock.getsockname()[1]
        msg = (f"INVITE sip:{to}@{host}:{port} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.3:{local};branch=z9hG4bK{time.monotonic_ns()}\r\n"
               f"From: <sip:{user}@{host}>;tag=sec\r\nTo: <sip:{to}@{host}>\r\nCall-ID: {call_id}\r\nCSeq: 1 INVITE\r\n"
               f"Contact: <sip:{user}@127.0.0.3:{local}>\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n")
        sock.sendto(msg.encode(), (host, port))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            reply = sock.recv(65535).decode(errors="replace")
            status = reply.split("\r\n", 1)[0]
            if not status.startswith("SIP/2.0 1"):
                code = status.split()[1]
                if code >= "300":  # answer the final response as a phone would
                    sock.sendto((f"ACK sip:{to}@{host}:{port} SIP/2.0\r\n" + msg.split("\r\n", 1)[1].replace("CSeq: 1 INVITE", "CSeq: 1 ACK")).encode(),
                                (host, port))
                return status
    return "no answer"


def test_every_listening_socket_is_on_loopback_and_demands_its_authentication(broken: Stack, record_property: Record) -> None:
    s = broken
    cfg = s.settings
    secrets = load_or_create(cfg.data_path, ("operator1",), ("lokal",))
    asterisk_pid = read_pid(s.layout)
    assert asterisk_pid is not None and s.app_proc is not None
    # A call in progress, so that its media (RTP) sockets are listed too.
    caller = "081299900002"
    call = s.sipp("caller", *sipp_args(("caller", caller)), "-s", "112", "-d", "6000", background=True, timeout=30)
    wait_for("the call to be answered", lambda: (i := s.incident_for(caller)) and i.answered_at)
    sockets = listening_sockets("asterisk", asterisk_pid) + listening_sockets("ivr112 app", s.app_proc.pid)
    assert call.wait() == 0, call.report()
    assert sockets, "found no listening socket at all: /proc not readable?"

    http = f"http://{cfg.http_host}:{cfg.http_port}"
    ari = f"http://{cfg.ari_host}:{cfg.ari_port}/ari/asterisk/info"
    auth: dict[tuple[str, int], str] = {}

    # ARI: HTTP basic auth
    none, wrong, right = _http(ari), _http(ari, _basic(ARI_USER, "wrong")), _http(ari, _basic(ARI_USER, secrets.ari_password))
    assert (none, wrong, right) == (401, 401, 200)
    auth[("tcp", cfg.ari_port)] = f"ARI: HTTP basic; none -> {none}, wrong password -> {wrong}, right -> {right}"

    # AMI: login with a secret
    refused = _ami_login(cfg.ami_host, cfg.ami_port, AMI_USER, "wrong")
    stranger = _ami_login(cfg.ami_host, cfg.ami_port, "admin", "admin")
    assert "Error" in refused and "Authentication failed" in refused and "Error" in stranger
    auth[("tcp", cfg.ami_port)] = f"AMI: login; wrong secret -> '{refused}', admin/admin -> '{stranger}'"

    # The app's HTTP side
    api = _http(f"{http}/api/operators")
    api_wrong = _http(f"{http}/api/operators", {"Authorization": "Bearer wrong"})
    api_right = _http(f"{http}/api/operators", {"Authorization": f"Bearer {secrets.console_secret}"})
    metrics = _http(f"{http}/metrics")
    metrics_right = _http(f"{http}/metrics", {"Authorization": f"Bearer {secrets.console_secret}"})
    aml = _http(f"{http}/aml", {"Content-Type": "application/x-www-form-urlencoded"}, b"location_latitude=1")
    aml_wrong = _http(f"{http}/aml", {"Content-Type": "application/x-www-form-urlencoded", "Authorization": "Bearer wrong"}, b"x=1")
    console = _http(f"{http}/console/login", {"Content-Type": "application/x-www-form-urlencoded"}, b"name=operator1&password=wrong")
    assert (api, api_wrong, api_right) == (401, 401, 200)
    assert metrics in (401, 404) and metrics_right in (200, 404)  # 404: /metrics not there (yet)
    assert metrics == 404 or metrics_right == 200
    assert (aml, aml_wrong, console) == (401, 401, 401)
    assert _http(f"{http}/health") in (200, 503)
    auth[("tcp", cfg.http_port)] = (f"app HTTP: /api/* none -> {api}, wrong bearer -> {api_wrong}, console secret -> {api_right}; "
                                    f"/metrics none -> {metrics}, bearer -> {metrics_right}; /aml (this machine only) no token -> {aml}, wrong -> {aml_wrong}; "
                                    f"/console/login wrong password -> {console}; /health open (no caller data)")

    # The AML door: HTTPS only (the certificate `ivr112 aml door` hands to carriers), then the gateway token
    door = f"https://127.0.0.1:{cfg.aml_port}/aml"
    door_ca = cfg.data_path / "tls" / "aml-ca.pem"
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    door_none, door_wrong = _http(door, form, b"location_latitude=1", cafile=door_ca), _http(door, {**form, "Authorization": "Bearer wrong"}, b"x=1", cafile=door_ca)
    try:
        door_plain = str(_http(door.replace("https:", "http:"), form, b"x=1"))
    except (urllib.error.URLError, ConnectionError) as exc:
        door_plain = f"no HTTP answer ({type(getattr(exc, 'reason', exc)).__name__})"
    assert (door_none, door_wrong) == (401, 401) and door_plain.startswith("no HTTP answer"), (door_none, door_wrong, door_plain)
    auth[("tcp", cfg.aml_port)] = (f"AML door: TLS 1.2+, then gateway token; no token -> {door_none}, wrong -> {door_wrong}, "
                                   f"plain HTTP -> {door_plain}")

    # Asterisk's TLS side (browser phones' SIP over wss): the same HTTP server as ARI, so
    # ARI there asks for its password too; the WebSocket's SIP REGISTER needs the operator's
    # generated browser-phone password (PJSIP digest, as on UDP).
    if cfg.webrtc_port:
        tls_ari = f"https://{cfg.webrtc_host}:{cfg.webrtc_port}/ari/asterisk/info"
        operators_ca = cfg.data_path / "tls" / "operators-ca.pem"
        tls_none, tls_wrong = _http(tls_ari, cafile=operators_ca), _http(tls_ari, _basic(ARI_USER, "wrong"), cafile=operators_ca)
        assert (tls_none, tls_wrong) == (401, 401), (tls_none, tls_wrong)
        auth[("tcp", cfg.webrtc_port)] = (f"Asterisk TLS (wss for browser phones): TLS with the operators' CA; ARI there none -> "
                                          f"{tls_none}, wrong -> {tls_wrong}; SIP REGISTER over wss: operator's generated password (digest)")

    # SIP: strangers on loopback are the placeholder carrier (127.0.0.0/8): they reach the
    # service numbers only; a name of an operator must authenticate.
    operator_number = _sip_invite(cfg.sip_host, cfg.sip_port, "operator1", "*11")
    refused_call = s.sipp("caller_refused", *sipp_args(("caller", "081299900001")), "-s", "0062215550100", timeout=20)
    assert operator_number.startswith("SIP/2.0 401"), operator_number
    assert refused_call.returncode == 0, refused_call.report()
    auth[("udp", cfg.sip_port)] = (f"SIP: INVITE as operator1 without credentials -> '{operator_number}'; "
                                   f"a carrier address calling a number the plan does not serve -> 404")

    # The app's HEP capture (Asterisk's copies of the INVITEs): a packet without the capture password is skipped
    invite = b"INVITE sip:112@127.0.0.1 SIP/2.0\r\nCall-ID: security-probe@stranger\r\n\r\n"
    forged = b"HEP3" + (6 + 6 + len(invite)).to_bytes(2, "big") + b"\0\0\0\x0f" + (6 + len(invite)).to_bytes(2, "big") + invite
    log_start = s.app_log.stat().st_size
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as hep:
        hep.sendto(forged, ("127.0.0.1", cfg.hep_port))
    wait_for("the app to skip the forged HEP packet",
             lambda: "capture password missing or wrong" in s.app_log.read_bytes()[log_start:].decode(errors="replace"), timeout=10)
    auth[("udp", cfg.hep_port)] = "app HEP capture: capture password; a packet without it -> skipped (logged)"

    rows = []
    for sock in sockets:
        what = auth.get((sock.proto.rstrip("6"), sock.port), "")
        if not what and sock.process == "asterisk" and sock.proto.startswith("udp") and cfg.rtp_start <= sock.port <= cfg.rtp_end + 1:
            what = "RTP of the call in progress (media only, SIP-negotiated ports)"
        elif not what and sock.process == "asterisk" and sock.proto.startswith("udp") and sock.address in WILDCARD:
            what = DNS_CLIENT
        rows.append((sock, what))
    print("\n[security] listening sockets of Asterisk and the app\n" + "process     pid     proto  address          port   authentication\n"
          + "\n".join(f"{k.process:<11} {k.pid:<7} {k.proto:<6} {k.address:<16} {k.port:<6} {what or 'NONE KNOWN'}" for k, what in rows))
    off_loopback = [k for k, what in rows if k.address not in LOOPBACK and what != DNS_CLIENT]
    dns = [k for k, what in rows if what == DNS_CLIENT]
    assert len(dns) <= 2 + HEP_SENDERS, (f"more wildcard UDP sockets than pjproject's resolver (one IPv4, one IPv6) "
                                         f"and res_hep's sender open: {dns}")
    _count(record_property, f"[security] {len(sockets)} listening sockets of Asterisk and the app "
           f"({', '.join(sorted({f'{k.proto}/{k.port}' for k in sockets}))}): {len(off_loopback)} off loopback "
           f"(besides {len(dns)} DNS client socket(s) of pjproject on the wildcard address), "
           f"{len([k for k, what in rows if not what])} without a known authentication")
    assert off_loopback == []
    assert [k for k, what in rows if not what] == [], "a listening socket whose authentication this test does not know"


def test_no_generated_secret_is_written_to_any_log(broken: Stack, record_property: Record) -> None:
    """Runs after the others in this session (and the fuzzing, which sends wrong ones): every
    generated secret is looked for in the app's log and all of Asterisk's logs."""
    s = broken
    secrets = load_or_create(s.settings.data_path)
    named = {"ari_password": secrets.ari_password, "ami_secret": secrets.ami_secret, "console_secret": secrets.console_secret,
             "hep_password": secrets.hep_password,
             **{f"operator password {k}": v for k, v in secrets.operator_passwords.items()},
             **{f"AML token {k}": v for k, v in secrets.aml_tokens.items()}}
    logs = [s.app_log, *sorted(s.layout.host(s.layout.log).glob("*"))]
    leaks = []
    for path in logs:
        if path.is_file():
            text = path.read_bytes()
            leaks += [f"{what} in {path}" for what, value in named.items() if value and value.encode() in text]
    _count(record_property, f"[security] {len(named)} secrets looked for in {len([p for p in logs if p.is_file()])} logs "
          f"({', '.join(p.name for p in logs if p.is_file())}): {len(leaks)} found")
    assert leaks == []
