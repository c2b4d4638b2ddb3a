"""Generated secrets: ARI, AMI, HEP capture and console passwords, one SIP password per operator
(softphone) and another for the operator's browser phone (the console hands it to the page; the
operator never sees it), one token per AML gateway, and one token per agency (its dispatch
system reads the incidents sent to it: docs/agencies.md) with a secret per agency that signs the
EIDOs pushed to its webhook.

Made on first run in `<data_dir>/secrets.yaml` (mode 0600, never committed, never logged);
later runs read the same file so softphones keep working. No default password exists.
"""

from __future__ import annotations

import os
import secrets as _random
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ivr.errors import ConfigError

SECRETS_FILE = "secrets.yaml"
_TOKEN_BYTES = 18


@dataclass(frozen=True)
class Secrets:
    ari_password: str
    ami_secret: str
    console_secret: str
    operator_passwords: dict[str, str] = field(default_factory=dict)
    aml_tokens: dict[str, str] = field(default_factory=dict)
    hep_password: str = ""  # Asterisk's HEP capture of the INVITEs to the app (ari_app/calls/hep.py)
    webrtc_passwords: dict[str, str] = field(default_factory=dict)
    agency_tokens: dict[str, str] = field(default_factory=dict)
    # HMAC-SHA256 keys of the EIDOs pushed to each agency's webhook (ivr/agency_push.py).
    agency_webhook_secrets: dict[str, str] = field(default_factory=dict)
    # Digest password of the SIP legs between a cluster's call nodes (a caller sent to the
    # node that holds the operators' queues: docs/cluster.md); the same on every node.
    node_sip_password: str = ""

    def agency_of(self, token: str) -> str | None:
        """The agency whose token this is (compared in constant time), or None."""
        found = None
        for name, known in self.agency_tokens.items():
            if _random.compare_digest(known.encode(), token.encode()):
                found = name
        return found

    def aml_token(self, name: str) -> str:
        try:
            return self.aml_tokens[name]
        except KeyError:
            raise ConfigError(f"no AML gateway named {name!r}; gateways are listed under 'aml_gateways' in the config") from None

    def operator_password(self, name: str) -> str:
        try:
            return self.operator_passwords[name]
        except KeyError:
            raise ConfigError(f"no operator named {name!r}; operators are listed under 'operators' in the config") from None

    def webrtc_password(self, name: str) -> str:
        """The password of the operator's browser phone (endpoint <name>.web)."""
        try:
            return self.webrtc_passwords[name]
        except KeyError:
            raise ConfigError(f"no operator named {name!r}; operators are listed under 'operators' in the config") from None


def _token() -> str:
    return _random.token_urlsafe(_TOKEN_BYTES)


def load_or_create(data_dir: Path, operator_names: tuple[str, ...] = (), gateway_names: tuple[str, ...] = (),
                   agency_names: tuple[str, ...] = ()) -> Secrets:
    """Return the secrets in `data_dir`, generating any that are missing (file mode 0600)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / SECRETS_FILE
    data: dict[str, object] = {}
    if path.exists():
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: unreadable ({exc}); delete it to generate new secrets") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: expected a mapping; delete it to generate new secrets")
        data = loaded
    changed = False
    for key in ("ari_password", "ami_secret", "console_secret", "hep_password", "node_sip_password"):
        if not isinstance(data.get(key), str) or not data[key]:
            data[key] = _token()
            changed = True
    tables: dict[str, dict[str, str]] = {}
    for key, names in (("operator_passwords", operator_names), ("webrtc_passwords", operator_names), ("aml_tokens", gateway_names),
                       ("agency_tokens", agency_names), ("agency_webhook_secrets", agency_names)):
        table = data.get(key)
        if not isinstance(table, dict):
            table = {}
            changed = True
        for name in names:
            if not isinstance(table.get(name), str) or not table[name]:
                table[name] = _token()
                changed = True
        data[key] = tables[key] = {str(k): str(v) for k, v in table.items()}
    if changed:
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            yaml.safe_dump(data, fh, sort_keys=True)
        os.replace(tmp, path)
    os.chmod(path, 0o600)
    return Secrets(
        ari_password=str(data["ari_password"]),
        ami_secret=str(data["ami_secret"]),
        console_secret=str(data["console_secret"]),
        operator_passwords=tables["operator_passwords"],
        aml_tokens=tables["aml_tokens"],
        hep_password=str(data["hep_password"]),
        webrtc_passwords=tables["webrtc_passwords"],
        agency_tokens=tables["agency_tokens"],
        agency_webhook_secrets=tables["agency_webhook_secrets"],
        node_sip_password=str(data["node_sip_password"]),
    )
