"""Operators and supervisors: the desk, callbacks, classification, transfers, the major-incident message, console accounts."""
from __future__ import annotations

import argparse
import sys
from typing import Any

from ari_app.cli.common import _ask_app, _secrets
from ari_app.store import open_store
from ivr.plan import load_plans
from ivr.settings import Settings


def cmd_operators(args: argparse.Namespace, settings: Settings) -> int:
    secrets = _secrets(settings)
    if args.action == "list":
        for op in settings.operators:
            print(f"{op.name}\t{op.full_name}\tlanguages: {','.join(op.languages)}\tplan: {op.plan or 'every plan (provincial)'}")
        return 0
    if args.action == "status":
        return _ask_app(settings, "/api/operators", method="GET")
    if args.action == "codes":
        from ari_app.asterisk.render import FEATURE_CODES, transfer_codes

        plans = load_plans(settings.plan_paths)
        for code, action in FEATURE_CODES.items():
            print(f"{code}\t{action}")
        # Each plan's codes under its plan: a code reaches the agency of the call's plan.
        for plan in plans.plans:
            note = " (the default plan: a provincial operator's own calls)" if plan is plans.default and len(plans.plans) > 1 else ""
            print(f"\n{plan.id} ({plan.name}){note}:")
            for code, agency in transfer_codes(plan).items():
                print(f"{code}\ttransfer to {agency} ({plan.agencies[agency].label})")
        return 0
    if not args.name:
        print(f"say which operator: ivr112 operators {args.action} NAME", file=sys.stderr)
        return 2
    if args.action in ("login", "logout", "pause", "resume"):
        form = {"reason": args.reason} if args.action == "pause" else {}
        return _ask_app(settings, f"/api/operators/{args.name}/{args.action}", form)
    password = secrets.operator_password(args.name)
    print("SIP account for a softphone (UDP, codecs G.711 u-law/a-law):")
    print(f"  server:   {settings.sip_host}:{settings.sip_port}")
    print(f"  username: {args.name}")
    print(f"  password: {password}")
    return 0


def cmd_announce(args: argparse.Namespace, settings: Settings) -> int:
    if args.text == "off":
        return _ask_app(settings, "/api/announcement", method="DELETE")
    return _ask_app(settings, "/api/announcement", {"text_id": args.text, "text_en": args.en})


def cmd_console(args: argparse.Namespace, settings: Settings) -> int:
    """Console accounts: set a password; see and lift lock-outs; the audit log; the HTTPS door."""
    if args.action == "locks":
        return _ask_app(settings, "/api/console/locks", method="GET")
    if args.action == "audit":
        return _ask_app(settings, f"/api/console/audit?limit={args.limit}", method="GET")
    if args.action == "door":
        return _console_door(settings)
    if not args.name and not (args.action == "unlock" and args.address):
        print(f"ivr112: console {args.action} needs an account name", file=sys.stderr)
        return 1
    if args.action == "unlock":
        form = {"address": args.address} if args.address else {"account": args.name}
        return _ask_app(settings, "/api/console/locks/lift", form)
    return _console_password(args, settings)


def _console_door(settings: Settings) -> int:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    from ari_app.web import console_door

    door = console_door.prepare(settings)
    if door is None:
        print("the console listens on loopback only (plain HTTP); set console_host to open it over HTTPS to the LAN")
        return 0
    trust = door.files.ca or door.files.cert
    cert = x509.load_pem_x509_certificate(trust.read_bytes())
    print(f"url:          {door.url}")
    print(f"trust:        {trust}" + ("  (the local CA's certificate: install it on the operators' PCs)" if door.files.ca else ""))
    print(f"sha256:       {cert.fingerprint(hashes.SHA256()).hex(':').upper()}")
    return 0


def _console_password(args: argparse.Namespace, settings: Settings) -> int:
    """Set a console password (generated unless given on stdin) for an operator or supervisor."""
    from ivr.passwords import hash_password, new_password

    roles = {op.name: "operator" for op in settings.operators} | {name: "supervisor" for name in settings.supervisors}
    if args.agency:
        role = _agency_role(args.name, args.agency, settings, roles)
    else:
        role = roles.get(args.name)
        if role is None:
            known = ", ".join(sorted(roles)) or "none"
            print(f"ivr112: no operator or supervisor named {args.name!r} in the settings; known: {known} "
                  "(an agency's dispatcher: add --agency NAME)", file=sys.stderr)
    if role is None:
        return 1
    password = sys.stdin.readline().strip() if args.stdin else new_password()
    if len(password) < 10:
        print("ivr112: a console password needs at least 10 characters", file=sys.stderr)
        return 1
    store = open_store(settings.data_path, settings.store_url)
    try:
        store.set_console_password(args.name, role, hash_password(password))
    finally:
        store.close()
    print(f"console account {args.name} ({role}): password {password}" if not args.stdin else f"console account {args.name} ({role}): password set")
    print(f"log in at http://{settings.http_host}:{settings.http_port}/" + ("agency" if args.agency else ""))
    return 0


def _agency_role(name: str, agency: str, settings: Settings, staff: dict[str, str]) -> str | None:
    """The role of an agency dispatcher's account (agency:<name>); None, said why, when it cannot be one."""
    from ari_app.web.console_auth import AGENCY_ROLE

    agencies = sorted({a for plan in load_plans(settings.plan_paths).plans for a in plan.agencies})
    if agency not in agencies:
        print(f"ivr112: no agency named {agency!r} in the plans; known: {', '.join(agencies) or 'none'}", file=sys.stderr)
        return None
    if name in staff:
        print(f"ivr112: {name!r} is the centre's {staff[name]}; give the agency's dispatcher a name of its own", file=sys.stderr)
        return None
    return AGENCY_ROLE + agency


def add_parsers(sub: Any) -> None:
    """The `operators, callbacks, callback, classify, transfer, announce, prank, console` commands."""
    p = sub.add_parser("operators", help="operators: accounts, log in/out, pause/resume, live status, softphone codes")
    p.add_argument("action", choices=("list", "password", "login", "logout", "pause", "resume", "status", "codes"))
    p.add_argument("name", nargs="?")
    p.add_argument("--reason", default="pause", help="why the operator pauses (pause only)")
    p.set_defaults(func=cmd_operators)

    p = sub.add_parser("callbacks", help="the callback list: calls no person answered")
    p.add_argument("--all", action="store_true", help="closed entries too")
    p.set_defaults(func=lambda a, s: _ask_app(s, "/api/callbacks" + ("?all=1" if a.all else ""), method="GET"))

    p = sub.add_parser("callback", help="call a number on the callback list back (the operator's softphone rings first)")
    p.add_argument("number")
    p.add_argument("--operator", required=True)
    p.set_defaults(func=lambda a, s: _ask_app(s, f"/api/callbacks/{a.number}/call", {"operator": a.operator}))

    p = sub.add_parser("classify", help="what an answered call was: emergency, information, prank or ghost")
    p.add_argument("incident", type=int)
    p.add_argument("category", choices=("emergency", "information", "prank", "ghost"))
    p.add_argument("--operator", required=True)
    p.add_argument("--notes", default="")
    p.set_defaults(func=lambda a, s: _ask_app(s, f"/api/incidents/{a.incident}/classify",
                                             {"category": a.category, "operator": a.operator, "notes": a.notes}))

    p = sub.add_parser("transfer", help="send an answered caller to an agency (blind, or a three-way conference)")
    p.add_argument("incident", type=int)
    p.add_argument("agency")
    p.add_argument("--conference", action="store_true", help="the operator stays on until they hang up")
    p.set_defaults(func=lambda a, s: _ask_app(s, f"/api/incidents/{a.incident}/transfer",
                                             {"agency": a.agency, "mode": "conference" if a.conference else "blind"}))

    p = sub.add_parser("announce", help="the major-incident message every caller hears after the greeting (on/off)")
    p.add_argument("text", help="the Indonesian text, or 'off'")
    p.add_argument("--en", default="", help="the English text (English callers hear the Indonesian one without it)")
    p.set_defaults(func=cmd_announce)

    p = sub.add_parser("prank", help="lift a number's prank flag (supervisor)")
    p.add_argument("action", choices=("clear",))
    p.add_argument("number")
    p.add_argument("--by", default="supervisor")
    p.set_defaults(func=lambda a, s: _ask_app(s, f"/api/numbers/{a.number}/clear", {"by": a.by}))

    p = sub.add_parser("console", help="console accounts: a password (scrypt-hashed), lock-outs and their lifting, "
                                       "the audit log, the HTTPS listener's certificate")
    p.add_argument("action", choices=("password", "locks", "unlock", "audit", "door"))
    p.add_argument("name", nargs="?", help="the account (password, unlock)")
    p.add_argument("--address", help="unlock: the client address to lift instead of an account")
    p.add_argument("--limit", type=int, default=50, help="audit: lines to show")
    p.add_argument("--stdin", action="store_true", help="read the password from standard input instead of generating one")
    p.add_argument("--agency", help="password: the account is this agency's dispatcher (sees only the incidents sent to it)")
    p.set_defaults(func=cmd_console)
