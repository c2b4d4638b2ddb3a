"""Errors from Asterisk's REST Interface (ARI), one class per kind of answer.

Raised by `ari_app.ari.client`; callers catch the kind they can act on:

    AriError (ivr.errors.Ivr112Error)   any other refusal (400, 401, 403, ...)
     ├── AriNotFound        404: the channel, bridge or playback is gone (often: the caller hung up)
     ├── AriConflict        409: the resource is in the wrong state (e.g. channel not in Stasis)
     ├── AriUnprocessable   422: the request names something that does not exist (e.g. endpoint)
     ├── AriServerError     5xx: Asterisk failed (reading a missing PJSIP header also answers 500)
     └── AriUnavailable     no answer at all: connection refused, reset or timed out (status None)
"""

from __future__ import annotations

from ivr.errors import Ivr112Error

UNAVAILABLE_HINT = "is Asterisk running and ari.conf/http.conf correct?"
_UNAUTHORIZED_HINT = "check the ARI username and password against ari.conf"


class AriError(Ivr112Error):
    """A request to ARI failed; the message names the request, the channel and the answer."""

    def __init__(
        self,
        method: str,
        path: str,
        status: int | None,
        reason: str,
        channel_id: str | None = None,
    ) -> None:
        self.method = method
        self.path = path
        self.status = status
        self.reason = reason
        self.channel_id = channel_id
        super().__init__(self._describe())

    def _describe(self) -> str:
        where = f"ARI {self.method} {self.path}"
        if self.channel_id is not None:
            where += f" for channel {self.channel_id}"
        if self.status is None:
            return f"{where}: no answer ({self.reason}); {UNAVAILABLE_HINT}"
        text = f"{where}: {self.status} {self.reason}".rstrip()
        if self.status in (401, 403):
            text += f"; {_UNAUTHORIZED_HINT}"
        return text

    def __reduce__(self) -> tuple[object, ...]:
        # Exceptions with keyword-ish __init__ do not pickle by default; logging
        # handlers that cross processes need this.
        return (
            type(self),
            (self.method, self.path, self.status, self.reason, self.channel_id),
        )


class AriNotFound(AriError):
    """404: the resource does not exist (any more)."""


class AriConflict(AriError):
    """409: the resource exists but is in a state that forbids the request."""


class AriUnprocessable(AriError):
    """422: a resource named in the request's parameters does not exist."""


class AriServerError(AriError):
    """5xx: Asterisk could not carry out a well-formed request."""


class AriUnavailable(AriError):
    """Asterisk did not answer: connection refused, dropped, or timed out."""


_BY_STATUS: dict[int, type[AriError]] = {
    404: AriNotFound,
    409: AriConflict,
    422: AriUnprocessable,
}


def error_for(
    method: str,
    path: str,
    status: int | None,
    reason: str,
    channel_id: str | None = None,
) -> AriError:
    """Return the AriError subclass instance that fits `status` (None = no answer)."""
    cls: type[AriError]
    if status is None:
        cls = AriUnavailable
    elif status >= 500:
        cls = AriServerError
    else:
        cls = _BY_STATUS.get(status, AriError)
    return cls(method, path, status, reason, channel_id)
