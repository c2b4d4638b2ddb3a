"""The records and what feeds them: cells, AML, retention, the store, incidents, secrets and settings."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ari_app.cli.common import _plans, _post_app, _secrets
from ari_app.store import open_store
from ivr.settings import Settings, setting_fields


def cmd_cells(args: argparse.Namespace, settings: Settings) -> int:
    """Load the regency's cell table (CSV) into the store; bad rows are named and skipped."""
    from ivr.location.cell import load_cell_csv

    table, problems = load_cell_csv(Path(args.file))
    for problem in problems:
        print(problem)
    rows = table.rows()
    store = open_store(settings.data_path, settings.store_url)
    try:
        count = store.put_cells(rows)
    finally:
        store.close()
    print(f"{count} cell(s) loaded from {args.file}; {len(problems)} row(s) skipped")
    return 1 if problems and not count else 0


def _aml_door(settings: Settings) -> int:
    """What a carrier is told: the URL, the certificate to trust and its fingerprint."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    from ari_app.web import aml_door

    door = aml_door.prepare(settings)
    trust = door.files.ca or door.files.cert
    cert = x509.load_pem_x509_certificate(trust.read_bytes())
    served = x509.load_pem_x509_certificate(door.files.cert.read_bytes())
    try:
        names = ", ".join(str(n.value) for n in served.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
    except x509.ExtensionNotFound:
        names = "none (the certificate has no subjectAltName: clients will refuse it)"
    print(f"url:          {door.url}  (POST, Authorization: Bearer <ivr112 aml token NAME>; SMS: {door.url}/sms)")
    print(f"give them:    {trust}" + ("  (the local CA's certificate: the carrier trusts it)" if door.files.ca else ""))
    print(f"sha256:       {cert.fingerprint(hashes.SHA256()).hex(':').upper()}")
    print(f"names:        {names}  (valid until {served.not_valid_after_utc.date()})")
    print("protocols:    TLS 1.2 and 1.3")
    return 0


def cmd_aml(args: argparse.Namespace, settings: Settings) -> int:
    import json
    import urllib.parse

    secrets = _secrets(settings)
    if args.action == "door":
        return _aml_door(settings)
    if args.action == "token":
        if not args.value:
            print("say which gateway: ivr112 aml token NAME", file=sys.stderr)
            return 2
        print(secrets.aml_token(args.value))
        return 0
    gateway = args.gateway or (settings.aml_gateways[0].name if settings.aml_gateways else "")
    if not gateway or not args.sender or not args.value:
        print('usage: ivr112 aml sms --from 0812... \'A"ML=1;lt=...;lg=...;rd=...\'', file=sys.stderr)
        return 2
    form = urllib.parse.urlencode({"from": args.sender, "text": args.value}).encode()
    answer = _post_app(settings, "/aml/sms", token=secrets.aml_token(gateway), data=form)
    if answer is None:
        return 2
    print(json.dumps(answer, ensure_ascii=False))
    return 0 if answer.get("accepted") else 1


def cmd_retention(args: argparse.Namespace, settings: Settings) -> int:
    from ari_app.retention import purge

    gone, files = purge(settings)
    print(f"retention {settings.retention_days} days: {gone} position(s) and {files} recording file(s) deleted")
    return 0


def cmd_store(args: argparse.Namespace, settings: Settings) -> int:
    from ari_app.store.copy import copy_store
    from ari_app.store.migrations import LATEST, version

    if args.action in ("backup", "restore"):
        return _store_backup(args, settings)
    if args.action == "copy":
        source, target = open_store(settings.data_path, args.source), open_store(settings.data_path, args.target)
        try:
            counts = copy_store(source, target)
        finally:
            source.close()
            target.close()
        print(f"copied {sum(counts.values())} rows in {len(counts)} tables; counts checked on both sides")
        return 0
    store = open_store(settings.data_path, settings.store_url)  # opening migrates
    try:
        with store.engine.connect() as conn:
            print(f"{store.where}: {store.engine_name}, version {version(conn)} (this ivr112 knows up to {LATEST})")
    finally:
        store.close()
    return 0


def _store_backup(args: argparse.Namespace, settings: Settings) -> int:
    from ari_app.store.backup import BackupError, backup_store, restore_store, where

    if args.action == "backup":
        made = backup_store(settings.store_url, settings.data_path, Path(args.out))
        print(f"store backup written: {made.path} ({made.engine}, {made.incidents} incident(s); mode 0600)")
        return 0
    if not args.file:
        raise BackupError("ivr112 store restore FILE: name the backup file (.sqlite or .pgdump)")
    count = restore_store(Path(args.file), settings.store_url, settings.data_path, force=args.force)
    print(f"restored {args.file} into {where(settings.store_url, settings.data_path)}: {count} incident(s)")
    return 0


def cmd_incidents(args: argparse.Namespace, settings: Settings) -> int:
    store = open_store(settings.data_path, settings.store_url)
    try:
        for inc in store.recent(args.limit):
            print(
                f"#{inc.id} {inc.arrived_at} from {inc.caller_number or '?'} to {inc.called_number} "
                f"route={inc.route or '-'} outcome={inc.route_result or '-'} operator={inc.operator or '-'} "
                f"ended={inc.ended_at or 'live'} {inc.end_reason or ''}"
            )
    finally:
        store.close()
    return 0


def cmd_secrets(args: argparse.Namespace, settings: Settings) -> int:
    secrets = _secrets(settings, _plans(settings))
    print(f"file:           {settings.data_path / 'secrets.yaml'} (mode 0600)")
    print(f"console_secret: {secrets.console_secret}")
    for name, token in sorted(secrets.agency_tokens.items()):  # each given to its agency only (docs/agencies.md)
        print(f"agency {name}: {token}")
    for name, key in sorted(secrets.agency_webhook_secrets.items()):  # the key that signs its webhook's pushes
        print(f"agency {name} webhook signing secret: {key}")
    print("ARI and AMI secrets are in the same file; they are only for the app and Asterisk.")
    return 0


def cmd_settings(args: argparse.Namespace, settings: Settings) -> int:
    for f in setting_fields():
        print(f"{f.name} = {getattr(settings, f.name)!r}\n    {f.metadata['help']}")
    return 0


def add_parsers(sub: Any) -> None:
    """The `cells, aml, retention, store, incidents, secrets, settings` commands."""
    p = sub.add_parser("cells", help="the serving-cell table (CSV: radio,mcc,mnc,area,cell,lat,lon,radius_m[,name])")
    p.add_argument("action", choices=("import",))
    p.add_argument("file")
    p.set_defaults(func=cmd_cells)

    p = sub.add_parser("aml", help="Advanced Mobile Location: the HTTPS door and its certificate, gateway tokens, "
                                   "or send an AML SMS text to the app")
    p.add_argument("action", choices=("door", "token", "sms"))
    p.add_argument("value", nargs="?", help="the gateway name (token) or the SMS text (sms)")
    p.add_argument("--from", dest="sender", help="the number that sent the SMS")
    p.add_argument("--gateway", help="the gateway whose token to use (default: the first)")
    p.set_defaults(func=cmd_aml)

    p = sub.add_parser("retention", help="delete positions and recordings older than retention_days")
    p.add_argument("action", choices=("run",))
    p.set_defaults(func=cmd_retention)

    p = sub.add_parser("store", help="the store of every call's record: migrate it, copy one store into another, "
                                     "back it up (SQLite online backup or pg_dump) or restore a backup")
    p.add_argument("action", choices=["migrate", "copy", "backup", "restore"])
    p.add_argument("file", nargs="?", help="restore: the backup file (.sqlite or .pgdump)")
    p.add_argument("--from", dest="source", default="", help="copy: the store to read (sqlite:///PATH or postgresql://...)")
    p.add_argument("--to", dest="target", default="", help="copy: the empty store to fill")
    p.add_argument("-o", "--out", default=".", help="backup: folder the file is written to")
    p.add_argument("--force", action="store_true", help="restore: replace a store that holds incidents (stop the app first)")
    p.set_defaults(func=cmd_store)

    p = sub.add_parser("incidents", help="the latest incidents")
    p.add_argument("--limit", type=int, default=20)
    p.set_defaults(func=cmd_incidents)

    p = sub.add_parser("secrets", help="the generated secrets")
    p.add_argument("action", choices=("show",))
    p.set_defaults(func=cmd_secrets)

    p = sub.add_parser("settings", help="every setting, its value and help")
    p.set_defaults(func=cmd_settings)
