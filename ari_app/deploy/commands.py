"""The server's commands: `ivr112 install`, `uninstall`, `firewall`, `backup`, `restore`."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from ari_app.deploy import install
from ari_app.deploy.units import Paths
from ivr.settings import PROJECT_DIR, Settings


def _paths(args: argparse.Namespace) -> Paths:
    return Paths(project=Path(args.project).resolve())


def cmd_install(args: argparse.Namespace, settings: Settings) -> int:
    root = Path(args.root)
    steps = install.install_steps(_paths(args), settings.instance, user_exists=install.user_exists())
    return _do(steps, root, dry_run=args.dry_run, what="install")


def cmd_uninstall(args: argparse.Namespace, settings: Settings) -> int:
    steps = install.uninstall_steps(_paths(args), purge=args.purge)
    code = _do(steps, Path(args.root), dry_run=args.dry_run, what="uninstall")
    if code == 0 and not args.purge:
        print(f"kept: {_paths(args).config_dir} and {_paths(args).data_dir} (the store, secrets, recordings); "
              "`ivr112 uninstall --purge` removes them too")
    return code


def _do(steps: list[install.Step], root: Path, *, dry_run: bool, what: str) -> int:
    if dry_run:
        print(f"ivr112 {what} would, in this order{f' (under {root})' if root != Path('/') else ''}:")
        for line in install.describe(steps, root):
            print(f"  {line}")
        return 0
    if root == Path("/") and os.geteuid() != 0:
        print(f"ivr112: {what} changes the system (a user, /etc, systemd): run it as root, "
              "or see what it would do with --dry-run", file=sys.stderr)
        return 1
    install.perform(steps, root)
    return 0


def cmd_backup(args: argparse.Namespace, settings: Settings) -> int:
    from ari_app.deploy.backup import backup

    archive = backup(settings, Path(args.out), recordings=args.recordings)
    print(f"backup written: {archive} (mode 0600: it holds the secrets; keep a copy off this machine)")
    return 0


def cmd_restore(args: argparse.Namespace, settings: Settings) -> int:
    from ari_app.deploy.backup import restore

    done = restore(settings, Path(args.archive), force=args.force)
    print(f"restored into {settings.data_path}: {done.incidents} incident(s); the plans of the backup are in {done.plans}")
    return 0


def cmd_firewall(args: argparse.Namespace, settings: Settings) -> int:
    from ari_app.deploy.firewall import ruleset

    text = ruleset(settings, origin="the settings and plans")
    if args.out == "-":
        print(text, end="")
        return 0
    Path(args.out).write_text(text)
    print(f"ruleset written: {args.out}; check it with `nft -c -f {args.out}`, apply it with `nft -f {args.out}`")
    return 0


def add_parsers(sub: Any) -> None:
    """The server's subcommands, on the `ivr112` command's parser."""
    for name, func, help_text in (
        ("install", cmd_install, "make this checkout the server's service: system user, /etc/ivr112, /var/lib/ivr112, "
                                 "systemd units, logrotate (root)"),
        ("uninstall", cmd_uninstall, "remove the units and the logrotate rule; keeps the settings and the data unless --purge"),
    ):
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--dry-run", action="store_true", help="print every step and file, change nothing")
        p.add_argument("--root", default="/", help="write the files under this folder instead of / (system steps are only listed)")
        p.add_argument("--project", default=str(PROJECT_DIR), help="the checkout whose .venv the units run (default: this one)")
        if name == "uninstall":
            p.add_argument("--purge", action="store_true", help="also delete /var/lib/ivr112 (the store!), /etc/ivr112 and the user")
        p.set_defaults(func=func)

    p = sub.add_parser("firewall", help="the nftables ruleset: SIP only from the carriers and the operators' LAN (nothing applied)")
    p.add_argument("-o", "--out", default="-", help="file the ruleset is written to (default: print it)")
    p.set_defaults(func=cmd_firewall)
    p = sub.add_parser("backup", help="a dated archive of the store (online), secrets, certificates and plans")
    p.add_argument("-o", "--out", default=".", help="folder the archive is written to")
    p.add_argument("--recordings", action="store_true", help="the recordings too (large)")
    p.set_defaults(func=cmd_backup)
    p = sub.add_parser("restore", help="put a backup into this (fresh) data folder; the store is migrated to this release")
    p.add_argument("archive")
    p.add_argument("--force", action="store_true", help="replace a store already in the data folder (stop the app first)")
    p.set_defaults(func=cmd_restore)
