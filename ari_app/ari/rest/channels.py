"""ARI requests on channels: answer, hang up, dial, ring, variables, leave Stasis."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from ari_app.ari.errors import AriNotFound, AriServerError
from ari_app.ari.event_parsing import parse_channel
from ari_app.ari.events import Channel
from ari_app.ari.rest.transport import AriRest, seg

_log = logging.getLogger(__name__)

# PJSIP_HEADER(read,...) of a header the INVITE did not carry answers 500, not 404.
_MISSING_VARIABLE_STATUS = 500


class ChannelRequests(AriRest):
    """The /channels resource."""

    async def answer(self, channel_id: str) -> None:
        """Answer the channel."""
        path = f"/channels/{seg(channel_id)}/answer"
        await self.request("POST", path, channel_id=channel_id)

    async def hangup(self, channel_id: str, reason: str = "normal") -> None:
        """Hang the channel up; a channel that is already gone counts as done."""
        path = f"/channels/{seg(channel_id)}"
        try:
            await self.request("DELETE", path, params={"reason": reason}, channel_id=channel_id)
        except AriNotFound:
            _log.debug("channel %s: already gone when hanging up", channel_id)

    async def continue_in_dialplan(
        self,
        channel_id: str,
        *,
        context: str | None = None,
        extension: str | None = None,
        priority: int | None = None,
        label: str | None = None,
    ) -> None:
        """Let the channel leave Stasis; with no arguments it resumes after Stasis()."""
        await self.request(
            "POST",
            f"/channels/{seg(channel_id)}/continue",
            params={
                "context": context,
                "extension": extension,
                "priority": priority,
                "label": label,
            },
            channel_id=channel_id,
        )

    async def get_variable(self, channel_id: str, name: str) -> str | None:
        """Return a channel variable or function value; None when it is not set.

        Also None when the channel is gone (404) or Asterisk answers 500, which is how
        it reports a SIP header the call did not carry.
        """
        try:
            result = await self.request(
                "GET",
                f"/channels/{seg(channel_id)}/variable",
                params={"variable": name},
                channel_id=channel_id,
            )
        except AriNotFound:
            return None
        except AriServerError as exc:
            if exc.status == _MISSING_VARIABLE_STATUS:
                return None
            raise
        if isinstance(result, dict) and isinstance(result.get("value"), str):
            return str(result["value"])
        return None

    async def set_variable(self, channel_id: str, name: str, value: str) -> None:
        """Set a channel variable."""
        await self.request(
            "POST",
            f"/channels/{seg(channel_id)}/variable",
            params={"variable": name, "value": value},
            channel_id=channel_id,
        )

    async def get_channel(self, channel_id: str) -> Channel:
        """Return the channel's current details (AriNotFound once it is gone)."""
        path = f"/channels/{seg(channel_id)}"
        return parse_channel(await self.request("GET", path, channel_id=channel_id))

    async def channel_gone(self, channel_id: str) -> bool:
        """True when Asterisk no longer has this channel (404); other failures raise."""
        try:
            await self.get_channel(channel_id)
        except AriNotFound:
            return True
        return False

    async def list_channels(self) -> list[Channel]:
        """Return every channel Asterisk has, in or out of our application."""
        result = await self.request("GET", "/channels")
        return [parse_channel(item) for item in result or [] if isinstance(item, dict)]

    async def originate(
        self,
        endpoint: str,
        *,
        app: str | None = None,
        app_args: str | None = None,
        context: str | None = None,
        extension: str | None = None,
        priority: int | None = None,
        label: str | None = None,
        caller_id: str | None = None,
        timeout_s: int | None = None,
        channel_id: str | None = None,
        other_channel_id: str | None = None,
        originator: str | None = None,
        variables: Mapping[str, str] | None = None,
    ) -> Channel:
        """Dial `endpoint` (e.g. "PJSIP/police"); return the new channel.

        Without `extension` the answered channel enters `app` (default: our own app).
        """
        if extension is None and app is None:
            app = self._app
        result = await self.request(
            "POST",
            "/channels",
            params={
                "endpoint": endpoint,
                "app": app,
                "appArgs": app_args,
                "context": context,
                "extension": extension,
                "priority": priority,
                "label": label,
                "callerId": caller_id,
                "timeout": timeout_s,
                "channelId": channel_id,
                "otherChannelId": other_channel_id,
                "originator": originator,
            },
            json={"variables": dict(variables)} if variables else None,
            channel_id=channel_id or originator,
        )
        return parse_channel(result)

    async def ring(self, channel_id: str) -> None:
        """Play ringback on the channel (until ring_stop, a bridge or a playback)."""
        await self.request("POST", f"/channels/{seg(channel_id)}/ring", channel_id=channel_id)

    async def ring_stop(self, channel_id: str) -> None:
        """Stop the channel's ringback."""
        await self.request("DELETE", f"/channels/{seg(channel_id)}/ring", channel_id=channel_id)
