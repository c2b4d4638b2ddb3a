"""ARI requests on bridges: create, join, record the mix, destroy."""

from __future__ import annotations

import logging

from ari_app.ari.errors import AriNotFound, AriServerError
from ari_app.ari.rest.transport import AriRest, seg

_log = logging.getLogger(__name__)


class BridgeRequests(AriRest):
    """The /bridges resource."""

    async def create_bridge(
        self,
        type: str = "mixing",  # ARI's own parameter name
        bridge_id: str | None = None,
        *,
        name: str | None = None,
    ) -> str:
        """Create a bridge; return its id."""
        result = await self.request(
            "POST",
            "/bridges",
            params={"type": type, "bridgeId": bridge_id, "name": name},
        )
        if isinstance(result, dict) and isinstance(result.get("id"), str):
            return str(result["id"])
        if bridge_id is not None:
            return bridge_id
        raise AriServerError("POST", "/bridges", 200, "the answer carried no bridge id", None)

    async def add_channel(self, bridge_id: str, channel_id: str) -> None:
        """Put the channel into the bridge."""
        await self.request(
            "POST",
            f"/bridges/{seg(bridge_id)}/addChannel",
            params={"channel": channel_id},
            channel_id=channel_id,
        )

    async def destroy_bridge(self, bridge_id: str) -> None:
        """Destroy the bridge (its channels stay up); one already gone counts as done."""
        try:
            await self.request("DELETE", f"/bridges/{seg(bridge_id)}")
        except AriNotFound:
            _log.debug("bridge %s: already gone when destroying it", bridge_id)

    async def record_bridge(
        self,
        bridge_id: str,
        name: str,
        format: str = "wav",  # ARI's own parameter name
        if_exists: str = "overwrite",
        *,
        max_duration_s: int | None = None,
    ) -> str:
        """Start recording the bridge's mixed audio; return the recording's name.

        A bridged channel cannot be recorded on its own (409): record its bridge.
        """
        result = await self.request(
            "POST",
            f"/bridges/{seg(bridge_id)}/record",
            params={
                "name": name,
                "format": format,
                "ifExists": if_exists,
                "maxDurationSeconds": max_duration_s,
            },
        )
        if isinstance(result, dict) and isinstance(result.get("name"), str):
            return str(result["name"])
        return name
