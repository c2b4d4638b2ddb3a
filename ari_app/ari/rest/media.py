"""ARI requests on what a channel hears and says: playbacks and recordings."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from ari_app.ari.errors import AriNotFound
from ari_app.ari.rest.transport import AriRest, seg
from ari_app.unique import new_id

_log = logging.getLogger(__name__)


class MediaRequests(AriRest):
    """Playbacks on channels, and recordings of channels (/playbacks, /recordings)."""

    async def play(
        self,
        channel_id: str,
        media: Sequence[str],
        *,
        playback_id: str | None = None,
        lang: str | None = None,
    ) -> str:
        """Start one playback of all `media` URIs in turn; return its playback id.

        The id is chosen here when not given, so the caller knows it before the answer.
        """
        if not media:
            raise ValueError(f"channel {channel_id}: play() needs at least one media URI, e.g. 'sound:hello-world'")
        for uri in media:
            if "," in uri:
                raise ValueError(
                    f"channel {channel_id}: media URI {uri!r} contains a comma, "
                    "which ARI reads as a list separator; rename the prompt"
                )
        wanted_id = playback_id or new_id()
        result = await self.request(
            "POST",
            f"/channels/{seg(channel_id)}/play",
            # ARI takes a comma-joined media list as one playback (one PlaybackFinished).
            params={"media": ",".join(media), "playbackId": wanted_id, "lang": lang},
            channel_id=channel_id,
        )
        if isinstance(result, dict) and isinstance(result.get("id"), str):
            return str(result["id"])
        return wanted_id

    async def stop_playback(self, playback_id: str, *, channel_id: str | None = None) -> None:
        """Stop a playback (barge-in); one that already ended counts as done."""
        path = f"/playbacks/{seg(playback_id)}"
        try:
            await self.request("DELETE", path, channel_id=channel_id)
        except AriNotFound:
            _log.debug("channel %s: playback %s already over", channel_id, playback_id)

    async def playback_exists(self, playback_id: str, *, channel_id: str | None = None) -> bool:
        """True while Asterisk still has this playback (False once it ended: 404)."""
        try:
            await self.request("GET", f"/playbacks/{seg(playback_id)}", channel_id=channel_id)
        except AriNotFound:
            return False
        return True

    async def record(
        self,
        channel_id: str,
        name: str,
        *,
        max_duration_s: int,
        max_silence_s: int,
        format: str = "wav",  # ARI's own parameter name
        terminate_on: str = "#",
    ) -> None:
        """Start recording the caller's channel into `name` (overwriting), no beep; its end
        comes as RecordingFinished or RecordingFailed."""
        await self.request(
            "POST",
            f"/channels/{seg(channel_id)}/record",
            params={
                "name": name, "format": format, "maxDurationSeconds": max_duration_s, "maxSilenceSeconds": max_silence_s,
                "ifExists": "overwrite", "beep": False, "terminateOn": terminate_on,
            },
            channel_id=channel_id,
        )

    async def stop_recording(self, name: str, *, channel_id: str | None = None) -> None:
        """End a live recording early; the file so far is kept."""
        await self.request("POST", f"/recordings/live/{seg(name)}/stop", channel_id=channel_id)
