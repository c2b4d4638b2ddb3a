"""The console on the LAN: an HTTPS listener for the operators' PCs, beside the plain-HTTP
port that stays on loopback for this machine's tools (the guard, the `ivr112` command,
a Prometheus scraper). Its certificate is the operator's, or one made on first run by the
operators' local CA under `<data_dir>/tls/` (tls.py), the same CA as the browser phones'
WebSocket (ari_app/asterisk/webrtc.py): the operators' PCs trust `operators-ca.pem`, once.
"""

from __future__ import annotations

from ari_app.web.aml_door import TLS_FOLDER, AmlDoor
from ari_app.web.tls import OPERATORS_CA, WILDCARDS, default_hostnames, door_files, server_context
from ivr.settings import Settings

# What a listener serves with (context, files, URL) is the same for both doors.
ConsoleDoor = AmlDoor


def hostnames(settings: Settings) -> list[str]:
    return default_hostnames(settings.console_host, settings.console_tls_names)


def prepare(settings: Settings) -> ConsoleDoor | None:
    """The console's TLS, made or loaded, or None when `console_host` is empty (loopback only).
    Raises ConfigError naming the file at fault."""
    if not settings.console_host:
        return None
    names = hostnames(settings)
    files = door_files(
        cert=str(settings.path(settings.console_tls_cert)) if settings.console_tls_cert else "",
        key=str(settings.path(settings.console_tls_key)) if settings.console_tls_key else "",
        folder=settings.data_path / TLS_FOLDER, name="console", hostnames=names, setting="console_tls",
        ca_name=OPERATORS_CA,
    )
    host = names[0] if settings.console_host in WILDCARDS else settings.console_host
    host = f"[{host}]" if ":" in host else host
    return ConsoleDoor(server_context(files), files, f"https://{host}:{settings.console_port}/")
