"""One call's controller on the recorded fakes (tests/unit/fake_call_ari.py and
fake_call_store.py): a small plan (a menu whose 1 dials the police's two trunks, whose 2
reaches the operators, with a location question), and helpers that feed the controller
the ARI events Asterisk would send."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ari_app.ari import events as ev
from ari_app.asterisk.layout import Layout
from ari_app.calls.controller import CallController
from ari_app.calls.hep import LegProgress
from ari_app.calls.locating import Locator
from ivr.agency_data import Centre
from ivr.plan import Plan, parse_plan
from ivr.yamlsrc import load_yaml
from tests.unit.fake_call_ari import FakeCallAri
from tests.unit.fake_call_store import FakeCallStore

CALLER = "081234567890"
CHANNEL = "caller-1"
PLAN = """
service: {id: t, name: T, numbers: ["112"], languages: [id]}
prompts:
  greeting: {text: {id: Halo}}
  main: {text: {id: Tekan satu}}
  where: {text: {id: Di mana}}
entry: {greeting: [greeting], then: {menu: main}}
location: {ask_prompt: where, record_seconds: 15, silence_seconds: 3}
menus:
  main:
    prompts: [main]
    timeout: 4
    no_input_retries: 0
    wrong_input_retries: 0
    options:
      "1": {agency: police}
      "2": {queue: ops}
    no_input: {queue: ops}
    wrong_input: {queue: ops}
queues: {ops: {}}
priority: {urgent_agencies: [police]}
agencies:
  police:
    label: Polisi
    trunks:
      - {host: 10.0.0.1, port: 5071, number: "110", ring_timeout: 20, response_timeout: 2}
      - {host: 10.0.0.2, port: 5072, number: "110", ring_timeout: 20, response_timeout: 2}
    on_failure: {queue: ops}
"""


def plan_under_test() -> Plan:
    return parse_plan(load_yaml(PLAN, "t.yaml"), "t.yaml")


class Plans:
    def __init__(self, plan: Plan) -> None:
        self.plan = plan

    def plan_for(self, plan_id: str) -> Plan:
        return self.plan


class FakePeers:
    """What the service keeps across calls, recorded."""

    def __init__(self) -> None:
        self.claimed: dict[str, str] = {}
        self.progress: dict[str, LegProgress] = {}
        self.changes: list[tuple[int, str]] = []
        self.started: list[str] = []
        self.ended: list[str] = []
        self.declined: list[str] = []
        self.recordings: dict[str, str] = {}

    def claim_peer(self, peer_id: str, caller_id: str) -> None:
        self.claimed[peer_id] = caller_id

    def call_started(self, number: str, channel_id: str) -> None:
        self.started.append(channel_id)

    def call_ended(self, number: str, channel_id: str) -> None:
        self.ended.append(channel_id)

    def recording_started(self, name: str, channel_id: str) -> None:
        self.recordings[name] = channel_id

    def incident_changed(self, incident_id: int, kind: str, detail: dict[str, str]) -> None:
        self.changes.append((incident_id, kind))

    def announcement_sound(self, language: str) -> str | None:
        return None

    def person_wanted(self) -> None:
        pass

    def person_declined(self, channel_id: str) -> None:
        self.declined.append(channel_id)

    def centre(self, plan: Plan) -> Centre:
        return Centre(name=plan.name, domain="112.test.invalid", base_url="http://127.0.0.1:8112")

    def leg_progress(self, leg_id: str) -> LegProgress | None:
        return self.progress.get(leg_id)


def channel(channel_id: str = CHANNEL, *, state: str = "Up", variables: dict[str, str] | None = None) -> ev.Channel:
    return ev.Channel(id=channel_id, name=f"PJSIP/carrier-a-{channel_id}", state=state, caller_number=CALLER, language="id",
                      variables=variables or {})


class Call:
    """A controller for one caller, and the events Asterisk would send it."""

    def __init__(self, folder: Path) -> None:
        self.ari = FakeCallAri()
        self.store = FakeCallStore(folder)
        self.peers = FakePeers()
        self.posted: list[Any] = []
        self.plan = plan_under_test()
        self.controller = CallController(
            CHANNEL, ari=self.ari, store=self.store, plans=Plans(self.plan), layout=Layout(folder, "t"), post=self.posted.append,
            peers=self.peers, locator=Locator(self.store),  # type: ignore[arg-type]
        )

    async def send(self, event: Any) -> None:
        await self.controller.handle(event)

    async def start(self, *, state: str = "Up", variables: dict[str, str] | None = None) -> None:
        """The caller enters Stasis; "Up": answered by the plan's dialplan first; `variables`:
        the channel variables ari.conf's channelvars hands in the StasisStart."""
        await self.send(ev.StasisStart(channel=channel(state=state, variables=variables), args=("t", "112")))

    async def prompt_done(self) -> None:
        playback = self.controller.playback_id
        assert playback is not None, "no prompt is playing"
        await self.send(ev.PlaybackFinished(playback_id=playback))

    async def press(self, digit: str) -> None:
        await self.send(ev.ChannelDtmfReceived(channel=channel(), digit=digit))

    async def to_menu(self) -> None:
        """Greeting heard, the location question heard, nothing said: the menu plays."""
        await self.start()
        await self.prompt_done()  # greeting
        await self.prompt_done()  # where are you: the recording starts
        name = self.controller.recording_name
        assert name is not None
        await self.send(ev.RecordingFinished(name=name, duration=3))

    async def hang_up(self) -> None:
        await self.send(ev.ChannelHangupRequest(channel=channel(), cause=16))
        await self.send(ev.StasisEnd(channel=channel()))
        await self.send(ev.ChannelDestroyed(channel=channel(), cause=16, cause_txt="Normal Clearing"))

    def leg(self, n: int) -> str:
        return f"{CHANNEL}-police-{n}"
