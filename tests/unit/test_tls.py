"""The AML door's TLS without a socket: the certificate made on first run is trusted by a client
holding only the local CA and checking the name, keys stay private, a change of names reissues
the certificate under the same CA, and a wrong certificate or key is refused naming the file.
A plain-HTTP AML message from another machine on the console's port is pointed at the door."""

from __future__ import annotations

import ssl
import stat
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import trustme
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from ari_app.web import aml_http
from ari_app.web.keys import APP_KEY
from ari_app.web.tls import TlsFiles, door_files, local_certificate, server_context
from ivr.errors import ConfigError
from ivr.settings import Settings

NAMES = ["aml.112.kotimkab.go.id", "10.20.0.5"]


def _handshake(server: ssl.SSLContext, client: ssl.SSLContext, name: str) -> str:
    """Both ends of a TLS handshake through memory; the version agreed."""
    s_in, s_out, c_in, c_out = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
    srv = server.wrap_bio(s_in, s_out, server_side=True)
    cli = client.wrap_bio(c_in, c_out, server_hostname=name)
    done = {"srv": False, "cli": False}
    for _ in range(10):
        for key, end in (("cli", cli), ("srv", srv)):
            if not done[key]:
                try:
                    end.do_handshake()
                    done[key] = True
                except ssl.SSLWantReadError:
                    pass
        s_in.write(c_out.read())
        c_in.write(s_out.read())
        if all(done.values()):
            return str(cli.version())
    raise AssertionError("the handshake did not finish")


def _trusting(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # names checked, no CA but this one
    ca.configure_trust(context)
    return context


def test_a_certificate_made_on_first_run_is_trusted_through_the_local_ca_by_name_and_address(tmp_path: Path) -> None:
    files = local_certificate(tmp_path / "tls", "aml", NAMES)
    assert files.ca is not None
    server = server_context(files)
    assert server.minimum_version == ssl.TLSVersion.TLSv1_2
    client = ssl.create_default_context(cafile=str(files.ca))
    for name in NAMES:
        assert _handshake(server, client, name) in ("TLSv1.2", "TLSv1.3")
    with pytest.raises(ssl.SSLCertVerificationError, match=r"Hostname mismatch|IP address mismatch"):
        _handshake(server, client, "other.example")
    with pytest.raises(ssl.SSLCertVerificationError, match="unable to get local issuer certificate"):
        _handshake(server, _trusting(trustme.CA()), NAMES[0])


def test_keys_are_private_and_a_second_start_keeps_the_same_files(tmp_path: Path) -> None:
    first = local_certificate(tmp_path, "aml", NAMES)
    assert first.ca is not None
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in tmp_path.iterdir()}
    assert modes["aml.key"] == modes["aml-ca.key"] == 0o600
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    local_certificate(tmp_path, "aml", list(reversed(NAMES)))
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_new_names_reissue_the_certificate_under_the_same_ca(tmp_path: Path) -> None:
    first = local_certificate(tmp_path, "aml", NAMES)
    assert first.ca is not None
    ca_before, cert_before = first.ca.read_bytes(), first.cert.read_bytes()
    again = local_certificate(tmp_path, "aml", [*NAMES, "aml2.112.kotimkab.go.id"])
    assert again.ca is not None and again.ca.read_bytes() == ca_before and again.cert.read_bytes() != cert_before
    client = ssl.create_default_context(cafile=str(again.ca))  # what the carrier already holds
    assert _handshake(server_context(again), client, "aml2.112.kotimkab.go.id")


def test_a_given_certificate_is_used_as_it_is(tmp_path: Path) -> None:
    ca = trustme.CA()
    issued = ca.issue_cert("aml.112.kotimkab.go.id")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    issued.cert_chain_pems[0].write_to_path(str(cert))
    issued.private_key_pem.write_to_path(str(key))
    files = door_files(cert=str(cert), key=str(key), folder=tmp_path / "tls", name="aml", hostnames=NAMES, setting="aml_tls")
    assert files == TlsFiles(cert, key) and not (tmp_path / "tls").exists()
    assert _handshake(server_context(files), _trusting(ca), "aml.112.kotimkab.go.id")


def _pair(tmp_path: Path) -> tuple[Path, Path]:
    made = local_certificate(tmp_path / "made", "aml", NAMES)
    return made.cert, made.key


@pytest.mark.parametrize(("case", "message"), [
    ("missing_cert", r"file .*nowhere\.pem: no such certificate; fix aml_tls_cert"),
    ("missing_key", r"file .*nowhere\.key: no such private key; fix aml_tls_key"),
    ("garbage_cert", r"file .*garbage: not a PEM certificate"),
    ("garbage_key", r"file .*garbage: not an unencrypted PEM private key"),
    ("wrong_key", r"file .*other\.key: not the private key of the certificate in .*aml\.pem"),
    ("cert_only", r"aml_tls_cert is set but aml_tls_key is not: give both"),
    ("key_only", r"aml_tls_key is set but aml_tls_cert is not"),
])
def test_a_wrong_certificate_or_key_is_refused_naming_the_file_and_what_to_do(tmp_path: Path, case: str, message: str) -> None:
    cert, key = _pair(tmp_path)
    garbage = tmp_path / "garbage"
    garbage.write_text("hello")
    other = local_certificate(tmp_path / "other", "other", NAMES).key
    given = {"missing_cert": (tmp_path / "nowhere.pem", key), "missing_key": (cert, tmp_path / "nowhere.key"),
             "garbage_cert": (garbage, key), "garbage_key": (cert, garbage), "wrong_key": (cert, other),
             "cert_only": (cert, ""), "key_only": ("", key)}[case]
    with pytest.raises(ConfigError, match=message):
        files = door_files(cert=str(given[0]), key=str(given[1]), folder=tmp_path / "tls", name="aml", hostnames=NAMES, setting="aml_tls")
        server_context(files)


def test_a_key_that_cannot_be_read_is_refused_saying_whom_to_let_read_it(tmp_path: Path) -> None:
    cert, _ = _pair(tmp_path)
    folder = tmp_path / "key.pem"  # a folder: unreadable as a file even for root, as a chmod 000 file is for others
    folder.mkdir()
    with pytest.raises(ConfigError, match=r"key\.pem: the private key cannot be read .*make it readable by the user that runs ivr112"):
        server_context(TlsFiles(cert, folder))


def _request(peer: str, *, door: bool) -> web.Request:
    app = web.Application()
    failures: list[str] = []
    service: Any = SimpleNamespace(settings=Settings(aml_host="10.20.0.5", aml_port=8113),
                                   metrics=SimpleNamespace(failure=failures.append), secrets=SimpleNamespace(aml_tokens={}))
    app[APP_KEY] = service
    app[aml_http.LIMITER_KEY] = aml_http.rate_limiter(10)
    if door:
        app[aml_http.TLS_DOOR] = True
    transport = SimpleNamespace(get_extra_info=lambda name, default=None: (peer, 40000) if name == "peername" else default)
    return make_mocked_request("POST", "/aml", app=app, transport=transport)


async def test_plain_http_aml_from_another_machine_is_pointed_at_the_tls_door() -> None:
    refused = await aml_http._admit(_request("10.1.2.3", door=False))
    assert isinstance(refused, web.Response) and refused.status == 403
    assert refused.text is not None and "https://10.20.0.5:8113/aml" in refused.text
    # From this machine (an SMS modem's script, `ivr112 aml sms`) the token decides, as on the door.
    for peer, door in (("127.0.0.1", False), ("10.1.2.3", True)):
        answer = await aml_http._admit(_request(peer, door=door))
        assert isinstance(answer, web.Response) and answer.status == 401
