"""The browser phone's side of the configuration: each operator's webrtc endpoint with its own
generated password, Asterisk's TLS WebSocket, and the board telling which phone an operator uses."""

from __future__ import annotations

from pathlib import Path

from cryptography import x509

from ari_app.asterisk import webrtc
from ari_app.asterisk.layout import Layout
from ari_app.asterisk.render import render
from ari_app.web import console_door
from ivr.operators import Board, operator_of
from ivr.plan import load_plans
from ivr.secrets import load_or_create
from ivr.settings import PROJECT_DIR, Operator, load_settings


def test_each_operator_has_a_browser_phone_endpoint_with_its_own_password(tmp_path: Path) -> None:
    settings = load_settings(environ={}).replace(operators=(Operator("andi", "Andi S."),), data_dir=str(tmp_path))
    secrets = load_or_create(tmp_path, ("andi",))
    assert secrets.webrtc_password("andi") and secrets.webrtc_password("andi") != secrets.operator_password("andi")
    files = render(settings, secrets, load_plans([PROJECT_DIR / "dialplans" / "kotim.yaml"]), Layout(tmp_path, "t1"))
    pjsip = files["pjsip.conf"]
    assert "[andi.web]\ntype = endpoint" in pjsip and "webrtc = yes" in pjsip and "allow = opus,ulaw,alaw" in pjsip
    assert f"username = andi.web\npassword = {secrets.webrtc_password('andi')}" in pjsip
    assert "protocol = wss" in pjsip
    # The softphone's endpoint is untouched: plain RTP, G.711.
    assert "[andi]\ntype = endpoint\ncontext = ivr112-operators\ndisallow = all\nallow = ulaw,alaw\n" in pjsip
    assert "tlsbindaddr = 127.0.0.1:8089" in files["http.conf"]
    assert "tlscertfile = /srv/ivr112/t1/etc/webrtc.pem" in files["http.conf"]
    assert "icesupport = yes" in files["rtp.conf"]
    assert webrtc.ws_url(settings) == "wss://127.0.0.1:8089/ws"


def test_with_browser_phones_off_nothing_of_them_is_rendered(tmp_path: Path) -> None:
    settings = load_settings(environ={}).replace(operators=(Operator("andi"),), webrtc_port=0)
    files = render(settings, load_or_create(tmp_path, ("andi",)), load_plans([PROJECT_DIR / "dialplans" / "kotim.yaml"]),
                   Layout(tmp_path, "t1"))
    assert "andi.web" not in files["pjsip.conf"] and "wss" not in files["pjsip.conf"]
    assert "tlsenable" not in files["http.conf"] and "icesupport = no" in files["rtp.conf"]


def test_the_websocket_certificate_comes_from_the_operators_ca_kept_across_runs(tmp_path: Path) -> None:
    settings = load_settings(environ={}).replace(data_dir=str(tmp_path))
    first = webrtc.certificate(settings)
    assert first.ca == tmp_path / "tls" / "operators-ca.pem"
    assert webrtc.certificate(settings).cert.read_bytes() == first.cert.read_bytes()


def test_the_console_on_https_and_the_browser_phones_websocket_share_one_ca_a_pc_installs_once(tmp_path: Path) -> None:
    settings = load_settings(environ={}).replace(data_dir=str(tmp_path), console_host="10.20.0.5")
    phone = webrtc.certificate(settings)
    door = console_door.prepare(settings)
    assert door is not None and door.files.ca == phone.ca
    assert sorted(p.name for p in (tmp_path / "tls").glob("*-ca.pem")) == ["operators-ca.pem"]
    assert phone.ca is not None
    ca = x509.load_pem_x509_certificate(phone.ca.read_bytes())
    for cert in (phone.cert, door.files.cert):
        x509.load_pem_x509_certificate(cert.read_bytes()).verify_directly_issued_by(ca)


def test_the_board_knows_an_operator_on_the_browser_phone_by_the_web_endpoint() -> None:
    assert operator_of("PJSIP/andi.web") == "andi" and operator_of("PJSIP/andi") == "andi"
    board = Board(["andi"])
    board.apply("QueueMemberAdded", {"Queue": "kotim-operators", "Interface": "PJSIP/andi.web", "MemberName": "andi",
                                     "Status": "1", "Paused": "0"})
    assert board.get("andi").view()["phone"] == "browser"
    assert board.get("andi").status() == "ready"
    board.apply("QueueMemberRemoved", {"Queue": "kotim-operators", "Interface": "PJSIP/andi.web", "MemberName": "andi"})
    assert board.get("andi").view()["phone"] is None
