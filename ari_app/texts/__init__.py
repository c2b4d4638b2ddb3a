"""Text to 112 (issue 19): texts from people who cannot speak or hear, or cannot risk being
heard, as incidents the operators answer in the console. Two doors: SIP MESSAGE (`sip.py`)
and SMS through the carrier's gateway over HTTP (`http.py`); the conversation logic in
`desk.py`, the replies' durable outbox in `outbox.py`; the pure part in `ivr/texts.py`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from ari_app.ari.client import AriClient
from ari_app.asterisk.layout import Layout
from ari_app.asterisk.render import ARI_USER
from ari_app.calls.hep import HepStore
from ari_app.storage import AsyncStore
from ari_app.texts.desk import TextDesk
from ari_app.texts.outbox import Outbox
from ari_app.texts.sip import TEXT_MESSAGE_RECEIVED, TEXTS_APP_SUFFIX, SipTexts, carrier_endpoints
from ivr.secrets import Secrets
from ivr.settings import Settings

__all__ = ["TextsRoom"]


class TextsRoom:
    """The room's parts, started and stopped together by the service."""

    def __init__(self, settings: Settings, secrets: Secrets, *, store: AsyncStore, ari: AriClient, hep: HepStore, plans: Any,
                 publish: Callable[[str, dict[str, Any]], None]) -> None:
        texts_ari = AriClient(
            base_url=f"http://{settings.ari_host}:{settings.ari_port}", username=ARI_USER, password=secrets.ari_password,
            app=settings.app_name + TEXTS_APP_SUFFIX, request_timeout=settings.ari_request_timeout,
            reconnect_min=settings.ari_reconnect_min, reconnect_max=settings.ari_reconnect_max,
            events={TEXT_MESSAGE_RECEIVED},  # not the carriers' channels' events: the calls' app has them
        )
        self.outbox = Outbox(settings, store, send_sip=self._send_sip)
        self.desk = TextDesk(settings, store, self.outbox, publish=publish, clock=time.monotonic)
        layout = Layout(settings.root_path, settings.instance)
        self.sip = SipTexts(self.desk, ari=ari, texts_ari=texts_ari, endpoints=lambda: carrier_endpoints(plans),
                            text_from=settings.text_from, sip_host=settings.sip_host,
                            journal_dir=layout.host(layout.texts_journal), node=settings.node_name,
                            journal_days=settings.text_journal_days)
        self.hep = hep

    async def _send_sip(self, item: Any) -> None:
        await self.sip.send(item)

    def start(self) -> None:
        self.hep.on_message = self.sip.on_hep_message
        self.sip.start()
        self.outbox.start()

    async def stop(self) -> None:
        self.hep.on_message = None
        await self.outbox.stop()
        await self.sip.stop()
