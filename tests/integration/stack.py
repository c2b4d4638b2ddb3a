"""A real stack for integration tests: Asterisk 22 in its root, the ivr112 app as its own
process, and SIPp as callers and operators. Every process is started here, its pid kept,
and stopped by that pid; each test session has its own instance name and free ports.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import trustme
import yaml

from ari_app.asterisk.layout import Layout
from ari_app.guard import app_connected
from ari_app.store import IncidentStore, open_store
from ivr.secrets import load_or_create
from ivr.settings import PROJECT_DIR, Settings, load_settings
from ivr.store import Incident, IncidentEvent, Recording, StoredLocation
from tests.support.net import free_media_port as free_media_port
from tests.support.net import free_port as free_port
from tests.support.plan import make_test_plan as make_test_plan
from tests.support.poll import wait_for as wait_for

SIPP_DIR = PROJECT_DIR / "tests" / "sipp"
SIPP = shutil.which("sipp") or "/usr/bin/sipp"
T = TypeVar("T")
DTMF_PCAP = "/usr/share/sip-tester/dtmf_2833_{digit}.pcap"


def stop_process(proc: subprocess.Popen[bytes], grace: float) -> None:
    """Stop one process we started, by its pid: SIGTERM, then SIGKILL after `grace` seconds."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    # A SIPp's output pipe left open is a ResourceWarning (an error here) in whichever test
    # the garbage collector happens to run.
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


def dtmf_pcap(digit: str, nth: int, workdir: Path) -> Path:
    """SIPp's RFC 2833 capture of `digit`, renumbered as the `nth` key of a call.

    The captures of different digits carry unrelated RTP sequence numbers and timestamps;
    replayed in one call, a later key can look older than the one before and Asterisk
    drops it. Each key here continues the numbering where the previous one stopped.
    """
    data = bytearray(Path(DTMF_PCAP.format(digit=digit)).read_bytes())
    offset = 24  # pcap global header; link type 1 (Ethernet)
    index = 0
    while offset < len(data):
        incl = struct.unpack_from("<I", data, offset + 8)[0]
        ip = offset + 16 + 14
        rtp = ip + (data[ip] & 0x0F) * 4 + 8
        struct.pack_into(">HI", data, rtp + 2, 1000 + nth * 100 + index, 8000 + nth * 16000)
        offset += 16 + incl
        index += 1
    path = workdir / f"dtmf_{nth}_{digit}.pcap"
    path.write_bytes(bytes(data))
    return path


def caller_scenario(workdir: Path, steps: Sequence[tuple[str, str]], scenario: str = "caller") -> Path:
    """A caller scenario with what the caller does after the answer: ("pause", ms),
    ("dtmf", digit) (an RFC 2833 digit from SIPp's own captures) or ("audio", pcap path)."""
    base = (SIPP_DIR / f"{scenario}.xml").read_text()
    actions = []
    keys = 0
    for kind, value in steps:
        if kind == "pause":
            actions.append(f'  <pause milliseconds="{int(value)}"/>')
        elif kind == "audio":
            actions.append(f'  <nop><action><exec play_pcap_audio="{value}"/></action></nop>')
        else:
            keys += 1
            actions.append(
                f'  <nop><action><exec play_pcap_audio="{dtmf_pcap(value, keys, workdir)}"/></action></nop>\n'
                '  <pause milliseconds="400"/>'
            )
    text = base.replace("  <pause/>", "\n".join(actions) + "\n  <pause/>")
    path = workdir / "caller_steps.xml"
    path.write_text(text)
    return path


def make_config(tmp: Path, instance: str, **overrides: Any) -> Path:
    """A settings file with free ports and a private data folder."""
    base = 20000 + (os.getpid() % 200) * 100
    values: dict[str, Any] = {
        "instance": instance,
        "data_dir": str(tmp / "data"),
        "sip_port": free_port(socket.SOCK_DGRAM),
        "ari_port": free_port(),
        "ami_port": free_port(),
        "hep_port": free_port(socket.SOCK_DGRAM),
        "http_port": free_port(),
        "aml_port": free_port(),
        "webrtc_port": free_port(),
        "rtp_start": base,
        "rtp_end": base + 99,
        "ari_reconnect_max": 1.0,
        "log_level": "DEBUG",
    }
    root = os.environ.get("IVR112_ASTERISK_ROOT")
    if root:
        values["asterisk_root"] = root
    values.update(overrides)
    path = tmp / "ivr112-test.yaml"
    path.write_text(yaml.safe_dump(values))
    return path


@dataclass
class Stack:
    config: Path
    settings: Settings
    tmp: Path
    plan_file: Path
    trunk_ports: dict[int, int]
    app_proc: subprocess.Popen[bytes] | None = None
    _sipp_procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    _next_sipp_port: int = 0
    _ca: trustme.CA | None = None

    @property
    def layout(self) -> Layout:
        return Layout(self.settings.root_path, self.settings.instance)

    @property
    def ca(self) -> trustme.CA:
        """A test certificate authority the app trusts (SSL_CERT_FILE), for HTTPS servers in tests."""
        if self._ca is None:
            self._ca = trustme.CA()
            self._ca.cert_pem.write_to_path(str(self.tmp / "test-ca.pem"))
        return self._ca

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("IVR112_")}
        env["PYTHONUNBUFFERED"] = "1"
        self.ca  # noqa: B018 - written before the app reads it
        env["SSL_CERT_FILE"] = str(self.tmp / "test-ca.pem")
        return env

    def ivr112(self, *args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "ari_app.cli", "--config", str(self.config), *args]
        res = subprocess.run(cmd, capture_output=True, text=True, env=self.env, cwd=PROJECT_DIR, timeout=timeout, check=False)
        if check and res.returncode != 0:
            raise AssertionError(f"ivr112 {' '.join(args)} failed ({res.returncode}):\n{res.stdout}\n{res.stderr}")
        return res

    # Asterisk ---------------------------------------------------------------------------

    def asterisk_up(self) -> None:
        self.ivr112("asterisk", "up")

    def asterisk_down(self) -> None:
        self.ivr112("asterisk", "down", check=False)

    def asterisk_cli(self, command: str) -> str:
        from ari_app.asterisk.process import cli

        return cli(self.layout, command).stdout

    def active_channels(self) -> int:
        """Asterisk's count of channels up now (-1 when it did not answer)."""
        for line in self.asterisk_cli("core show channels count").splitlines():
            if "active channel" in line:
                return int(line.split()[0])
        return -1

    def wait_no_channels(self, timeout: float = 30.0) -> None:
        """Until every leg of every call has hung up: a SIPp stopped earlier would leave
        Asterisk's BYE or CANCEL for a dialog of its own to the next SIPp on its port."""
        wait_for("Asterisk to have no channel", lambda: self.active_channels() == 0, timeout=timeout, interval=0.25)

    # The app ----------------------------------------------------------------------------

    @property
    def app_log(self) -> Path:
        return self.tmp / "app.log"

    def app_start(self) -> None:
        assert self.app_proc is None or self.app_proc.poll() is not None, "app already running"
        with self.app_log.open("ab") as log:
            self.app_proc = subprocess.Popen(
                [sys.executable, "-m", "ari_app.cli", "--config", str(self.config), "run"],
                stdout=log, stderr=subprocess.STDOUT, env=self.env, cwd=PROJECT_DIR, start_new_session=True,
            )
        wait_for("the app's ARI WebSocket to connect", lambda: self.health().get("ari_connected"), timeout=30)

    def app_stop(self, sig: int = signal.SIGTERM, *, settle: bool = True) -> None:
        """Stop the app by its pid; with `settle`, wait until Asterisk no longer lists its ARI
        application (a call still up keeps the app listed: at the stack's end, Asterisk is
        stopped next, so there is nothing to wait for)."""
        proc = self.app_proc
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(sig)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        self.app_proc = None
        if not settle:
            return
        # Asterisk must see the app gone before the next call, or Stasis() waits on it.
        wait_for("Asterisk to drop the app", lambda: not app_connected(self.asterisk_cli("ari show apps"), self.settings.app_name), timeout=10)

    def health(self) -> dict[str, Any]:
        url = f"http://{self.settings.http_host}:{self.settings.http_port}/health"
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                return dict(json.load(resp))
        except urllib.error.HTTPError as exc:
            return dict(json.load(exc))
        except (OSError, ValueError):
            return {}

    def api(self, path: str) -> Any:
        secrets = load_or_create(self.settings.data_path)
        req = urllib.request.Request(
            f"http://{self.settings.http_host}:{self.settings.http_port}{path}",
            headers={"Authorization": f"Bearer {secrets.console_secret}"},
        )
        with urllib.request.urlopen(req, timeout=5) as resp:
            return json.load(resp)

    def ari(self, path: str) -> Any:
        """GET Asterisk's own REST Interface (ARI), as the app's user."""
        from ari_app.ari.rest.transport import basic_auth
        from ari_app.asterisk.render import ARI_USER

        req = urllib.request.Request(f"http://{self.settings.ari_host}:{self.settings.ari_port}/ari{path}",
                                     headers={"Authorization": basic_auth(ARI_USER, load_or_create(self.settings.data_path).ari_password)})
        with urllib.request.urlopen(req, timeout=5) as resp:
            return json.load(resp)

    def agency_token(self, agency: str) -> str:
        return load_or_create(self.settings.data_path).agency_tokens[agency]

    def agency_get(self, url: str, token: str | None) -> tuple[int, str, bytes]:
        """GET a URL of the agencies' door (as the INVITE names it) with an agency's token:
        status, content type and body."""
        req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
        try:
            with urllib.request.urlopen(req, timeout=5) as resp:
                return resp.status, resp.headers.get_content_type(), resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.headers.get_content_type(), exc.read()

    def post(self, path: str, body: bytes, *, content_type: str, token: str | None = None) -> tuple[int, Any]:
        """POST to the app's HTTP side; returns status and JSON answer."""
        headers = {"Content-Type": content_type}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        req = urllib.request.Request(
            f"http://{self.settings.http_host}:{self.settings.http_port}{path}", data=body, headers=headers, method="POST"
        )
        try:
            with urllib.request.urlopen(req, timeout=5) as resp:
                return resp.status, json.load(resp)
        except urllib.error.HTTPError as exc:
            return exc.code, json.load(exc)

    def aml_post(self, body: bytes, *, token: str, cafile: Path, host: str = "127.0.0.1") -> tuple[int, Any]:
        """POST an AML form to the AML door over HTTPS as a carrier's gateway does: trusting only
        `cafile` and checking that the certificate names `host`."""
        import http.client
        import ssl

        context = ssl.create_default_context(cafile=str(cafile))
        conn = http.client.HTTPSConnection(host, self.settings.aml_port, context=context, timeout=5)
        try:
            conn.request("POST", "/aml", body, {"Content-Type": "application/x-www-form-urlencoded", "Authorization": f"Bearer {token}"})
            resp = conn.getresponse()
            return resp.status, json.load(resp)
        finally:
            conn.close()

    def console(self, path: str, form: dict[str, str] | None = None) -> tuple[int, Any]:
        """POST a form to the app's API as the console does (bearer console secret)."""
        import urllib.parse

        token = load_or_create(self.settings.data_path).console_secret
        body = urllib.parse.urlencode(form or {}).encode()
        return self.post(path, body, content_type="application/x-www-form-urlencoded", token=token)

    def metrics(self) -> dict[str, float]:
        """The app's Prometheus figures, by sample: 'name' or 'name{label="value"}'."""
        from prometheus_client.parser import text_string_to_metric_families

        secrets = load_or_create(self.settings.data_path)
        req = urllib.request.Request(
            f"http://{self.settings.http_host}:{self.settings.http_port}/metrics",
            headers={"Authorization": f"Bearer {secrets.console_secret}"},
        )
        with urllib.request.urlopen(req, timeout=5) as resp:
            text = resp.read().decode()
        out: dict[str, float] = {}
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
                out[f"{s.name}{{{labels}}}" if labels else s.name] = s.value
        return out

    def board(self) -> dict[str, dict[str, Any]]:
        """The operators' live view from the API, by name."""
        return {o["name"]: o for o in self.api("/api/operators")["operators"]}

    def aml_token(self, gateway: str = "lokal") -> str:
        return load_or_create(self.settings.data_path, (), (gateway,)).aml_token(gateway)

    def locations(self, incident_id: int) -> list[StoredLocation]:
        return self.read(lambda store: store.locations(incident_id))

    def recordings(self, incident_id: int) -> list[Recording]:
        return self.read(lambda store: store.recordings(incident_id))

    # The store (read straight from SQLite or PostgreSQL, as a supervisor's report would) --

    def read(self, query: Callable[[IncidentStore], T]) -> T:
        """One look at the store, as a supervisor's report would take it (straight from the store_url's engine)."""
        store = open_store(self.settings.data_path, self.settings.store_url)
        try:
            return query(store)
        finally:
            store.close()

    def incidents(self) -> list[Incident]:
        return self.read(lambda store: store.recent(500))

    def incident_for(self, caller: str) -> Incident | None:
        return next((i for i in self.incidents() if i.caller_number == caller), None)

    def incident_events(self, incident_id: int) -> list[IncidentEvent]:
        return self.read(lambda store: store.events(incident_id))

    # SIPp -------------------------------------------------------------------------------

    def sipp_port(self) -> int:
        return free_port(socket.SOCK_DGRAM)

    def sipp(self, scenario: str, *args: str, port: int | None = None, background: bool = False,
             timeout: float = 60, steps: Sequence[tuple[str, str]] = (), calls: int = 1, target: str = "",
             local_ip: str = "127.0.0.1") -> Sipp:
        """Run SIPp with a scenario from tests/sipp against this stack's SIP port (or `target`, host:port).

        `steps` (for the caller) adds what the caller does after the answer; `local_ip` is
        the address SIPp sends from (another loopback address: another carrier).
        """
        port = port or self.sipp_port()
        workdir = self.tmp / f"sipp-{scenario}-{port}-{time.monotonic_ns()}"
        workdir.mkdir()
        file = caller_scenario(workdir, steps, scenario) if steps else SIPP_DIR / f"{scenario}.xml"
        media = free_media_port()
        cmd = [
            SIPP, target or f"{self.settings.sip_host}:{self.settings.sip_port}", "-sf", str(file),
            "-i", local_ip, "-p", str(port), "-mp", str(media),
            "-m", str(calls), "-nostdin", "-timeout", f"{int(timeout)}s", "-timeout_error",
            "-trace_err", "-trace_logs", "-trace_msg", *args,
        ]
        proc = subprocess.Popen(cmd, cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self._sipp_procs.append(proc)
        sipp = Sipp(scenario, proc, workdir, port, timeout, media_port=media)
        if not background:
            sipp.wait()
        return sipp

    def operator_password(self, name: str) -> str:
        return load_or_create(self.settings.data_path, (name,)).operator_password(name)

    def register_operator(self, name: str, port: int, *, login: bool = True) -> None:
        """A SIPp softphone registers as operator `name` on `port`; `login` also puts the
        operator in the queues (through the app's command, as a supervisor would)."""
        password = load_or_create(self.settings.data_path, (name,)).operator_password(name)
        reg = self.sipp("operator_register", "-key", "operator", name, "-au", name, "-ap", password, port=port, timeout=15)
        assert reg.returncode == 0, reg.report()
        if login:
            self.ivr112("operators", "login", name)
            wait_for(f"{name} in the queue", lambda: name in self.queue_members())

    def queue_members(self) -> list[str]:
        """Operators app_queue holds as members of the default plan's queue, from Asterisk itself."""
        return [name for name, _ in self._members()]

    def _members(self) -> list[tuple[str, str]]:
        """(operator, interface) of each member: PJSIP/<name> for a softphone, PJSIP/<name>.web for the browser phone."""
        text = self.asterisk_cli("queue show kotim-operators")
        return re.findall(r"^\s+(\S+) \((PJSIP/[^)\s]+)\)", text, flags=re.MULTILINE)

    def clear_queues(self) -> None:
        """Every operator out of every queue (straight in Asterisk), so each test starts alike."""
        for _, interface in self._members():
            self.asterisk_cli(f"queue remove member {interface} from kotim-operators")

    # The guard (ivr112 guard --asterisk) --------------------------------------------------

    @property
    def guard_log(self) -> Path:
        return self.tmp / "guard.log"

    def guard_start(self) -> subprocess.Popen[bytes]:
        with self.guard_log.open("ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "ari_app.cli", "--config", str(self.config), "guard", "--asterisk"],
                stdout=log, stderr=subprocess.STDOUT, env=self.env, cwd=PROJECT_DIR, start_new_session=True,
            )
        wait_for("the guard to start watching", lambda: "guard: watching" in self.guard_log.read_text(), timeout=20)
        return proc

    @staticmethod
    def guard_stop(proc: subprocess.Popen[bytes]) -> None:
        stop_process(proc, grace=10)

    def stop_all_sipp(self) -> None:
        for proc in self._sipp_procs:
            stop_process(proc, grace=5)
        self._sipp_procs.clear()

    def dump_logs(self, out: Callable[[str], None] = print, lines: int = 80) -> None:
        for path in (self.app_log, self.layout.messages_log):
            if path.exists():
                tail = path.read_text(errors="replace").splitlines()[-lines:]
                out(f"----- last {len(tail)} lines of {path} -----\n" + "\n".join(tail))


@dataclass
class Sipp:
    scenario: str
    proc: subprocess.Popen[bytes]
    workdir: Path
    port: int
    timeout: float
    output: str = ""
    media_port: int = 0  # where its RTP arrives (tests.integration.media.Ear listens there)

    def wait(self) -> int:
        try:
            out, _ = self.proc.communicate(timeout=self.timeout + 15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
        self.output = out.decode(errors="replace")
        return self.returncode

    @property
    def returncode(self) -> int:
        rc = self.proc.returncode
        assert rc is not None, "SIPp still running"
        return rc

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.workdir.glob("*_logs.log")))

    def messages(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.workdir.glob("*_messages.log")))

    def report(self) -> str:
        errors = "\n".join(p.read_text(errors="replace") for p in sorted(self.workdir.glob("*_errors.log")))
        return f"SIPp {self.scenario} exit {self.proc.returncode}\n{self.output[-2000:]}\n{errors[-3000:]}"


def sipp_args(*pairs: tuple[str, str]) -> Sequence[str]:
    out: list[str] = []
    for key, value in pairs:
        out += ["-key", key, value]
    return out


def start_stack(tmp: Path, instance: str, *, plan_changes: Mapping[str, object] = {},
                more_plans: Callable[[Path], Sequence[Path]] | None = None, **overrides: Any) -> Stack:
    """A stack's files (the test plan with `plan_changes`, then the plans `more_plans` writes
    into the stack's folder; settings with `overrides`), nothing started yet."""
    plan_file, ports = make_test_plan(tmp, plan_changes)
    extra = [str(p) for p in more_plans(tmp)] if more_plans else []
    config = make_config(tmp, instance, plans=[str(plan_file), *extra], **overrides)
    return Stack(config=config, settings=load_settings(config), tmp=tmp, plan_file=plan_file, trunk_ports=ports)
