"""The push's sender with a real store (SQLite) and real receivers (aiohttp on loopback), no
Asterisk: one agency's system being down holds only its own line, in order; a redirect
is a failure, never followed; a change nobody can see makes no version."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from aiohttp import web

from ari_app.agency_push import AgencyPush
from ari_app.plan_reload import PlanRegistry
from ari_app.storage import AsyncStore
from ari_app.store import open_store
from ivr import agency_push as push
from ivr.agency_data import centre_of
from ivr.plan import PlanSet, parse_plan
from ivr.secrets import Secrets
from ivr.settings import Settings
from ivr.yamlsrc import load_yaml
from tests.support.net import free_port
from tests.support.poll import eventually
from tests.unit.test_validate import BASE

AGENCIES = """\
  police:
    trunks: [{host: 127.0.0.1, port: 5071, number: "110"}]
    on_failure: {queue: ops}
    webhook: http://127.0.0.1:POLICE/eido
  fire:
    trunks: [{host: 127.0.0.1, port: 5072, number: "113"}]
    on_failure: {queue: ops}
    webhook: http://127.0.0.1:FIRE/eido
"""


class Hook:
    """A receiver: keeps what it took; `answer` is the status it gives (a 307 names another host)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.answer = 200
        self.redirect_to = ""
        self.got: list[tuple[int, dict[str, str], bytes]] = []
        self.runner: web.AppRunner | None = None

    async def take(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.got.append((self.answer, dict(request.headers), body))
        if self.answer == 307:
            raise web.HTTPTemporaryRedirect(self.redirect_to)
        return web.Response(status=self.answer)

    async def start(self, handler: Any = None) -> None:
        app = web.Application()
        app.router.add_post("/eido", handler or self.take)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    def taken(self) -> list[dict[str, str]]:
        return [headers for status, headers, _body in self.got if status == 200]


def two_agencies(police: Hook, fire: Hook) -> str:
    """The test plan with the police's and the fire service's webhooks on these receivers."""
    return BASE.replace("""  police:
    trunks: [{host: 127.0.0.1, port: 5071, number: "110"}]
    on_failure: {queue: ops}
""", AGENCIES.replace("POLICE", str(police.port)).replace("FIRE", str(fire.port)))


async def sender_for(text: str, tmp_path: Path, **timing: float) -> tuple[AgencyPush, AsyncStore]:
    """A sender over an opened SQLite store in `tmp_path`, serving the plan `text`."""
    plans = PlanRegistry(PlanSet((parse_plan(load_yaml(text, "p.yaml"), "p.yaml"),)))
    settings = Settings(data_dir=str(tmp_path), **timing)
    store = AsyncStore(tmp_path)
    await store.open()
    secrets = Secrets("a", "b", "c", agency_webhook_secrets={"police": "police-key", "fire": "fire-key"})
    return AgencyPush(settings, secrets, store, plans, lambda plan: centre_of(plan.name, settings)), store


async def test_one_agency_down_holds_only_its_own_line_and_a_redirect_is_never_followed(tmp_path: Path) -> None:
    police, fire, elsewhere = Hook(), Hook(), Hook()
    for hook in (police, fire, elsewhere):
        await hook.start()
    sender, store = await sender_for(two_agencies(police, fire), tmp_path, agency_push_retry_s=0.05,
                                     agency_push_retry_max_s=0.2, agency_push_timeout_s=2)
    try:
        incident = await store.open_incident(channel_id="c1", plan_id="t", caller_number="0812", called_number="112")
        await store.run(lambda s: s.add_event(incident.id, "trunk_dial", {"agency": "police"}))
        await store.run(lambda s: s.add_event(incident.id, "trunk_dial", {"agency": "fire"}))
        police.answer, police.redirect_to = 307, f"http://127.0.0.1:{elsewhere.port}/eido"  # a failure; its line waits
        sender.changed(incident.id)
        task = asyncio.create_task(sender.run())
        try:
            await eventually(lambda: len(fire.taken()) == 1, what="the fire service's first version")
            await eventually(lambda: len(police.got) >= 2, what="the police's webhook tried again")
            assert police.taken() == [] and elsewhere.got == []  # the redirect was not followed
            # Two more changes: the fire service gets them at once; a step nobody sees adds nothing.
            await store.run(lambda s: s.update(incident.id, notes="Rumah terbakar"))
            sender.changed(incident.id)
            await store.run(lambda s: s.add_event(incident.id, "prompt", {"name": "hold"}))
            sender.changed(incident.id)
            await store.run(lambda s: s.update(incident.id, ended_at="2026-12-01T10:00:00+00:00"))
            sender.changed(incident.id)
            await eventually(lambda: len(fire.taken()) == 3, what="the fire service's three versions")
            assert police.taken() == []
            police.answer = 200  # back: the police get theirs, in order, once each
            await eventually(lambda: len(police.taken()) == 3, what="the police's three versions", within_s=10)
        finally:
            task.cancel()
    finally:
        await store.close()
        for hook in (police, fire, elsewhere):
            assert hook.runner is not None
            await hook.runner.cleanup()
    for hook, key in ((police, "police-key"), (fire, "fire-key")):
        taken = [(h, b) for status, h, b in hook.got if status == 200]
        assert [int(h[push.VERSION_HEADER]) for h, _b in taken] == [1, 2, 3]
        assert all(push.verify(key, timestamp=h[push.TIMESTAMP_HEADER], body=b, given=h[push.SIGNATURE_HEADER],
                               now=float(h[push.TIMESTAMP_HEADER])) for h, b in taken)
        last = json.loads(taken[-1][1])
        assert last["notesComponent"][0]["noteText"] == "Rumah terbakar"
        assert last["incidentComponent"]["incidentStatusCommonRegistryText"] == "Closed"


async def test_a_receiver_that_answers_too_late_is_sent_the_same_version_again(tmp_path: Path) -> None:
    """A timeout is a failure even if the receiver kept the POST: it gets the version again, and dedupes on it."""
    slow = Hook()
    first = asyncio.Event()

    async def late(request: web.Request) -> web.Response:
        slow.got.append((200, dict(request.headers), await request.read()))
        if not first.is_set():
            first.set()
            await asyncio.sleep(2)  # longer than agency_push_timeout_s: the sender gives up on this answer
        return web.Response(status=200)

    await slow.start(late)
    text = BASE.replace("    on_failure: {queue: ops}\n", f"    on_failure: {{queue: ops}}\n    webhook: http://127.0.0.1:{slow.port}/eido\n", 1)
    sender, store = await sender_for(text, tmp_path, agency_push_retry_s=0.05, agency_push_retry_max_s=0.2,
                                     agency_push_timeout_s=0.3)
    task = None
    try:
        incident = await store.open_incident(channel_id="c1", plan_id="t", caller_number="0812", called_number="112")
        await store.run(lambda s: s.add_event(incident.id, "trunk_dial", {"agency": "police"}))
        sender.changed(incident.id)
        task = asyncio.create_task(sender.run())
        sent = await eventually(lambda: [p for p in _pushes(tmp_path) if p.sent_at], what="version 1 marked sent", within_s=10)
    finally:
        if task is not None:
            task.cancel()
        await store.close()
        await slow.runner.cleanup()
    assert [p.version for p in sent] == [1]
    versions = [int(h[push.VERSION_HEADER]) for _s, h, _b in slow.got]
    assert versions == [1, 1]  # the answer lost to the timeout, then taken
    assert sent[0].attempts == 1  # one failed try (the timeout) before it was taken


def _pushes(tmp_path: Path) -> list[Any]:
    """The police's outbox rows, read as another reader of the store's file would."""
    s = open_store(tmp_path)
    try:
        return s.pushes("police")
    finally:
        s.close()


async def test_a_receiver_that_hangs_delays_no_other_agency(tmp_path: Path) -> None:
    """While the police's system holds a POST open until the timeout, the fire service is sent a new version."""
    police, fire = Hook(), Hook()
    held, release = asyncio.Event(), asyncio.Event()

    async def hang(request: web.Request) -> web.Response:
        police.got.append((0, dict(request.headers), await request.read()))
        held.set()
        await release.wait()  # answers only when the test is over
        return web.Response(status=200)

    await police.start(hang)
    await fire.start()
    sender, store = await sender_for(two_agencies(police, fire), tmp_path, agency_push_retry_s=0.05,
                                     agency_push_retry_max_s=0.2, agency_push_timeout_s=20)
    task = asyncio.create_task(sender.run())
    try:
        incident = await store.open_incident(channel_id="c1", plan_id="t", caller_number="0812", called_number="112")
        await store.run(lambda s: s.add_event(incident.id, "trunk_dial", {"agency": "police"}))
        await store.run(lambda s: s.add_event(incident.id, "trunk_dial", {"agency": "fire"}))
        sender.changed(incident.id)
        await eventually(held.is_set, what="the police's system holding the first POST")
        await store.run(lambda s: s.update(incident.id, notes="Dua orang terjebak"))
        sender.changed(incident.id)
        await eventually(lambda: len(fire.taken()) == 2, what="the fire service's second version")
        assert held.is_set() and len(police.got) == 1  # the police's first POST still unanswered
    finally:
        release.set()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await store.close()
        for hook in (police, fire):
            assert hook.runner is not None
            await hook.runner.cleanup()
