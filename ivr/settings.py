"""Service settings: one table of name, default and help, read from `config/ivr112.yaml`,
then `--config FILE`, then `IVR112_<NAME>` environment variables (last one wins).

Secrets are not settings: they are generated on first run into the data folder
(see `ivr.secrets`), so no password ever ships with the code.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ivr.errors import ConfigError

PROJECT_DIR = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = PROJECT_DIR / "config" / "ivr112.yaml"
ENV_PREFIX = "IVR112_"


def _setting(default: Any, help: str) -> Any:
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class Operator:
    """An operator account: a PJSIP endpoint a softphone registers as."""

    name: str
    full_name: str = ""
    languages: tuple[str, ...] = ("id",)
    plan: str = ""  # the plan (regency) whose queues and codes are the operator's; "": every plan's


@dataclass(frozen=True)
class AmlGateway:
    """A sender of Advanced Mobile Location messages (a carrier's AML/ELS endpoint or an SMS
    gateway). It proves itself with its generated token, or by sending from one of its addresses."""

    name: str
    addresses: tuple[str, ...] = ()


@dataclass(frozen=True)
class Settings:
    """Every setting of the service. `ivr112 settings` prints this table."""

    plans: tuple[str, ...] = _setting(
        ("dialplans/kotim.yaml",),
        "The YAML plans served side by side (list; comma-separated in the environment); the first is the default.",
    )
    data_dir: str = _setting("var", "Folder for the SQLite store, generated secrets and logs (created if missing).")
    store_url: str = _setting(
        "",
        "Where the store of every call's record is: empty or sqlite:///PATH is the embedded SQLite file (<data_dir>/ivr112.sqlite when empty); "
        "postgresql://USER:PASSWORD@HOST:PORT/DB is a PostgreSQL 15 server that several app nodes can share.",
    )
    store_backlog: int = _setting(
        100000, "Most writes kept (in memory and in <data_dir>/store-spool.jsonl) while the store is down; more are dropped, loudly."
    )
    asterisk_root: str = _setting(".cache/asterisk-root", "Debian sid root file system that holds Asterisk 22 (made on first `ivr112 asterisk up`).")
    instance: str = _setting("default", "Name of this Asterisk instance inside the root; tests use their own so they never clash with `make run`.")
    node_name: str = _setting(
        "", "This call node's name in a cluster (docs/cluster.md): Asterisk's systemname, so every channel id, and so every "
        "incident, says which node it was on; empty on a single machine."
    )
    sip_edges: tuple[str, ...] = _setting(
        (), "On a cluster's call node, the addresses its SIP edges send from (each edge's own, and their floating address; "
        "list; comma-separated in the environment; docs/cluster.md): carriers' calls and texts are taken from these (and "
        "each carrier's own networks) only, "
        "each carrier known by the edges' X-Ivr112-Carrier header; empty on a single machine (carriers known by their own address)."
    )
    sip_host: str = _setting("127.0.0.1", "Address the SIP (UDP) transport for carriers and softphones binds to.")
    sip_port: int = _setting(5060, "UDP port of the SIP transport.")
    sip_edge: str = _setting(
        "", "HOST:PORT of the cluster's SIP edge (Kamailio, docs/cluster.md) where the operators' softphones register; this node "
        "reaches them through it. Empty: softphones register at this Asterisk (a single machine)."
    )
    queue_nodes: tuple[str, ...] = _setting(
        (), "SIP addresses (HOST:PORT) of the call node holding the plans' operators' queues, then its standby (list; "
        "comma-separated in the environment): a caller on another node is sent there (docs/cluster.md). Empty: the queues are here."
    )
    ari_host: str = _setting("127.0.0.1", "Address of Asterisk's HTTP server (ARI).")
    ari_port: int = _setting(8088, "Port of Asterisk's HTTP server (ARI).")
    ami_host: str = _setting("127.0.0.1", "Address Asterisk's manager interface (AMI) binds to.")
    ami_port: int = _setting(5038, "Port of Asterisk's manager interface (AMI).")
    hep_port: int = _setting(
        5039, "UDP port on 127.0.0.1 where the app receives Asterisk's HEP3 copy of the SIP messages (it reads PIDF-LO from the INVITEs)."
    )
    http_host: str = _setting("127.0.0.1", "Address of the app's web console and HTTP endpoints.")
    http_port: int = _setting(8112, "Port of the app's web console and HTTP endpoints.")
    aml_host: str = _setting(
        "127.0.0.1", "Address the AML door (HTTPS only, TLS 1.2+) listens on; set it to an address the carriers' AML gateways can reach."
    )
    aml_port: int = _setting(8113, "Port of the AML door (HTTPS): the carriers' gateways POST to https://HOST:PORT/aml.")
    aml_tls_cert: str = _setting(
        "", "PEM certificate (then its intermediates) of the AML door; empty: one made on first run under <data_dir>/tls/ by a local CA."
    )
    aml_tls_key: str = _setting("", "PEM private key (unencrypted) of aml_tls_cert; give both or neither.")
    aml_tls_names: tuple[str, ...] = _setting(
        (),
        "Host names and addresses the made AML certificate is for (list; comma-separated in the environment); "
        "empty: aml_host (unless a wildcard), this machine's name, localhost and 127.0.0.1.",
    )
    console_host: str = _setting(
        "", "Address the console's HTTPS listener binds to, for the operators' PCs on the LAN (0.0.0.0: every address); empty: none."
    )
    console_port: int = _setting(8443, "Port of the console's HTTPS listener: operators open https://HOST:PORT/.")
    console_tls_cert: str = _setting(
        "", "PEM certificate (then its intermediates) of the console's HTTPS listener; empty: one made on first run under <data_dir>/tls/ by a local CA."
    )
    console_tls_key: str = _setting("", "PEM private key (unencrypted) of console_tls_cert; give both or neither.")
    console_tls_names: tuple[str, ...] = _setting(
        (),
        "Host names and addresses the made console certificate is for (list; comma-separated in the environment); "
        "empty: console_host (unless a wildcard), this machine's name, localhost and 127.0.0.1.",
    )
    operators_lan: tuple[str, ...] = _setting(
        (),
        "Networks (address/prefix) of the operators' PCs and softphones (list; comma-separated in the environment): "
        "`ivr112 firewall` lets SIP, the console's HTTPS and the browser phone in from them.",
    )
    login_failures_account: int = _setting(5, "Wrong console passwords for one account that lock it for login_lockout_minutes.")
    login_failures_address: int = _setting(20, "Wrong console passwords from one address that lock that address for login_lockout_minutes.")
    login_lockout_minutes: float = _setting(
        15.0, "Minutes a console lock-out lasts (a supervisor can lift it sooner); failures older than this are forgotten."
    )
    webrtc_port: int = _setting(
        8089, "Port of Asterisk's TLS HTTP server that carries the browser phones' secure WebSocket (wss://HOST:PORT/ws); 0: no browser phone."
    )
    webrtc_host: str = _setting(
        "127.0.0.1", "Address of that TLS server; set it to an address the operators' PCs reach (the console hands the page wss://webrtc_host:webrtc_port/ws)."
    )
    webrtc_tls_cert: str = _setting(
        "", "PEM certificate (then its intermediates) of the browser phones' WebSocket; empty: one made on first run by the operators' local CA."
    )
    webrtc_tls_key: str = _setting("", "PEM private key (unencrypted) of webrtc_tls_cert; give both or neither.")
    webrtc_tls_names: tuple[str, ...] = _setting(
        (),
        "Host names and addresses the made WebSocket certificate is for (list; comma-separated in the environment); "
        "empty: webrtc_host (unless a wildcard), this machine's name, localhost and 127.0.0.1.",
    )
    app_name: str = _setting("ivr112", "Name of the ARI application that `Stasis()` hands 112 calls to.")
    ari_request_timeout: float = _setting(5.0, "Seconds before an ARI REST request is given up.")
    ari_reconnect_min: float = _setting(0.2, "First wait, in seconds, before reconnecting a dropped ARI WebSocket.")
    ari_reconnect_max: float = _setting(5.0, "Longest wait, in seconds, between ARI reconnect attempts.")
    asterisk_boot_timeout: float = _setting(60.0, "Seconds to wait for Asterisk to be fully booted.")
    rtp_start: int = _setting(10000, "First UDP port Asterisk uses for RTP media.")
    rtp_end: int = _setting(10999, "Last UDP port Asterisk uses for RTP media.")
    log_level: str = _setting("INFO", "Logging level of the app: DEBUG, INFO, WARNING or ERROR.")
    operators: tuple[Operator, ...] = _setting((), "Operator accounts (list of name, full_name, languages, plan); only in YAML, not in the environment.")
    aml_gateways: tuple[AmlGateway, ...] = _setting(
        (), "AML senders (list of name, addresses); each gets a generated token (`ivr112 aml token NAME`); only in YAML."
    )
    supervisors: tuple[str, ...] = _setting(
        ("supervisor1",),
        "Names of the console's supervisor accounts (list; comma-separated in the environment); operators log in to the console with their operator name.",
    )
    supervisor_plans: tuple[str, ...] = _setting(
        (),
        "Supervisors who watch one plan (regency) only, as NAME=PLAN_ID (list; comma-separated in the environment); "
        "a supervisor not listed is provincial and sees every plan served.",
    )
    guard_grace: float = _setting(
        5.0, "Seconds the guard lets the app be away (not connected, or not answering) before it sends the app's callers to the operators."
    )
    guard_interval: float = _setting(1.0, "Seconds between two looks of the guard (`ivr112 guard`).")
    aml_rate_per_minute: int = _setting(120, "Most AML messages one gateway may send per minute; more are answered 429.")
    sms_gateway_url: str = _setting(
        "", "The carrier's SMS gateway API that takes the texts' replies (POST form to, from, text); empty: SMS replies wait in the outbox."
    )
    sms_gateway_token: str = _setting("", "Bearer token the SMS gateway asks of us, if any (set it in the environment, IVR112_SMS_GATEWAY_TOKEN).")
    text_from: str = _setting("112", "The number our text replies come from (SIP user and SMS sender).")
    text_max_chars: int = _setting(1000, "Longest received text kept, in characters; the rest is cut (and logged).")
    text_rate_per_number: int = _setting(
        10, "Texts one number may send per minute; beyond it the SMS door answers 429 (the gateway retries) and SIP texts are marked flood."
    )
    text_rate_window_s: float = _setting(60.0, "The window, in seconds, over which text_rate_per_number is counted (and the 429's Retry-After).")
    text_join_minutes: int = _setting(30, "A text joins the incident of a call from the same number that arrived within this many minutes.")
    text_retry_s: float = _setting(5.0, "Seconds before a reply that could not be delivered is tried again (doubling each time).")
    text_retry_max_s: float = _setting(300.0, "Longest wait, in seconds, between two tries of a reply.")
    text_journal_days: int = _setting(
        30, "Days a file of the SIP texts' journal is kept once all its texts are in the store; then it is removed (0: never)."
    )
    centre_domain: str = _setting(
        "ivr112.invalid", "The centre's own domain name: it names incidents to the agencies (urn:emergency:uid:incidentid:N:DOMAIN)."
    )
    agency_push_retry_s: float = _setting(1.0, "Seconds before an EIDO update an agency's webhook did not take is tried again (doubling each time).")
    agency_push_retry_max_s: float = _setting(30.0, "Longest wait, in seconds, between two tries of an agency's webhook.")
    agency_push_timeout_s: float = _setting(5.0, "Seconds an agency's webhook has to answer one EIDO update before it counts as failed.")
    agency_base_url: str = _setting(
        "", "Base URL at which agencies read incidents, locations by reference and EIDOs (/agency/v1/...); empty: http://http_host:http_port."
    )
    retention_days: int = _setting(
        90, "Days positions and recordings of a call are kept (UU 27/2022 personal data); older ones are deleted hourly."
    )

    def path(self, value: str) -> Path:
        """Resolve a path setting against the project folder."""
        p = Path(value)
        return p if p.is_absolute() else PROJECT_DIR / p

    @property
    def agency_url(self) -> str:
        return self.agency_base_url.rstrip("/") or f"http://{self.http_host}:{self.http_port}"

    @property
    def data_path(self) -> Path:
        return self.path(self.data_dir)

    @property
    def root_path(self) -> Path:
        return self.path(self.asterisk_root)

    @property
    def plan_paths(self) -> list[Path]:
        return [self.path(p) for p in self.plans]

    def supervisor_plan(self, name: str) -> str:
        """The plan a supervisor watches; "" for a provincial supervisor (every plan)."""
        return next((p.split("=")[1] for p in self.supervisor_plans if p.split("=")[0] == name), "")

    def operator_plan(self, name: str) -> str:
        """The plan an operator works; "" for a provincial operator (every plan)."""
        return next((o.plan for o in self.operators if o.name == name), "")

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)


def setting_fields() -> list[dataclasses.Field[Any]]:
    """Every setting, in the order of the table."""
    return list(dataclasses.fields(Settings))


def _coerce(name: str, raw: Any, kind: Any, origin: str) -> Any:
    if name == "operators":
        return _operators(raw, origin)
    if name == "aml_gateways":
        return _gateways(raw, origin)
    if name in ("plans", "supervisors", "aml_tls_names", "console_tls_names", "webrtc_tls_names", "operators_lan", "supervisor_plans",
                "sip_edges", "queue_nodes"):
        items = raw.split(",") if isinstance(raw, str) else raw
        if name.endswith(("_tls_names", "_lan", "_plans", "_edges", "_nodes")) and items in ([], [""], None):
            return ()
        if name == "supervisor_plans":
            return _supervisor_plans(items, origin)
        if not isinstance(items, list) or not items or not all(isinstance(i, str) and i.strip() for i in items):
            what = {"plans": "plan files", "supervisors": "account names"}.get(name, "host names or addresses")
            raise ConfigError(f"{origin}: {name!r} must be a list of {what}, found {raw!r}")
        return tuple(i.strip() for i in items)
    try:
        if kind in ("int", int):
            if isinstance(raw, bool):
                raise ValueError
            return int(raw)
        if kind in ("float", float):
            if isinstance(raw, bool):
                raise ValueError
            return float(raw)
        if isinstance(raw, (dict, list)):
            raise ValueError
        return str(raw)
    except (TypeError, ValueError):
        raise ConfigError(
            f"{origin}: setting {name!r} must be {kind}, found {raw!r}; fix the value or remove it to use the default"
        ) from None


def _supervisor_plans(items: Any, origin: str) -> tuple[str, ...]:
    pairs = [i.strip() for i in items] if isinstance(items, list) and all(isinstance(i, str) for i in items) else None
    if pairs is None or not all(p.count("=") == 1 and all(part.strip() for part in p.split("=")) for p in pairs):
        raise ConfigError(f"{origin}: 'supervisor_plans' must be a list of NAME=PLAN_ID (supervisor2=seruyan), found {items!r}")
    return tuple("=".join(part.strip() for part in p.split("=")) for p in pairs)


def _operators(raw: Any, origin: str) -> tuple[Operator, ...]:
    if not isinstance(raw, list):
        raise ConfigError(f"{origin}: 'operators' must be a list of {{name: ...}} entries, found {type(raw).__name__}")
    result = []
    seen = set()
    for i, item in enumerate(raw):
        if not isinstance(item, Mapping) or not isinstance(item.get("name"), str):
            raise ConfigError(f"{origin}: operators[{i}] needs a 'name' (letters, digits, '-', '_')")
        name = item["name"]
        if not name.replace("-", "").replace("_", "").isalnum() or name.isdigit():
            raise ConfigError(
                f"{origin}: operators[{i}] name {name!r} must be letters, digits, '-' or '_' and not only digits "
                "(it becomes the SIP user name)"
            )
        if name in seen:
            raise ConfigError(f"{origin}: operator {name!r} is listed twice")
        seen.add(name)
        langs = item.get("languages", ["id"])
        plan = item.get("plan", "")
        if not isinstance(plan, str):
            raise ConfigError(f"{origin}: operators[{i}] plan must be a plan's id (service.id), found {plan!r}")
        result.append(Operator(name=name, full_name=str(item.get("full_name", "")), languages=tuple(str(x) for x in langs),
                               plan=plan.strip()))
    return tuple(result)


def _gateways(raw: Any, origin: str) -> tuple[AmlGateway, ...]:
    if not isinstance(raw, list):
        raise ConfigError(f"{origin}: 'aml_gateways' must be a list of {{name: ..., addresses: [...]}} entries")
    out = []
    for i, item in enumerate(raw):
        if not isinstance(item, Mapping) or not isinstance(item.get("name"), str) or not item["name"]:
            raise ConfigError(f"{origin}: aml_gateways[{i}] needs a 'name'")
        addresses = item.get("addresses", [])
        if not isinstance(addresses, list) or not all(isinstance(a, str) for a in addresses):
            raise ConfigError(f"{origin}: aml_gateways[{i}].addresses must be a list of IP addresses")
        out.append(AmlGateway(item["name"], tuple(addresses)))
    return tuple(out)


def load_settings(config_file: str | Path | None = None, *, environ: Mapping[str, str] | None = None) -> Settings:
    """Read the defaults file, then `config_file`, then the environment; return the Settings.

    Raises ConfigError naming the file or variable of an unknown or badly typed setting.
    """
    env = os.environ if environ is None else environ
    known = {f.name: f for f in setting_fields()}
    values: dict[str, Any] = {}
    files = [DEFAULT_CONFIG]
    extra = config_file or env.get(ENV_PREFIX + "CONFIG")
    if extra:
        files.append(Path(extra))
    for file in files:
        if not file.exists():
            if file == DEFAULT_CONFIG:
                continue
            raise ConfigError(f"config file {file} does not exist; pass an existing file to --config")
        try:
            data = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{file}: not valid YAML: {exc}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{file}: expected a mapping of setting: value")
        for key, raw in data.items():
            if key not in known:
                raise ConfigError(f"{file}: unknown setting {key!r}; `ivr112 settings` lists the known ones")
            values[key] = _coerce(key, raw, known[key].type, str(file))
    for key, f in known.items():
        var = ENV_PREFIX + key.upper()
        if var in env and key not in ("operators", "aml_gateways"):
            values[key] = _coerce(key, env[var], f.type, f"environment variable {var}")
    settings = Settings(**values)
    if settings.log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError(f"log_level must be DEBUG, INFO, WARNING or ERROR, found {settings.log_level!r}")
    for name in ("agency_push_retry_s", "agency_push_retry_max_s", "agency_push_timeout_s"):
        if getattr(settings, name) <= 0:
            raise ConfigError(f"{name} must be a number of seconds above 0, found {getattr(settings, name)!r}")
    return settings
