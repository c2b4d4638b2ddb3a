"""What the commands share: the settings' secrets and plans, and asking the running app over HTTP."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from ivr.plan import PlanSet, load_plans
from ivr.secrets import Secrets, load_or_create
from ivr.settings import Settings


def _secrets(settings: Settings, plans: PlanSet | None = None) -> Secrets:
    """The generated secrets; with `plans`, a token is made for any agency that has none."""
    agencies = tuple(sorted({name for plan in plans.plans for name in plan.agencies})) if plans else ()
    return load_or_create(
        settings.data_path, tuple(op.name for op in settings.operators), tuple(g.name for g in settings.aml_gateways), agencies
    )


def _plans(settings: Settings, paths: list[Path] | None = None) -> PlanSet:
    """The plans to serve (or `paths`), checked against these settings too (no trunk on our own SIP port)."""
    return load_plans(paths or settings.plan_paths, own_sip=(settings.sip_host, settings.sip_port))


def _post_app(settings: Settings, path: str, *, token: str, data: bytes | None = None, timeout: float = 10,
              method: str = "POST") -> Any:
    """POST (or GET) to the running app's HTTP side; its JSON answer, or None (said why) when it is not there."""
    import json
    import urllib.error
    import urllib.request

    headers = {"Authorization": f"Bearer {token}"}
    if data is not None:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    req = urllib.request.Request(f"http://{settings.http_host}:{settings.http_port}{path}", data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return json.load(resp)
    except urllib.error.HTTPError as exc:
        return json.load(exc)
    except OSError as exc:
        print(f"ivr112: the app does not answer on {settings.http_host}:{settings.http_port} ({exc}); is `ivr112 run` running?", file=sys.stderr)
        return None


def _ask_app(settings: Settings, path: str, form: dict[str, str] | None = None, *, method: str = "POST") -> int:
    """One request to the running app for the operators' commands; prints its answer or error."""
    import urllib.parse

    data = urllib.parse.urlencode(form).encode() if form is not None else None
    body = _post_app(settings, path, token=_secrets(settings).console_secret, data=data, method=method)
    if body is None:
        return 2
    if isinstance(body, dict) and body.get("error"):
        print(f"ivr112: {body['error']}", file=sys.stderr)
        return 1
    if isinstance(body, dict) and body.get("ok"):
        print(", ".join(f"{k}: {v}" for k, v in body.items() if k != "ok"))
        return 0
    return _print_rows(body)


def _print_rows(body: Any) -> int:
    rows = body.get("operators", []) if isinstance(body, dict) else body
    if isinstance(body, dict) and not body.get("ami_connected", True):
        print("warning: the app's AMI connection is down; this may be out of date", file=sys.stderr)
    for row in rows:
        print("  ".join(f"{k}={v}" for k, v in row.items() if v not in (None, "", [], False)))
    if not rows:
        print("(none)")
    return 0
