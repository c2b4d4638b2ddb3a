"""A recorded fake of the ARI a call's controller uses (ari_app.calls.ports.CallAri), for
unit tests of edge cases: it keeps every request in order and answers from what the test
set (an AriError for a method, once or always). The real stack stays the proof.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ari_app.ari.errors import AriError, error_for
from ari_app.ari.events import Channel

APP = "ivr112"


@dataclass(frozen=True)
class Call:
    """One request the controller made: the method's name and its arguments."""

    name: str
    args: dict[str, Any] = field(default_factory=dict)


def ari_error(status: int, *, channel_id: str | None = None, method: str = "POST", path: str = "/channels") -> AriError:
    """The typed error the real client raises for `status` (404 AriNotFound, 422, 500...)."""
    return error_for(method, path, status, f"fake {status}", channel_id)


class FakeCallAri:
    def __init__(self) -> None:
        self.app = APP
        self.calls: list[Call] = []
        self.gone: set[str] = set()  # channels Asterisk no longer has
        self.playing: set[str] = set()  # playbacks Asterisk still has
        self._errors: dict[str, list[AriError | None]] = {}
        self._always: dict[str, AriError] = {}
        self._playbacks = itertools.count(1)

    # What the test sets ----------------------------------------------------------------

    def fail(self, name: str, error: AriError, *, always: bool = False, after: int = 0) -> None:
        """Make the next `name` request (or every one) raise `error`; with `after`, let that
        many `name` requests succeed first."""
        if always:
            self._always[name] = error
        else:
            self._errors.setdefault(name, []).extend([None] * after + [error])

    def named(self, name: str) -> list[Call]:
        """The requests called `name`, oldest first."""
        return [c for c in self.calls if c.name == name]

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.calls]

    def _record(self, request: str, /, **args: Any) -> None:
        self.calls.append(Call(request, args))
        queued = self._errors.get(request)
        if queued:
            error = queued.pop(0)
            if error is not None:
                raise error
        if request in self._always:
            raise self._always[request]

    # CallAri ---------------------------------------------------------------------------

    async def answer(self, channel_id: str) -> None:
        self._record("answer", channel_id=channel_id)

    async def hangup(self, channel_id: str, reason: str = "normal") -> None:
        self._record("hangup", channel_id=channel_id)

    async def play(self, channel_id: str, media: Sequence[str], *, playback_id: str | None = None, lang: str | None = None) -> str:
        self._record("play", channel_id=channel_id, media=list(media))
        playback = playback_id or f"playback-{next(self._playbacks)}"
        self.playing.add(playback)
        return playback

    async def stop_playback(self, playback_id: str, *, channel_id: str | None = None) -> None:
        self._record("stop_playback", playback_id=playback_id)
        self.playing.discard(playback_id)

    async def playback_exists(self, playback_id: str, *, channel_id: str | None = None) -> bool:
        self._record("playback_exists", playback_id=playback_id)
        return playback_id in self.playing

    async def continue_in_dialplan(self, channel_id: str, *, context: str | None = None, extension: str | None = None,
                                   priority: int | None = None, label: str | None = None) -> None:
        self._record("continue_in_dialplan", channel_id=channel_id, context=context, extension=extension)

    async def get_variable(self, channel_id: str, name: str) -> str | None:
        self._record("get_variable", channel_id=channel_id, name=name)
        return None

    async def set_variable(self, channel_id: str, name: str, value: str) -> None:
        self._record("set_variable", channel_id=channel_id, name=name, value=value)

    async def channel_gone(self, channel_id: str) -> bool:
        self._record("channel_gone", channel_id=channel_id)
        return channel_id in self.gone

    async def subscribe(self, channel_id: str) -> None:
        self._record("subscribe", channel_id=channel_id)

    async def ring(self, channel_id: str) -> None:
        self._record("ring", channel_id=channel_id)

    async def ring_stop(self, channel_id: str) -> None:
        self._record("ring_stop", channel_id=channel_id)

    async def record(self, channel_id: str, name: str, *, max_duration_s: int, max_silence_s: int, format: str = "wav",
                     terminate_on: str = "#") -> None:
        self._record("record", channel_id=channel_id, name=name, max_duration_s=max_duration_s)

    async def stop_recording(self, name: str, *, channel_id: str | None = None) -> None:
        self._record("stop_recording", name=name)

    async def originate(self, endpoint: str, *, app: str | None = None, app_args: str | None = None, context: str | None = None,
                        extension: str | None = None, priority: int | None = None, label: str | None = None,
                        caller_id: str | None = None, timeout_s: int | None = None, channel_id: str | None = None,
                        other_channel_id: str | None = None, originator: str | None = None,
                        variables: Mapping[str, str] | None = None) -> Channel:
        self._record("originate", endpoint=endpoint, app_args=app_args, caller_id=caller_id, timeout_s=timeout_s,
                     channel_id=channel_id, variables=dict(variables or {}))
        return Channel(id=channel_id or "", name=endpoint)

    async def create_bridge(self, type: str = "mixing", bridge_id: str | None = None, *, name: str | None = None) -> str:
        self._record("create_bridge", bridge_id=bridge_id)
        return bridge_id or "bridge"

    async def add_channel(self, bridge_id: str, channel_id: str) -> None:
        self._record("add_channel", bridge_id=bridge_id, channel_id=channel_id)

    async def destroy_bridge(self, bridge_id: str) -> None:
        self._record("destroy_bridge", bridge_id=bridge_id)
