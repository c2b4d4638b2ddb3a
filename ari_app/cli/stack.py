"""Running the centre: the app, its guard and the local Asterisk instance."""
from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from typing import Any

from ari_app.asterisk import ownership, process, provision
from ari_app.asterisk.layout import Layout
from ari_app.cli.common import _plans, _secrets
from ivr import prompts
from ivr.settings import Settings


def asterisk_up(settings: Settings) -> int:
    """Provision (first time), configure and start Asterisk; return its pid."""
    layout = Layout(settings.root_path, settings.instance)
    if provision.ensure_root(settings.root_path):
        print(f"Asterisk root made in {settings.root_path}")
    plans = _plans(settings)
    secrets = _secrets(settings)
    prompts.build(plans.plans, settings.data_path)
    files = prompts.require(plans.plans, settings.data_path)
    running = process.read_pid(layout)
    if running:
        process.reload(layout, settings, secrets, plans, files)
        print(f"Asterisk instance '{settings.instance}' already runs (pid {running}); configuration reloaded")
        return running
    process.prepare(settings, secrets, plans, files, layout)
    pid = process.start(layout, boot_timeout=settings.asterisk_boot_timeout)
    print(
        f"Asterisk instance '{settings.instance}' up (pid {pid}): SIP udp {settings.sip_host}:{settings.sip_port}, "
        f"ARI {settings.ari_host}:{settings.ari_port}, AMI {settings.ami_host}:{settings.ami_port}"
    )
    return pid


def cmd_asterisk(args: argparse.Namespace, settings: Settings) -> int:
    layout = Layout(settings.root_path, settings.instance)
    if args.action == "up":
        asterisk_up(settings)
    elif args.action == "provision":
        made = provision.ensure_root(settings.root_path)
        print(f"Asterisk root {'made' if made else 'already there'}: {settings.root_path}")
    elif args.action == "configure":
        plans = _plans(settings)
        process.prepare(settings, _secrets(settings), plans, prompts.require(plans.plans, settings.data_path), layout)
        print(f"instance folder written: {layout.host(layout.inner)}")
    elif args.action == "down":
        print("stopped" if process.stop(layout) else f"Asterisk instance '{settings.instance}' was not running")
    else:
        st = process.status(layout)
        print(f"root: {settings.root_path} ({st.version or 'not provisioned'})")
        print(st.detail)
        if st.running:
            print(f"SIP udp {settings.sip_host}:{settings.sip_port}  ARI {settings.ari_host}:{settings.ari_port}  AMI {settings.ami_host}:{settings.ami_port}")
            print(f"logs: {layout.messages_log}")
        return 0 if st.running else 3
    return 0


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    from ari_app import memory
    from ari_app.service import Service
    from ari_app.web import aml_door, console_door
    from ari_app.web.app import serve

    plans = _plans(settings)
    secrets = _secrets(settings, plans)
    prompts.require(plans.plans, settings.data_path)
    door = aml_door.prepare(settings)  # a certificate problem is said now, before any call is taken
    console = console_door.prepare(settings)
    owned = None
    if args.with_asterisk:
        from ari_app.asterisk.owned_run import OwnedRun

        owned = OwnedRun(Layout(settings.root_path, settings.instance), up=lambda: asterisk_up(settings), guard_cmd=_guard_cmd(args))

    async def main() -> None:
        stop = asyncio.Event()
        reload = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        loop.add_signal_handler(signal.SIGHUP, reload.set)
        loop.add_signal_handler(signal.SIGUSR2, lambda: memory.report(settings.data_path))
        await serve(Service(settings, secrets, plans), door=door, console=console, stop=stop, reload=reload)

    try:
        if owned is not None:
            owned.start()
        asyncio.run(main())
    finally:
        if owned is not None:
            owned.stop()
    return 0


def cmd_guard(args: argparse.Namespace, settings: Settings) -> int:
    from ari_app.guard import Guard

    stopping = {"now": False}

    def stop(*_: object) -> None:
        stopping["now"] = True

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, stop)
    layout = Layout(settings.root_path, settings.instance)
    lock = ownership.claim_guard(layout, owner=args.owner)

    def owner_gone() -> bool:
        return bool(args.owner) and not process.alive(args.owner)

    try:
        guard = Guard(settings, restart_asterisk=args.asterisk)
        guard.run(stop=lambda: stopping["now"] or owner_gone())
        if owner_gone():
            from ari_app.asterisk.owned_run import after_owner

            after_owner(layout, args.owner, restarted=guard.restarted_pid)
    finally:
        lock.release()
    return 0


def _guard_cmd(args: argparse.Namespace) -> list[str]:
    """The guard as its own process (it must outlive an app that hangs), tied to this run."""
    return [sys.executable, "-m", "ari_app.cli", *(["--config", str(args.config)] if args.config else []), "guard", "--asterisk"]


def add_parsers(sub: Any) -> None:
    """The `run, guard, asterisk` commands."""
    p = sub.add_parser("run", help="run the app (ARI, HTTP side, store) until Ctrl-C")
    p.add_argument("--with-asterisk", action="store_true", help="also start the local Asterisk and the guard, and stop both on exit; "
                   "one such run per instance (a second is refused)")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("guard", help="keep 112 answered when the app cannot: free callers stuck in Stasis, restart a crashed Asterisk")
    p.add_argument("--asterisk", action="store_true", help="also start again a local Asterisk that died under us")
    p.add_argument("--owner", type=int, default=0, metavar="PID",
                   help="the `ivr112 run` that started this guard: once that process is gone, stop the Asterisk it owned and exit")
    p.set_defaults(func=cmd_guard)

    p = sub.add_parser("asterisk", help="the local Asterisk 22 instance")
    p.add_argument("action", choices=("up", "down", "status", "configure", "provision"))
    p.set_defaults(func=cmd_asterisk)
