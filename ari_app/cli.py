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
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ari_app.asterisk import ownership, process, provision
from ari_app.asterisk.layout import Layout
from ari_app.cluster import cli as cluster_cli
from ari_app.store import open_store
from ivr import prompts
from ivr.errors import Ivr112Error, PlanError
from ivr.plan import PlanSet, load_plans
from ivr.secrets import Secrets, load_or_create
from ivr.settings import Settings, load_settings, setting_fields

log = logging.getLogger("ivr112")


def _secrets(settings: Settings, plans: PlanSet | None = None) -> Secrets:
    """The generated secrets; with `plans`, a token is made for any agency that has none."""
    agencies = tuple(sorted({name for plan in plans.plans for name in plan.agencies})) if plans else ()
    return load_or_create(
        settings.data_path, tuple(op.name for op in settings.operators), tuple(g.name for g in settings.aml_gateways), agencies
    )


def _plans(settings: Settings, paths: list[Path] | None = None) -> PlanSet:
    """The plans to serve (or `paths`), checked against these settings too (no trunk on our own SIP port)."""
    return load_plans(paths or settings.plan_paths, own_sip=(settings.sip_host, settings.sip_port))


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
        Guard(settings, restart_asterisk=args.asterisk).run(stop=lambda: stopping["now"] or owner_gone())
        if owner_gone():
            from ari_app.asterisk.owned_run import after_owner

            after_owner(layout, args.owner)
    finally:
        lock.release()
    return 0


def _guard_cmd(args: argparse.Namespace) -> list[str]:
    """The guard as its own process (it must outlive an app that hangs), tied to this run."""
    return [sys.executable, "-m", "ari_app.cli", *(["--config", str(args.config)] if args.config else []), "guard", "--asterisk"]


def cmd_prompts(args: argparse.Namespace, settings: Settings) -> int:
    plans = _plans(settings)
    if args.action == "build":
        made = prompts.build(plans.plans, settings.data_path, force=args.force)
        for pf in made:
            print(f"built {pf.plan_id}/{pf.language}/{pf.name}: {pf.path} ({prompts.duration(pf.path):.1f} s)")
        print(f"{len(made)} prompt file(s) built")
    files, problems = prompts.resolve_all(plans.plans, settings.data_path)
    for pf in files:
        kind = "built from text" if pf.built else "recorded"
        print(f"ok  {pf.plan_id}/{pf.language}/{pf.name}: {pf.path} ({kind}, {prompts.duration(pf.path):.1f} s)")
    for problem in problems:
        print(f"MISSING {problem}")
    return 1 if problems else 0


def cmd_validate(args: argparse.Namespace, settings: Settings) -> int:
    try:
        plans = _plans(settings, [Path(p) for p in args.paths])
    except PlanError as exc:
        for problem in exc.problems:
            print(problem)
        print(f"{len(exc.problems)} problem(s); nothing was changed", file=sys.stderr)
        return 1
    for plan in plans.plans:
        trunks = [t for a in plan.agencies.values() for t in a.trunks]
        placeholders = sum(1 for t in trunks if t.placeholder)
        print(
            f"{plan.source}: ok: plan '{plan.id}' ({plan.name}) answers {', '.join(plan.numbers)}; "
            f"{len(plan.menus)} menu(s), {len(plan.agencies)} agency(ies) with {len(trunks)} trunk(s), "
            f"{len(plan.queues)} queue(s), {len(plan.prompts)} prompt(s), languages {', '.join(plan.languages)}"
        )
        if placeholders:
            print(f"{plan.source}: note: {placeholders} trunk(s) still have placeholder addresses (placeholder: true)")
    return 0


def cmd_simulate(args: argparse.Namespace, settings: Settings) -> int:
    from ivr.plan import load_plan
    from ivr.simulate import render_text, simulate

    plan = load_plan(Path(args.plan))
    presses = [p.strip() for p in args.press.split(",")] if args.press else []
    sim = simulate(plan, dial=args.dial, presses=presses, language=args.lang, located=args.located, kecamatan=args.kecamatan,
                   silent_help=args.silent_help, carrier=args.carrier)
    print(render_text(sim))
    return 1 if sim.refused else 0


def cmd_graph(args: argparse.Namespace, settings: Settings) -> int:
    from ivr.graph import render as render_graph
    from ivr.plan import load_plan

    plan = load_plan(Path(args.plan))
    out = Path(args.output)
    render_graph(plan, out)
    print(f"graph of plan '{plan.id}' written to {out}")
    return 0


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


def cmd_reload(args: argparse.Namespace, settings: Settings) -> int:
    """Ask the running app to validate and switch to the configured plans."""
    body = _post_app(settings, "/api/reload", token=_secrets(settings).console_secret, timeout=60)
    if body is None:
        return 2
    if body.get("ok"):
        print(f"reloaded: now serving {', '.join(body.get('plans', []))}")
        return 0
    for problem in body.get("problems", []):
        print(problem)
    print(f"reload refused; still serving {', '.join(body.get('plans', []))}", file=sys.stderr)
    return 1


def cmd_render(args: argparse.Namespace, settings: Settings) -> int:
    from ari_app.asterisk.render import render, write_rendered

    paths = [Path(p) for p in args.paths] or settings.plan_paths
    plans = load_plans(paths)
    files = render(settings, _secrets(settings), plans, Layout(settings.root_path, settings.instance))
    out = Path(args.output)
    write_rendered(files, out)
    print(f"{len(files)} Asterisk config files written to {out} (they hold secrets: mode 0640)")
    return 0


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


def cmd_operators(args: argparse.Namespace, settings: Settings) -> int:
    secrets = _secrets(settings)
    if args.action == "list":
        for op in settings.operators:
            print(f"{op.name}\t{op.full_name}\tlanguages: {','.join(op.languages)}")
        return 0
    if args.action == "status":
        return _ask_app(settings, "/api/operators", method="GET")
    if args.action == "codes":
        from ari_app.asterisk.render import FEATURE_CODES, transfer_codes

        plans = load_plans(settings.plan_paths)
        for code, action in FEATURE_CODES.items():
            print(f"{code}\t{action}")
        for code, agency in transfer_codes(plans.default).items():
            print(f"{code}\ttransfer to {agency} ({plans.default.agencies[agency].label})")
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
    role = roles.get(args.name)
    if role is None:
        known = ", ".join(sorted(roles)) or "none"
        print(f"ivr112: no operator or supervisor named {args.name!r} in the settings; known: {known}", file=sys.stderr)
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
    print(f"log in at http://{settings.http_host}:{settings.http_port}/")
    return 0


def cmd_secrets(args: argparse.Namespace, settings: Settings) -> int:
    secrets = _secrets(settings, _plans(settings))
    print(f"file:           {settings.data_path / 'secrets.yaml'} (mode 0600)")
    print(f"console_secret: {secrets.console_secret}")
    for name, token in sorted(secrets.agency_tokens.items()):  # each given to its agency only (docs/agencies.md)
        print(f"agency {name}: {token}")
    print("ARI and AMI secrets are in the same file; they are only for the app and Asterisk.")
    return 0


def cmd_settings(args: argparse.Namespace, settings: Settings) -> int:
    for f in setting_fields():
        print(f"{f.name} = {getattr(settings, f.name)!r}\n    {f.metadata['help']}")
    return 0


def cmd_store(args: argparse.Namespace, settings: Settings) -> int:
    from ari_app.store.copy import copy_store
    from ari_app.store.migrations import LATEST, version

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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ivr112", description="The open 112 emergency call centre platform.")
    parser.add_argument("--config", help="a settings YAML file applied over config/ivr112.yaml")
    sub = parser.add_subparsers(dest="command", required=True)

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

    p = sub.add_parser("prompts", help="prompt WAV files")
    p.add_argument("action", choices=("build", "check"))
    p.add_argument("--force", action="store_true", help="rebuild every prompt made from text")
    p.set_defaults(func=cmd_prompts)

    p = sub.add_parser("validate", help="check plan files")
    p.add_argument("paths", nargs="*", help="plan files (default: the configured plan)")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("simulate", help="walk a call through a plan without Asterisk")
    p.add_argument("plan", help="the plan file")
    p.add_argument("--dial", default="112", help="the number the caller dials (default 112)")
    p.add_argument("--press", default="", help="keys pressed at each menu, comma-separated: 2,1 (none: the caller stays silent)")
    p.add_argument("--lang", choices=("id", "en"), help="the language the call starts in")
    p.add_argument("--located", action="store_true", help="a precise position came with the call (no question where the caller is)")
    p.add_argument("--kecamatan", default="", metavar="KEYS", help="keys typed at the kecamatan list, e.g. 10# (none: silence there)")
    p.add_argument("--silent-help", action="store_true", help="a silent caller who presses the help key as the silent prompt asks")
    p.add_argument("--carrier", metavar="NAME", help="the carrier the call comes in through (refused when the plan has no such carrier)")
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser("graph", help="draw the plan's menus and destinations (SVG, PNG or DOT)")
    p.add_argument("plan", help="the plan file")
    p.add_argument("-o", "--output", required=True, help="plan.svg, plan.png or plan.dot")
    p.set_defaults(func=cmd_graph)

    p = sub.add_parser("reload", help="have the running app validate and switch to the configured plans")
    p.set_defaults(func=cmd_reload)

    p = sub.add_parser("render", help="write the Asterisk configuration derived from the plans, to review and diff")
    p.add_argument("paths", nargs="*", help="plan files (default: the configured plans)")
    p.add_argument("-o", "--output", required=True, help="folder to write the .conf files into")
    p.set_defaults(func=cmd_render)

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

    p = sub.add_parser("operators", help="operators: accounts, log in/out, pause/resume, live status, softphone codes")
    p.add_argument("action", choices=("list", "password", "login", "logout", "pause", "resume", "status", "codes"))
    p.add_argument("name", nargs="?")
    p.add_argument("--reason", default="pause", help="why the operator pauses (pause only)")
    p.set_defaults(func=cmd_operators)

    p = sub.add_parser("store", help="the store of every call's record: migrate it, or copy one store into another")
    p.add_argument("action", choices=["migrate", "copy"])
    p.add_argument("--from", dest="source", default="", help="copy: the store to read (sqlite:///PATH or postgresql://...)")
    p.add_argument("--to", dest="target", default="", help="copy: the empty store to fill")
    p.set_defaults(func=cmd_store)

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
    p.set_defaults(func=cmd_console)

    p = sub.add_parser("secrets", help="the generated secrets")
    p.add_argument("action", choices=("show",))
    p.set_defaults(func=cmd_secrets)

    p = sub.add_parser("settings", help="every setting, its value and help")
    p.set_defaults(func=cmd_settings)

    cluster_cli.add_parser(sub)

    p = sub.add_parser("incidents", help="the latest incidents")
    p.add_argument("--limit", type=int, default=20)
    p.set_defaults(func=cmd_incidents)

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


if __name__ == "__main__":
    sys.exit(main())
