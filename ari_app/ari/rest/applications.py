"""ARI requests about our application itself, and whether Asterisk answers at all."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from ari_app.ari.rest.transport import AriRest, seg


class ApplicationRequests(AriRest):
    """The /applications resource for our app, and /asterisk/ping."""

    async def application(self) -> dict[str, Any]:
        """Return our application's ARI record (`channel_ids`, `bridge_ids`, ...)."""
        result = await self.request("GET", f"/applications/{seg(self._app)}")
        return result if isinstance(result, dict) else {}

    async def subscribe(self, channel_id: str) -> None:
        """Subscribe our application to the channel's events, so its end (ChannelDestroyed)
        still reaches the app once it has left Stasis (AriNotFound/AriUnprocessable: gone)."""
        await self.request(
            "POST",
            f"/applications/{seg(self._app)}/subscription",
            params={"eventSource": f"channel:{channel_id}"},
            channel_id=channel_id,
        )

    async def filter_events(self, allowed: Collection[str]) -> None:
        """Have Asterisk send our application only these event types (its event filter:
        the others are neither written to the WebSocket nor decoded here)."""
        await self.request("PUT", f"/applications/{seg(self._app)}/eventFilter",
                           json={"allowed": [{"type": name} for name in sorted(allowed)]})

    async def started_at(self) -> datetime | None:
        """When this Asterisk started (GET /asterisk/info), None when it does not say."""
        result = await self.request("GET", "/asterisk/info", params={"only": "status"})
        try:
            return datetime.fromisoformat(str(result["status"]["startup_time"]))
        except (KeyError, TypeError, ValueError):
            return None

    async def ping(self) -> dict[str, Any]:
        """Return Asterisk's answer to GET /asterisk/ping (AriUnavailable if none)."""
        result = await self.request("GET", "/asterisk/ping")
        return result if isinstance(result, dict) else {}
