"""Where is the caller, on the live call: read what the INVITE carried (PIDF-LO by value from
Asterisk's HEP copy of the INVITE, the Geolocation URI, the serving cell), attach AML
messages to the right incident, and keep each position with its kecamatan.

Every bad input is logged with the call's id and skipped: the call goes on, and nothing
already stored is lost.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ari_app.ari.errors import AriError
from ari_app.calls.hep import HepStore, sip_body, sip_header
from ari_app.calls.ports import CallAri
from ari_app.storage import AsyncStore
from ari_app.store import IncidentStore
from ari_app.store.writes import location_args
from ivr.location import Location, LocationParseError
from ivr.location.aml import AmlMessage, normalise_msisdn
from ivr.location.cell import parse_pani
from ivr.location.geo import Boundaries, describe, load_boundaries
from ivr.location.invite_headers import CALL_ID_HEADER, GEOLOCATION_HEADER, INVITE_HEADER_VARIABLES, PANI_HEADER
from ivr.location.pidf import multipart_pidf, parse_pidf
from ivr.plan import Plan
from ivr.store import StoredLocation, now

log = logging.getLogger(__name__)

INVITE_WAIT_S = 0.5  # for Asterisk's HEP copy of the INVITE, when the call is faster than it


def since(*, minutes: float = 0, hours: float = 0) -> str:
    """ISO time that long ago (the store's time format)."""
    return (datetime.now(UTC) - timedelta(minutes=minutes, hours=hours)).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class Earlier:
    """What the store held of the caller's position when the call started: AML messages no
    incident took yet (id, position), and the last real position of an earlier call."""

    aml: list[tuple[int, Location]] = field(default_factory=list)
    last: StoredLocation | None = None


@dataclass(frozen=True)
class Attached:
    """Where an AML message went."""

    incident_id: int | None
    live_channel: str | None


class Locator:
    def __init__(self, store: AsyncStore, unreadable: Callable[[], None] | None = None, hep: HepStore | None = None) -> None:
        self.store = store
        self.hep = hep  # the INVITEs, for PIDF-LO by value (Asterisk never parses it: geolocation.conf)
        self.unreadable = unreadable or (lambda: None)  # counted in the metrics
        self._boundaries: dict[str, Boundaries | None] = {}

    def boundaries(self, plan: Plan) -> Boundaries | None:
        path = plan.location.boundaries_path(plan.source)
        if path is None:
            return None
        key = str(path)
        if key not in self._boundaries:
            try:
                self._boundaries[key] = load_boundaries(Path(path))
            except (OSError, ValueError) as exc:
                log.error("kecamatan boundaries %s unusable, positions are kept without kecamatan: %s", path, exc)
                self._boundaries[key] = None
        return self._boundaries[key]

    def is_good(self, location: Location, plan: Plan) -> bool:
        return location.has_position and location.radius_m is not None and location.radius_m <= plan.location.good_radius_m

    async def keep(self, incident_id: int, location: Location, plan: Plan, *, hint: bool = False) -> str:
        """Store one position with its kecamatan; return how the operator will read it."""
        kecamatan = location.detail.get("kecamatan") or None  # a place the caller named
        bounds = self.boundaries(plan)
        if bounds is not None and location.has_position and kecamatan is None:
            assert location.latitude is not None and location.longitude is not None
            kecamatan = bounds.locate(location.latitude, location.longitude)
        text = describe(location, kecamatan, lang=plan.default_language, boundaries_known=bounds is not None)
        # Waits while the store is healthy (an AML door answers "accepted" once it is stored);
        # kept and replayed, returning at once, while it fails.
        await self.store.write("add_location", incident_id, wait=True, location=location_args(location), kecamatan=kecamatan,
                               description=text, hint=hint, at=now())
        log.info("incident %d: location %s", incident_id, text)
        return text

    async def from_invite(self, ari: CallAri, channel_id: str, handed: Mapping[str, Any] | None = None) -> list[Location]:
        """Positions the INVITE carried: PIDF-LO by value (HEP copy), Geolocation URIs, the serving cell.

        `handed` is the StasisStart channel's variables: the headers the dialplan copied
        (ivr.location.invite_headers); without them each header is asked of Asterisk."""
        headers = _InviteHeaders(ari, channel_id, handed or {})
        found: list[Location] = []
        call_id = await headers.read(CALL_ID_HEADER) if self.hep is not None else None
        if call_id and self.hep is not None:
            invite = await self.hep.invite(call_id, wait=INVITE_WAIT_S)
            if invite is None:
                log.warning("[%s] no HEP copy of the INVITE (Call-ID %s): PIDF-LO by value not read", channel_id, call_id[:100])
            else:
                try:
                    pidf = multipart_pidf(sip_body(invite), sip_header(invite, "Content-Type", "c"))
                    if pidf is not None:
                        found += parse_pidf(pidf)
                except LocationParseError as exc:
                    log.warning("[%s] PIDF-LO from the INVITE skipped: %s", channel_id, exc)
                    self.unreadable()
        header = await headers.read(GEOLOCATION_HEADER)
        if header:
            for uri in _geolocation_uris(header):
                if not uri.startswith("cid:"):
                    found.append(Location(source="reference", shape="reference", uri=uri[:500]))
        pani = await headers.read(PANI_HEADER)
        if pani:
            try:
                cell = parse_pani(pani)
            except LocationParseError as exc:
                log.warning("[%s] P-Access-Network-Info skipped: %s", channel_id, exc)
                self.unreadable()
                cell = None
            if cell is not None:
                row = await self.store.run(lambda s: s.cell(cell.key))
                if row is None:
                    log.info("[%s] serving cell %s is not in the cell table", channel_id, cell.key)
                    found.append(Location(source="cell", shape="cell", method="Cell", detail={"cell": cell.key, "found": "no"}))
                else:
                    found.append(_cell_location(row))
        return found

    @staticmethod
    def earlier(s: IncidentStore, incident_id: int, caller: str, plan: Plan) -> Earlier:
        """What the store holds of the number's position before this call (on the store's
        thread: a caller reads it in the same store call as the caller's history)."""
        if not caller:
            return Earlier()
        aml = s.unmatched_aml(caller, since=since(minutes=plan.location.aml_window_minutes))
        last = (s.last_location(caller, since=since(hours=plan.location.repeat_hours), before_incident=incident_id)
                if plan.location.repeat_hours > 0 else None)
        return Earlier(aml, last)

    @staticmethod
    def repeat_hint(last: StoredLocation | None) -> Location | None:
        """The same number's last position in the plan's window (`Earlier.last`), as a hint only."""
        if last is None:
            return None
        return Location(
            source="repeat", latitude=last.latitude, longitude=last.longitude, radius_m=last.radius_m, shape=last.shape,
            method=last.method, measured_at=last.received_at,
            detail={"from_incident": str(last.incident_id), "from_source": last.source},
        )

    async def attach_aml(self, message: AmlMessage, *, gateway: str, kind: str, raw: str, live: dict[str, str],
                         plan_for: Any) -> Attached:
        """Put an AML message on the live call from its number, or the recent one; else keep it for the call to come."""
        try:
            number = normalise_msisdn(message.number) if message.number else ""
        except LocationParseError:
            number = ""
        channel = live.get(number) if number else None
        incident = None
        if number:
            window = max(p.location.aml_window_minutes for p in plan_for())
            incident = await self.store.run(lambda s: s.recent_incident_from(number, since=since(minutes=window)))
        incident_id = incident.id if incident is not None else None
        await self.store.run(
            lambda s: s.add_aml(gateway=gateway, number=number, kind=kind, location=message.location, raw=raw, incident_id=incident_id)
        )
        if incident is not None and message.location is not None:
            plan = next((p for p in plan_for() if p.id == incident.plan_id), plan_for()[0])
            await self.keep(incident.id, message.location, plan)
        return Attached(incident_id, channel if incident is not None else None)

    async def pending_aml(self, incident_id: int, items: list[tuple[int, Location]]) -> list[Location]:
        """AML that arrived before the call reached the app (`Earlier.aml`): attach it now."""
        out = []
        for aml_id, location in items:
            await self.store.write("match_aml", incident_id, aml_id=aml_id)
            out.append(location)
        return out


DEREFERENCE_TIMEOUT_S = 2.0
DEREFERENCE_MAX_BYTES = 64_000


async def dereference(uri: str) -> list[Location]:
    """Fetch a PIDF-LO by reference (RFC 6442): HTTPS only, a short timeout, a small body.

    Anything else (another scheme, a slow or large answer, a bad document) is logged and
    gives nothing; the caller never waits on it.
    """
    import aiohttp

    from ivr.location.pidf import parse_pidf

    if not uri.startswith("https://"):
        log.info("Geolocation URI %s not fetched: only https:// is dereferenced", uri[:100])
        return []
    try:
        timeout = aiohttp.ClientTimeout(total=DEREFERENCE_TIMEOUT_S)
        async with aiohttp.ClientSession(timeout=timeout) as session, session.get(uri) as resp:
            if resp.status != 200:
                log.warning("Geolocation URI %s answered %d", uri[:100], resp.status)
                return []
            body = await resp.content.read(DEREFERENCE_MAX_BYTES + 1)
        if len(body) > DEREFERENCE_MAX_BYTES:
            log.warning("Geolocation URI %s: document larger than %d bytes, skipped", uri[:100], DEREFERENCE_MAX_BYTES)
            return []
        return [dataclasses.replace(loc, uri=uri[:500]) for loc in parse_pidf(body)]
    except (aiohttp.ClientError, TimeoutError, LocationParseError) as exc:
        log.warning("Geolocation URI %s not usable: %s", uri[:100], exc)
        return []


class _InviteHeaders:
    """The caller's INVITE headers: the dialplan's copies when the StasisStart carried them
    (its Call-ID copy is never empty on a SIP call), else one ARI request per header."""

    def __init__(self, ari: CallAri, channel_id: str, handed: Mapping[str, Any]) -> None:
        self.ari, self.channel_id = ari, channel_id
        self.copies = {header: handed.get(var) for var, header in INVITE_HEADER_VARIABLES.items()}
        self.copied = bool(self.copies[CALL_ID_HEADER])

    async def read(self, header: str) -> str | None:
        if self.copied:
            value = self.copies.get(header)
            return value if isinstance(value, str) and value else None
        try:
            return await self.ari.get_variable(self.channel_id, f"PJSIP_HEADER(read,{header})")
        except AriError as exc:
            log.debug("[%s] %s unreadable: %s", self.channel_id, header, exc)
            return None


def _geolocation_uris(header: str) -> list[str]:
    """URIs of a Geolocation header: <uri>[;params], <uri2>..."""
    out = []
    for part in header.split(","):
        part = part.strip()
        if part.startswith("<") and ">" in part:
            out.append(part[1 : part.index(">")])
    return out


def _cell_location(row: dict[str, Any]) -> Location:
    return Location(
        source="cell", latitude=row["latitude"], longitude=row["longitude"], radius_m=row["radius_m"], shape="cell",
        method="Cell", detail={"cell": row["key"], "name": row.get("name") or ""},
    )
