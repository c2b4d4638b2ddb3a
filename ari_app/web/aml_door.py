"""The AML door: the HTTPS listener the carriers' AML gateways post to, apart from the
console's port so that it can face the carriers' network while the console stays on
loopback. It serves only `/aml` and `/aml/sms`, over TLS 1.2 or newer, with the operator's
certificate or one made on first run by a local CA (the CA certificate goes to the carrier).
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass

from aiohttp import web

from ari_app.service import Service
from ari_app.web import aml_http
from ari_app.web.keys import APP_KEY
from ari_app.web.tls import WILDCARDS, TlsFiles, default_hostnames, door_files, server_context
from ivr.budget import SlidingBudget
from ivr.settings import Settings

TLS_FOLDER = "tls"


@dataclass(frozen=True)
class AmlDoor:
    """What the door listens with: the server context, the files it came from and the URL."""

    context: ssl.SSLContext
    files: TlsFiles
    url: str


def hostnames(settings: Settings) -> list[str]:
    """The names the made certificate is for: `aml_tls_names`, else the door's address, this
    machine's name, localhost and 127.0.0.1."""
    return default_hostnames(settings.aml_host, settings.aml_tls_names)


def prepare(settings: Settings) -> AmlDoor:
    """The door's TLS, made or loaded; raises ConfigError naming the file at fault."""
    files = door_files(
        cert=str(settings.path(settings.aml_tls_cert)) if settings.aml_tls_cert else "",
        key=str(settings.path(settings.aml_tls_key)) if settings.aml_tls_key else "",
        folder=settings.data_path / TLS_FOLDER, name="aml", hostnames=hostnames(settings), setting="aml_tls",
    )
    host = hostnames(settings)[0] if settings.aml_host in WILDCARDS else settings.aml_host
    host = f"[{host}]" if ":" in host else host
    return AmlDoor(server_context(files), files, f"https://{host}:{settings.aml_port}/aml")


def build_door_app(service: Service, limiter: SlidingBudget) -> web.Application:
    """The door's own application: the AML routes only, sharing the console's rate budget."""
    app = web.Application()
    app[APP_KEY] = service
    app[aml_http.LIMITER_KEY] = limiter
    app[aml_http.TLS_DOOR] = True
    app.add_routes(aml_http.routes)
    return app
