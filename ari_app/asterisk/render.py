"""Render the Asterisk configuration of one instance from `config/asterisk/` templates,
the settings, the generated secrets and the plan. Pure: returns file name -> text.

Templates hold `@@name@@` placeholders (Asterisk's own `${...}` stays untouched);
sections that depend on the plan (carriers, operators, numbers, queues) are made here.
"""

from __future__ import annotations

import re
from pathlib import Path

from ari_app.asterisk.layout import Layout
from ivr.plan import Plan
from ivr.secrets import Secrets
from ivr.settings import PROJECT_DIR, Settings

TEMPLATES = PROJECT_DIR / "config" / "asterisk"
PLACEHOLDER = re.compile(r"@@([a-z_]+)@@")
ARI_USER = "ivr112"
AMI_USER = "ivr112"
CARRIER_CONTEXT = "ivr112-from-carrier"
OPERATOR_CONTEXT = "ivr112-operators"
QUEUE_CONTEXT = "ivr112-queue"
CODECS = ("ulaw", "alaw")


def carrier_endpoint(name: str) -> str:
    return f"carrier-{name}"


def _carriers(plan: Plan) -> str:
    out = []
    for c in plan.carriers:
        ep = carrier_endpoint(c.name)
        out.append(
            f"[{ep}]\ntype = endpoint\ncontext = {CARRIER_CONTEXT}\ndisallow = all\nallow = {','.join(CODECS)}\n"
            f"language = {plan.default_language}\ndirect_media = no\nrtp_symmetric = yes\n"
            "trust_id_inbound = yes\nsend_connected_line = no\ngeoloc_incoming_call_profile = ivr112-incoming\n"
        )
        out.append(f"[{ep}]\ntype = identify\nendpoint = {ep}\n" + "".join(f"match = {m}\n" for m in c.match))
    return "\n".join(out)


def _operators(settings: Settings, secrets: Secrets, plan: Plan) -> str:
    out = []
    for op in settings.operators:
        label = op.full_name or op.name
        out.append(
            f"[{op.name}]\ntype = endpoint\ncontext = {OPERATOR_CONTEXT}\ndisallow = all\nallow = {','.join(CODECS)}\n"
            f"language = {plan.default_language}\nauth = {op.name}\naors = {op.name}\ndirect_media = no\n"
            f"rtp_symmetric = yes\nforce_rport = yes\nrewrite_contact = yes\ncallerid = \"{label}\" <{op.name}>\n"
        )
        out.append(
            f"[{op.name}]\ntype = auth\nauth_type = digest\nusername = {op.name}\n"
            f"password = {secrets.operator_password(op.name)}\n"
        )
        out.append(f"[{op.name}]\ntype = aor\nmax_contacts = 1\nremove_existing = yes\n")
    return "\n".join(out)


def _numbers(plan: Plan) -> str:
    return "\n".join(f"exten => {n},1,Goto(ivr112-emergency,{n},1)" for n in plan.numbers)


def _queue_dialplan(plan: Plan) -> str:
    out = []
    for q in plan.queues.values():
        out.append(
            f"exten => {q.name},1,Answer()\n"
            f" same => n(again),Queue({q.name},r)\n"
            f" same => n,Verbose(1,ivr112: ${{CHANNEL}} left queue {q.name} with QUEUESTATUS=${{QUEUESTATUS}}, back in)\n"
            f" same => n,Wait(1)\n"
            f" same => n,Goto(again)"
        )
    return "\n".join(out)


def _queues_conf(settings: Settings, plan: Plan) -> str:
    out = []
    for q in plan.queues.values():
        members = "".join(
            f"member => PJSIP/{op.name},0,{op.full_name or op.name},PJSIP/{op.name}\n" for op in settings.operators
        )
        out.append(
            f"[{q.name}]\nstrategy = {q.strategy}\ntimeout = {q.ring_timeout}\nwrapuptime = {q.wrapup}\nretry = 1\n"
            "ringinuse = no\nannounce-frequency = 0\nannounce-position = no\nsetinterfacevar = yes\n"
            "setqueuevar = yes\nsetqueueentryvar = yes\n" + members
        )
    return "\n".join(out)


def render(settings: Settings, secrets: Secrets, plan: Plan, layout: Layout) -> dict[str, str]:
    """Every config file of the instance, by file name."""
    values = {
        "instance": layout.instance,
        "etc": layout.etc,
        "moddir": layout.module_dir(),
        "lib": layout.lib,
        "spool": layout.spool,
        "run": layout.run,
        "log": layout.log,
        "sip_host": settings.sip_host,
        "sip_port": str(settings.sip_port),
        "ari_host": settings.ari_host,
        "ari_port": str(settings.ari_port),
        "ari_user": ARI_USER,
        "ari_password": secrets.ari_password,
        "ami_host": settings.ami_host,
        "ami_port": str(settings.ami_port),
        "ami_user": AMI_USER,
        "ami_secret": secrets.ami_secret,
        "ami_permit": f"{settings.ami_host}/255.255.255.255" if settings.ami_host != "0.0.0.0" else "0.0.0.0/0.0.0.0",
        "http_host": settings.http_host,
        "http_port": str(settings.http_port),
        "rtp_start": str(settings.rtp_start),
        "rtp_end": str(settings.rtp_end),
        "app": settings.app_name,
        "plan_id": plan.id,
        "language": plan.default_language,
        "greeting": "&".join(layout.sound(plan.default_language, p) for p in plan.entry.greeting),
        "default_queue": plan.default_queue.name,
        "carriers": _carriers(plan),
        "operators": _operators(settings, secrets, plan),
        "numbers": _numbers(plan),
    }
    files: dict[str, str] = {}
    for template in sorted(TEMPLATES.glob("*.conf")):
        text = template.read_text(encoding="utf-8")
        local = dict(values)
        local["queues"] = _queues_conf(settings, plan) if template.name == "queues.conf" else _queue_dialplan(plan)

        def fill(m: re.Match[str], local: dict[str, str] = local, name: str = template.name) -> str:
            key = m.group(1)
            if key not in local:
                raise KeyError(f"{name}: unknown placeholder @@{key}@@")
            return local[key]

        files[template.name] = PLACEHOLDER.sub(fill, text)
    return files


def write_rendered(files: dict[str, str], target: Path) -> None:
    """Write rendered files to `target` (mode 0640: they hold secrets)."""
    target.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        path = target / name
        path.write_text(text, encoding="utf-8")
        path.chmod(0o640)
