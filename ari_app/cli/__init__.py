"""The `ivr112` command: one obvious way to start, check and inspect each part.

    ivr112 run [--with-asterisk]        the app (and, with the flag, Asterisk and the guard too)
    ivr112 guard [--asterisk]           free callers stuck in Stasis when the app is away; restart a crashed Asterisk
    ivr112 asterisk up|down|status      the local Asterisk 22 instance (configure: write its files only)
    ivr112 prompts build|check          prompt WAV files from the plan's text
    ivr112 validate [PLAN ...]          check plans; file:line:column for each problem
    ivr112 simulate PLAN --dial 112 --press 2,1 [--lang en]   a call walked through a plan, no Asterisk
    ivr112 graph PLAN -o plan.svg       the plan's menus and destinations, drawn
    ivr112 reload                       the running app validates and switches to the plans
    ivr112 render [PLAN ...] -o DIR     the Asterisk configuration derived from the plans
    ivr112 operators list|password NAME softphone accounts
    ivr112 operators login|logout|pause|resume NAME [--reason R]   queue membership (AMI)
    ivr112 operators status|codes       who is doing what; the softphone's feature and transfer codes
    ivr112 callbacks | callback NUMBER --operator NAME   the callback list; call one back
    ivr112 classify INCIDENT CATEGORY --operator NAME    emergency, information, prank, ghost
    ivr112 transfer INCIDENT AGENCY [--conference]       an answered caller to an agency
    ivr112 prank clear NUMBER           lift a prank flag
    ivr112 announce "TEXT" [--en TEXT] | announce off   the major-incident message
    ivr112 console password NAME        a console login (generated, shown once; scrypt in the store)
    ivr112 console locks|unlock NAME|unlock --address IP|audit|door   lock-outs, the audit log, HTTPS
    ivr112 cells import FILE.csv        the serving-cell table
    ivr112 aml door | aml token NAME | aml sms --from N TEXT   AML gateways
    ivr112 retention run                delete positions and recordings past retention_days
    ivr112 secrets show                 generated ARI/AMI/console secrets (this machine only)
    ivr112 settings                     every setting with its value and help
    ivr112 incidents [--limit N]        the latest incidents from the store
    ivr112 install|uninstall [--dry-run] [--root DIR]   systemd units, user, folders (root)
    ivr112 backup [-o DIR] | restore ARCHIVE   the store, secrets, certificates and plans
    ivr112 store migrate|copy|backup [-o DIR]|restore FILE   the store alone (docs/store.md)
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from ari_app.cli import people, plans, records, stack
from ari_app.cluster import cli as cluster_cli
from ivr.errors import Ivr112Error
from ivr.settings import load_settings


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ivr112", description="The open 112 emergency call centre platform.")
    parser.add_argument("--config", help="a settings YAML file applied over config/ivr112.yaml")
    sub = parser.add_subparsers(dest="command", required=True)
    for group in (stack, plans, records, people):
        group.add_parsers(sub)
    cluster_cli.add_parser(sub)
    from ari_app.deploy.commands import add_parsers

    add_parsers(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings(args.config)
        logging.basicConfig(
            level=settings.log_level.upper(),
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
            stream=sys.stderr,
        )
        return int(args.func(args, settings))
    except Ivr112Error as exc:
        print(f"ivr112: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
