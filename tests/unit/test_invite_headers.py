"""The caller's INVITE headers: the dialplan's copies in the StasisStart, else read from
Asterisk (a call that reached Stasis without the plan's dialplan)."""

from __future__ import annotations

import asyncio

from ari_app.calls.locating import Locator


class _Ari:
    def __init__(self, headers: dict[str, str]) -> None:
        self.headers = headers
        self.asked: list[str] = []

    async def get_variable(self, channel_id: str, name: str) -> str | None:
        self.asked.append(name)
        return self.headers.get(name)


def _uris(ari: _Ari, handed: dict[str, str] | None) -> list[str | None]:
    found = asyncio.run(Locator(None).from_invite(ari, "ch-1", handed))  # type: ignore[arg-type]
    return [loc.uri for loc in found]


def test_the_dialplans_copies_are_used_without_asking_asterisk() -> None:
    ari = _Ari({})
    handed = {"IVR112_CALL_ID": "abc@10.0.0.1", "IVR112_GEOLOCATION": '<sip:a@lis.example>;x="1, 2", <sip:b@lis.example>',
              "IVR112_PANI": ""}
    assert _uris(ari, handed) == ["sip:a@lis.example", "sip:b@lis.example"]
    assert ari.asked == []


def test_without_the_copies_each_header_is_read_from_asterisk() -> None:
    ari = _Ari({"PJSIP_HEADER(read,Geolocation)": "<sip:a@lis.example>"})
    # A channel that came another way: the variables are absent, or empty for a call
    # that did not pass the plan's dialplan.
    for handed in (None, {"IVR112_CALL_ID": "", "IVR112_GEOLOCATION": ""}):
        ari.asked.clear()
        assert _uris(ari, handed) == ["sip:a@lis.example"]
        assert ari.asked == ["PJSIP_HEADER(read,Geolocation)", "PJSIP_HEADER(read,P-Access-Network-Info)"]
