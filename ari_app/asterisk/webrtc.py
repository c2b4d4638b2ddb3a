"""Asterisk as the browser phones' WebRTC server: SIP over a secure WebSocket on Asterisk's
own TLS HTTP server (wss://webrtc_host:webrtc_port/ws), DTLS-SRTP media, ICE, opus and G.711.

Each operator has a second PJSIP endpoint, `<name>.web`, with `webrtc=yes` and its own
generated password beside the softphone's; the console hands the page those credentials.
The WebSocket's certificate is the operator's own (by path) or one made by the operators'
local CA (`ari_app.web.tls`), the CA the supervisor installs once on the operators' PCs.
"""

from __future__ import annotations

import os
import shutil

from ari_app.asterisk.layout import Layout
from ari_app.web.tls import OPERATORS_CA, WILDCARDS, TlsFiles, default_hostnames, door_files
from ivr.operators import web_endpoint
from ivr.settings import Operator, Settings

TLS_FOLDER = "tls"
TLS_NAME = "webrtc"
CERT_FILE, KEY_FILE = "webrtc.pem", "webrtc.key"  # in the instance's etc folder, for http.conf
WS_PATH = "/ws"  # res_http_websocket's SIP WebSocket
# opus for the browser (wideband, loss-tolerant); G.711 so a call to a carrier's caller
# needs at most one transcoding step, or none when the browser takes G.711.
CODECS = ("opus", "ulaw", "alaw")
# A registration lives this long; the page refreshes it well before (JsSIP: at half).
REGISTER_EXPIRY = 120


def enabled(settings: Settings) -> bool:
    return settings.webrtc_port != 0


def host(settings: Settings) -> str:
    """The name the page connects to: webrtc_host, or the certificate's first name for a wildcard."""
    if settings.webrtc_host in WILDCARDS:
        return default_hostnames(settings.webrtc_host, settings.webrtc_tls_names)[0]
    return settings.webrtc_host


def ws_url(settings: Settings) -> str:
    name = host(settings)
    name = f"[{name}]" if ":" in name else name
    return f"wss://{name}:{settings.webrtc_port}{WS_PATH}"


def certificate(settings: Settings) -> TlsFiles:
    """The WebSocket's certificate and key: given by path, else made (or kept) under
    <data_dir>/tls/ by the operators' local CA. Raises ConfigError naming the file at fault."""
    return door_files(
        cert=str(settings.path(settings.webrtc_tls_cert)) if settings.webrtc_tls_cert else "",
        key=str(settings.path(settings.webrtc_tls_key)) if settings.webrtc_tls_key else "",
        folder=settings.data_path / TLS_FOLDER, name=TLS_NAME,
        hostnames=default_hostnames(settings.webrtc_host, settings.webrtc_tls_names), setting="webrtc_tls", ca_name=OPERATORS_CA,
    )


def install(settings: Settings, layout: Layout, gid: int) -> None:
    """Copy the certificate and key where Asterisk (inside its root) reads them: the key
    readable by Asterisk's group only."""
    if not enabled(settings):
        return
    files = certificate(settings)
    etc = layout.host(layout.etc)
    for source, name, mode in ((files.cert, CERT_FILE, 0o644), (files.key, KEY_FILE, 0o640)):
        target = etc / name
        tmp = target.with_name(name + ".new")
        shutil.copyfile(source, tmp)
        os.chown(tmp, -1, gid)
        tmp.chmod(mode)
        os.replace(tmp, target)


def http_tls(settings: Settings, layout: Layout) -> str:
    """http.conf's TLS lines (empty when browser phones are off)."""
    if not enabled(settings):
        return ""
    return (
        "; the browser phones' secure WebSocket (and nothing else they need) on TLS\n"
        f"tlsenable = yes\ntlsbindaddr = {settings.webrtc_host}:{settings.webrtc_port}\n"
        f"tlscertfile = {layout.etc}/{CERT_FILE}\ntlsprivatekey = {layout.etc}/{KEY_FILE}\n"
    )


def transport() -> str:
    # A wss transport's bind is ignored: the WebSocket arrives through the HTTP server.
    return "[transport-wss]\ntype = transport\nprotocol = wss\nbind = 0.0.0.0\n"


def endpoint(op: Operator, *, password: str, context: str, language: str, media_bind: str) -> str:
    """The operator's browser phone: endpoint, auth and aor `<name>.web`."""
    name = web_endpoint(op.name)
    label = op.full_name or op.name
    return (
        f"[{name}]\ntype = endpoint\ncontext = {context}\ndisallow = all\nallow = {','.join(CODECS)}\n"
        f"language = {language}\nauth = {name}\naors = {name}\ntransport = transport-wss\nwebrtc = yes\n"
        # Asterisk's own DTLS certificate (the browser checks it by the SDP's fingerprint).
        "dtls_auto_generate_cert = yes\ndirect_media = no\nforce_rport = yes\nrewrite_contact = yes\n"
        f"callerid = \"{label}\" <{op.name}>\n{media_bind}\n"
        f"[{name}]\ntype = auth\nauth_type = digest\nusername = {name}\npassword = {password}\n\n"
        # A reloaded page replaces its old registration; a closed one expires soon.
        f"[{name}]\ntype = aor\nmax_contacts = 1\nremove_existing = yes\nmaximum_expiration = {REGISTER_EXPIRY * 5}\n"
        f"default_expiration = {REGISTER_EXPIRY}\n"
    )
