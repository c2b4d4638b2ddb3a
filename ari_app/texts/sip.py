"""The SIP door for texts. Asterisk (res_pjsip_messaging) takes a carrier's out-of-dialog
MESSAGE and answers 202 before anyone kept it. The carrier endpoint's `message_context`
writes it to the texts' journal (journal.py), then Asterisk hands it to the ARI application
subscribed to that endpoint as TextMessageReceived: that event only wakes the journal's
reader, which keeps the text. A MESSAGE the event announces and the journal lacks (its
line could not be written) is kept from the event, with an ERROR line.

That application is a second one, `<app_name>-texts`, on its own WebSocket: an endpoint
subscription also brings every channel event of the carrier's calls, which must not reach
the calls' application. Replies leave by `PUT /endpoints/sendMessage` through the carrier's
endpoint. A multipart MESSAGE (DEC112: text, PIDF-LO, Call-Info) gets 415 from Asterisk;
its copy in the HEP capture is read here, so the text and the position are kept anyway.
So is a text/plain MESSAGE over 1023 bytes, which Asterisk answers 202 but passes on empty.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ari_app.ari import events as ev
from ari_app.ari.client import AriClient
from ari_app.ari.errors import AriError
from ari_app.asterisk.render import carrier_endpoint
from ari_app.calls.hep import sip_body, sip_header
from ari_app.storage import StoreUnavailable
from ari_app.store.texts import OutboxItem
from ari_app.texts.desk import TextDesk
from ari_app.texts.journal import Journal
from ivr.location import Location, LocationParseError
from ivr.location.aml import normalise_msisdn
from ivr.location.pidf import parse_pidf
from ivr.texts import EDGE_CONTENT_TYPE, JournalEntry, TextRefused, parse_multipart, sip_address, sip_user

log = logging.getLogger(__name__)

TEXTS_APP_SUFFIX = "-texts"
TEXT_MESSAGE_RECEIVED = "TextMessageReceived"
# res_pjsip_messaging prints a body into a 1024-byte buffer: a longer one reaches ARI empty
# (Asterisk still answers 202), so such a text is read from the HEP copy.
ASTERISK_MAX_BODY = 1023


def sender_number(uri: str) -> str:
    """The sender's number as the incidents name callers (08..., +62... → 08...), else the SIP user."""
    user = sip_user(uri)
    try:
        return normalise_msisdn(user) if user else ""
    except LocationParseError:
        return user[:64]


def reply_address(endpoint: str, contact: str, sender: str) -> str:
    """Where ARI sends the reply: the carrier's endpoint and the sender's Contact (else From)."""
    uri = sip_address(contact) or sip_address(sender)
    return f"pjsip:{endpoint}/{uri}" if endpoint else f"pjsip:{uri}"


class SipTexts:
    def __init__(self, desk: TextDesk, *, ari: AriClient, texts_ari: AriClient, endpoints: Callable[[], list[str]],
                 text_from: str, sip_host: str, journal_dir: Path, node: str = "", journal_days: int = 0) -> None:
        self.desk = desk
        self.journal = Journal(journal_dir, desk.store, self._take_from_journal, node=node, keep_days=journal_days)
        self.ari = ari
        self.texts_ari = texts_ari
        self.endpoints = endpoints
        self.text_from = text_from
        self.sip_host = sip_host
        self._task: asyncio.Task[None] | None = None
        self._hep_tasks: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        self.journal.start()
        self._task = asyncio.create_task(self.texts_ari.run(self._on_event, self._subscribe), name="ivr112-texts-ari")

    async def stop(self) -> None:
        for name in self.endpoints():  # an app left subscribed stays registered in Asterisk
            try:
                await self.texts_ari.request("DELETE", f"/applications/{self.texts_ari.app}/subscription",
                                             params={"eventSource": f"endpoint:PJSIP/{name}"})
            except AriError as exc:
                log.debug("texts app not unsubscribed from %s: %s", name, exc)
        await self.texts_ari.close()
        await self.journal.stop()
        for task in [self._task, *self._hep_tasks]:
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    async def _subscribe(self) -> None:
        """After every (re)connect: the carriers' endpoints, whose MESSAGEs come to this app."""
        for name in self.endpoints():
            try:
                await self.texts_ari.request("POST", f"/applications/{self.texts_ari.app}/subscription",
                                             params={"eventSource": f"endpoint:PJSIP/{name}"})
            except AriError as exc:
                log.error("texts from carrier endpoint %s are not announced (%s): the journal is read every %g s",
                          name, exc, self.journal.every_s)
        self.journal.kick()  # what came while we were away

    async def _on_event(self, event: Any) -> None:
        if not isinstance(event, ev.UnknownEvent) or event.type != TEXT_MESSAGE_RECEIVED:
            return  # the endpoint's channel events: the calls' application has its own
        message = event.raw.get("message") or {}
        sender, body = str(message.get("from", "")), str(message.get("body", ""))
        await self.journal.catch_up()
        if self.journal.saw(sender, body):
            return  # the journal's line is the text (kept, or kept once the store is back)
        endpoint = str((event.raw.get("endpoint") or {}).get("resource", ""))
        variables = message.get("variables") or {}
        number = sender_number(sender) or "unknown"
        if not body.strip():
            log.warning("SIP text from %s reached ARI empty: an empty MESSAGE, or one over %d bytes "
                        "(Asterisk empties it; the app takes that one from the HEP copy)", number, ASTERISK_MAX_BODY)
            return
        log.error("SIP text from %s is not in the texts' journal %s (see Asterisk's log): kept from the ARI event",
                  number, self.journal.directory)
        address = reply_address(endpoint, str(variables.get("Contact", "")), sender)
        await self._keep(number, address, body, what="SIP text")

    async def _take_from_journal(self, entry: JournalEntry, key: str) -> None:
        """One journal line: kept (StoreUnavailable goes up: the journal stops and tries it again later)."""
        number = sender_number(entry.from_uri) or "unknown"
        if not entry.body.strip():
            log.warning("SIP text from %s is empty: an empty MESSAGE, or one over %d bytes (Asterisk empties it; "
                        "the app takes that one from the HEP copy)", number, ASTERISK_MAX_BODY)
            return
        address = reply_address(entry.endpoint, entry.contact, entry.from_uri)
        raw: bytes | str = entry.body
        location: Location | None = None
        if entry.content_type.lower().startswith("multipart/"):  # DEC112, passed on by the SIP edge
            got = read_multipart(number, entry.content_type, entry.body, entry.call_info)
            if got is None:
                return
            raw, location = got
        try:
            await self.desk.receive(door="sip", number=number, address=address, raw=raw, at=entry.at, key=key,
                                    location=location, flooding=self.desk.over_budget(number))
        except TextRefused as exc:
            log.warning("SIP text from %s refused: %s", number, exc)

    async def _keep(self, number: str, address: str, raw: bytes | str, *, what: str, location: Location | None = None) -> None:
        """Keep a text that has no journal line (the ARI event's, or the HEP copy's)."""
        try:
            await self.desk.receive(door="sip", number=number, address=address, raw=raw, location=location,
                                    flooding=self.desk.over_budget(number))
        except TextRefused as exc:
            log.warning("%s from %s refused: %s", what, number, exc)
        except StoreUnavailable as exc:
            log.error("%s from %s NOT KEPT, the store is down (%s): %.500r", what, number, exc, raw)

    async def send(self, item: OutboxItem) -> None:
        """Deliver one reply as a SIP MESSAGE (the outbox's SIP sender); AriError when Asterisk refuses."""
        await self.ari.request("PUT", "/endpoints/sendMessage",
                               params={"to": item.address, "from": f"sip:{self.text_from}@{self.sip_host}", "body": item.body})

    # The HEP copy of MESSAGEs Asterisk refused (multipart) or emptied (long) ------------

    def on_hep_message(self, message: bytes) -> None:
        """A MESSAGE seen in the capture: a multipart one Asterisk refused (415), or one too
        long for Asterisk (it passes it on empty), is taken here. What Asterisk passed on
        whole is in the journal: a text/plain one of at most ASTERISK_MAX_BODY bytes, and a
        multipart one the SIP edge handed over as text/plain (EDGE_CONTENT_TYPE)."""
        original = sip_header(message, EDGE_CONTENT_TYPE)
        content_type = original or sip_header(message, "Content-Type", "c")
        kind = content_type.lower()
        long = len(sip_body(message)) > ASTERISK_MAX_BODY
        if original and not long:
            return
        if kind.startswith("multipart/"):
            work = self._multipart(message, content_type)
        elif kind.startswith("text/plain") and long and sip_user(sip_header(message, "From", "f")) != self.text_from:  # not our reply
            work = self._long_plain(message)
        else:
            return
        task = asyncio.get_running_loop().create_task(work)
        self._hep_tasks.add(task)
        task.add_done_callback(self._hep_tasks.discard)

    async def _long_plain(self, message: bytes) -> None:
        body = sip_body(message)
        number = sender_number(sip_header(message, "From", "f")) or "unknown"
        log.warning("SIP text from %s of %d bytes: Asterisk passes at most %d (it reached ARI empty); "
                    "taken from the HEP copy", number, len(body), ASTERISK_MAX_BODY)
        await self._keep_from_hep(message, number, body, None, "SIP text")

    async def _multipart(self, message: bytes, content_type: str) -> None:
        number = sender_number(sip_header(message, "From", "f")) or "unknown"
        got = read_multipart(number, content_type, sip_body(message), sip_header(message, "Call-Info"))
        if got is not None:
            await self._keep_from_hep(message, number, got[0], got[1], "multipart SIP text")

    async def _keep_from_hep(self, message: bytes, number: str, raw: bytes | str, location: Location | None,
                             what: str) -> None:
        endpoint = self.endpoints()[0] if self.endpoints() else ""
        address = reply_address(endpoint, sip_header(message, "Contact", "m"), sip_header(message, "From", "f"))
        await self._keep(number, address, raw, what=what, location=location)


def read_multipart(number: str, content_type: str, body: bytes, call_info: str) -> tuple[str, Location | None] | None:
    """The text and the position (PIDF-LO) of a DEC112 multipart MESSAGE; None (logged) when it is broken."""
    try:
        parts = parse_multipart(content_type, body, {"Call-Info": call_info})
    except TextRefused as exc:
        log.warning("multipart SIP text from %s refused: %s", number, exc)
        return None
    location: Location | None = None
    if parts.pidf:
        try:
            location = parse_pidf(parts.pidf)[0]
        except (LocationParseError, IndexError) as exc:
            log.warning("multipart SIP text from %s: its PIDF-LO is unreadable (%s); text kept without position", number, exc)
    return parts.text, location


def carrier_endpoints(plans: Any) -> list[str]:
    """The PJSIP endpoint names of every carrier in the served plans."""
    names: list[str] = []
    for plan in plans.current.plans:
        for carrier in plan.carriers:
            name = carrier_endpoint(carrier.name)
            if name not in names:
                names.append(name)
    return names
