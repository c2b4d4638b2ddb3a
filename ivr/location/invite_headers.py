"""The caller's SIP headers the plan's dialplan hands the app with the call.

The dialplan copies each header into a channel variable before Stasis() and ari.conf's
`channelvars` puts those variables in the StasisStart's channel, so the app reads the
caller's position without one ARI request per header (issue 15's CPU target). A call
that reached Stasis another way has no copy: the app then reads the headers itself.
"""

from __future__ import annotations

CALL_ID_HEADER = "Call-ID"
GEOLOCATION_HEADER = "Geolocation"
PANI_HEADER = "P-Access-Network-Info"

# Channel variable -> the INVITE header it holds. Call-ID first: every SIP call has one,
# so its copy tells a call the dialplan prepared from one it did not.
INVITE_HEADER_VARIABLES: dict[str, str] = {
    "IVR112_CALL_ID": CALL_ID_HEADER,
    "IVR112_GEOLOCATION": GEOLOCATION_HEADER,
    "IVR112_PANI": PANI_HEADER,
}
