"""Render the Asterisk configuration of one instance from `config/asterisk/` templates,
the settings, the generated secrets and the plans. Pure: returns file name -> text.

Templates hold `@@name@@` placeholders (Asterisk's own `${...}` stays untouched);
the sections that depend on the plans (carriers, operators, trunks, numbers, queues,
agencies) are made here. `ivr112 render` writes the result for review.
"""

from __future__ import annotations

import re
from pathlib import Path

from ari_app.asterisk import cel, webrtc
from ari_app.asterisk.layout import Layout
from ivr.errors import ConfigError
from ivr.location.invite_headers import INVITE_HEADER_VARIABLES
from ivr.numbers import QUEUE_SOUND_OPTIONS, say_conf
from ivr.operators import AMI_EVENTS
from ivr.plan import Agency, Carrier, Plan, PlanSet, Target, Trunk
from ivr.prompts import SYSTEM_SET
from ivr.secrets import Secrets
from ivr.settings import PROJECT_DIR, Operator, Settings
from ivr.texts import EDGE_CONTENT_TYPE, JOURNAL_MARK, JOURNAL_SUFFIX, JOURNAL_VERSION

TEMPLATES = PROJECT_DIR / "config" / "asterisk"
PLACEHOLDER = re.compile(r"@@([a-z_]+)@@")
ARI_USER = "ivr112"
AMI_USER = "ivr112"
OPERATOR_CONTEXT = "ivr112-operators"
QUEUE_CONTEXT = "ivr112-queue"
AGENCY_CONTEXT = "ivr112-agency"
CONFERENCE_CONTEXT = "ivr112-conference"
# The pre-dial handler that writes the incident's data on an agency leg the dialplan dials (extensions.conf).
AGENCY_LEG_HANDLER = "ivr112-agency-leg^s^1"
REFUSE_CONTEXT = "ivr112-refuse"
CODES_CONTEXT_PREFIX = "ivr112-codes-"
CODECS = ("ulaw", "alaw")
# QUEUESTATUS values after which a caller leaves for the queue's overflow target.
OVERFLOW_STATUSES = ("TIMEOUT", "JOINEMPTY", "LEAVEEMPTY", "JOINUNAVAIL", "LEAVEUNAVAIL", "FULL")
RETRY_RING_SECONDS = 3
# QUEUE_PRIO of a call by the priority the app gave it; higher is answered first.
QUEUE_PRIORITY = {"urgent": 10, "normal": 0, "low": -10}
# Feature codes an operator dials from the softphone (they change app_queue directly, so
# they work with the app down; the app follows through AMI events).
FEATURE_CODES = {"*11": "login", "*12": "logout", "*13": "pause", "*14": "resume"}
TRANSFER_PREFIX = "8"
# Set on an operator's own channels (endpoint set_var): the plan whose codes the operator's
# own calls to 801... reach. A caller's channel carries IVR112_PLAN, which wins.
OPERATOR_PLAN_VAR = "IVR112_OPERATOR_PLAN"
# Also set by the endpoint: the plan whose queues *11 logs the operator in to, or ALL_PLANS.
OPERATOR_QUEUES_VAR = "IVR112_OPERATOR_QUEUES"
ALL_PLANS = "all"
# A cluster (docs/cluster.md): the operators' queues live on one node (its standby next); a
# caller on another node is sent there over SIP, as a leg of its own that names the
# caller's channel, so the holding node's app records on the caller's incident.
NODE_PEER = "ivr112-node"  # the endpoint those legs come in on (user name + digest auth)
QUEUE_NODE_PREFIX = "ivr112-queue-node"  # the endpoints they go out on: 1 the home, 2 its standby
REMOTE_QUEUE_CONTEXT = "ivr112-queue-remote"
QUEUE_LEG_HANDLER = "ivr112-queue-leg"
CALLER_CHANNEL_VAR = "IVR112_CALLER_CHANNEL"  # also in manager.conf's channelvars
# "1" once the plan's dialplan has switched talk detection on (ari.conf's channelvars hands
# it to the app in the StasisStart): the app then asks for nothing (one ARI request a call).
TALK_DETECT_VAR = "IVR112_TALK_DETECT"
CALLER_CHANNEL_HEADER = "X-Ivr112-Caller-Channel"
# Set on a caller by this node's watcher when the queues' node it was sent to is lost
# (ari_app/cluster/queue_legs.py): the leg's end then sends it on, not away.
QUEUE_NODE_LOST_VAR = "IVR112_QUEUE_NODE_LOST"
QUALIFY_S = 1  # how often a node asks the queues' nodes if they are there
# Third Stasis argument of a caller the agency context hands to the app: "agency:<name>".
AGENCY_ENTRY = "agency:"


def call_recording_name(channel_id: str) -> str:
    """The whole-call recording of a caller's channel (started in the dialplan, before the app)."""
    return f"call-{channel_id}"


# SIP MESSAGEs from a carrier go to a context of their own (not the carrier's calls' context,
# where a MESSAGE to 112 would run Stasis() on a Message channel). Asterisk hands a MESSAGE
# to every handler that has a destination for it, the dialplan first, then the ARI app
# subscribed to the carrier's endpoint (main/message.c, msg_q_cb): this context writes it
# as a line of the texts' journal (ivr/texts.py, JOURNAL_VERSION), which the app reads,
# and ARI's TextMessageReceived tells the app to read it now.
TEXT_CONTEXT = "ivr112-texts"
# Any R-URI user a carrier may send a text to (112, +62112, sos...): one character or more.
TEXT_EXTEN = "_[+0-9A-Za-z*#]!"
JOURNAL_FIELDS = ("MESSAGE(from)", "MESSAGE(to)", "MESSAGE_DATA(Contact)", "MESSAGE_DATA(Call-ID)",
                  f"MESSAGE_DATA({EDGE_CONTENT_TYPE})", "MESSAGE_DATA(Call-Info)", "MESSAGE(body)")


def carrier_endpoint(name: str) -> str:
    return f"carrier-{name}"


def carrier_context(name: str) -> str:
    return f"ivr112-carrier-{name}"


def text_context(name: str) -> str:
    return f"{TEXT_CONTEXT}-{name}"


def _text_context(name: str, layout: Layout) -> str:
    """The carrier's MESSAGE context: each text to the journal, before the app is told."""
    # Each field behind JOURNAL_MARK: BASE64_ENCODE of an empty value logs a WARNING and gives nothing.
    fields = " ".join(f"${{BASE64_ENCODE({JOURNAL_MARK}${{{f}}})}}" for f in JOURNAL_FIELDS)
    line = f"{JOURNAL_VERSION} ${{STRFTIME(,UTC,%Y-%m-%dT%H:%M:%S.%3q+00:00)}} {carrier_endpoint(name)} {fields}"
    journal = f"{layout.texts_journal}/${{STRFTIME(,UTC,%Y%m%d)}}{JOURNAL_SUFFIX}"
    return f"[{text_context(name)}]\nexten => {TEXT_EXTEN},1,Set(FILE({journal},,,al,u)={line})\n"


def plan_context(plan: Plan) -> str:
    return f"ivr112-plan-{plan.id}"


def trunk_endpoint(plan: Plan, agency: Agency, index: int) -> str:
    """The PJSIP endpoint of an agency's trunk (1-based index, in dialling order)."""
    return f"{plan.id}-{agency.name}-{index}"


def trunk_dial(plan: Plan, agency: Agency, index: int, trunk: Trunk) -> str:
    return f"PJSIP/{trunk.number}@{trunk_endpoint(plan, agency, index)}"


def agency_exten(plan: Plan, agency: str) -> str:
    return f"{plan.id}-{agency}"


def transfer_codes(plan: Plan) -> dict[str, str]:
    """What an operator dials (or transfers to) to reach each agency of the plan: 801, 802, ...
    in the plan's order."""
    return {f"{TRANSFER_PREFIX}{i:02d}": name for i, name in enumerate(plan.agencies, start=1)}


def codes_context(plan: Plan) -> str:
    return f"{CODES_CONTEXT_PREFIX}{plan.id}"


def operator_plan(op: Operator, plans: PlanSet) -> Plan | None:
    """The plan an operator belongs to; None for a provincial operator (no `plan`: every
    plan's queues, and the default plan's codes for their own calls)."""
    if not op.plan:
        return None
    plan = plans.by_id(op.plan)
    if plan is None:
        raise ConfigError(
            f"operator {op.name!r} belongs to plan {op.plan!r}, which is not served (plans: {', '.join(p.id for p in plans.plans)}); "
            "fix the operator's 'plan' in the settings or add the plan to 'plans'"
        )
    return plan


def operator_queues(op: Operator, plans: PlanSet) -> list[str]:
    """The queues an operator logs in to: their plan's, or every plan's for a provincial one."""
    plan = operator_plan(op, plans)
    return all_queues(plans) if plan is None else [plan.asterisk_queue(q) for q in plan.queues]


def operator_interface(name: str) -> str:
    return f"PJSIP/{name}"


def carrier_dial(carrier: str, number: str) -> str:
    """Dial string of a callback to `number` through the carrier's SBC."""
    return f"PJSIP/{number}@{carrier_endpoint(carrier)}"


def all_queues(plans: PlanSet) -> list[str]:
    return [plan.asterisk_queue(q) for plan in plans.plans for q in plan.queues]


def _goto_person(plan: Plan, target: Target) -> str:
    if target.kind == "agency":
        return f"Goto({AGENCY_CONTEXT},{agency_exten(plan, target.name)},1)"
    return f"Goto({QUEUE_CONTEXT},{plan.asterisk_queue(target.name)},1)"


# RTP sockets on the SIP address, not on every interface (Asterisk's default binds them to
# [::], reachable from any network the machine is on; found by tests/chaos/test_security.py).
MEDIA_BIND = "media_address = @@sip_host@@\nbind_rtp_to_media_address = yes\n"


# Behind a cluster's edges (the `sip_edges` setting) every carrier's call comes from an edge's
# address, so a carrier is known by the header the edge writes from the call's source address
# (config/kamailio/edge.cfg, route CARRIER) and by nothing else; its endpoint takes SIP from
# the edges and from the carrier's own networks only (a header sent from anywhere else is
# refused by the endpoint's ACL: Asterisk answers 401). The edges' own OPTIONS probes, which name no carrier, are answered by an
# endpoint of the edges'.
CARRIER_HEADER = "X-Ivr112-Carrier"
EDGE_ENDPOINT = "ivr112-edge"


def identifier_order(settings: Settings) -> str:
    """pjsip's endpoint_identifier_order: softphones by user name first, so an operator on a
    carrier's host is never taken for it; then carriers by address, or behind an edge by
    the edge's header (before the address: every carrier shares the edge's)."""
    return "username,header,ip" if settings.sip_edges else "username,ip"


def _carrier_identify(carrier: Carrier, endpoint: str, edges: tuple[str, ...]) -> str:
    """The carrier's identify section: by its addresses, or behind edges by the edges' header."""
    if not edges:
        return f"[{endpoint}]\ntype = identify\nendpoint = {endpoint}\n" + "".join(f"match = {m}\n" for m in carrier.match)
    return f"[{endpoint}]\ntype = identify\nendpoint = {endpoint}\nmatch_header = {CARRIER_HEADER}: {carrier.name}\n"


def _edges_acl(edges: tuple[str, ...], own: tuple[str, ...] = ()) -> str:
    """An endpoint's ACL: SIP from the edges' addresses only, and from `own` networks (a
    carrier's own: its SBC, which an operator's callback calls straight from the node, sends
    that call's BYE from there)."""
    return "deny = 0.0.0.0/0.0.0.0\n" + "".join(f"permit = {e}/32\n" for e in edges) + "".join(f"permit = {m}\n" for m in own)


def _edge_sections(edges: tuple[str, ...]) -> str:
    """Behind edges: the endpoint that answers their probes and takes no call."""
    return (f"[{EDGE_ENDPOINT}]\ntype = endpoint\ncontext = {REFUSE_CONTEXT}\ndisallow = all\nallow = {CODECS[0]}\n"
            f"{_edges_acl(edges)}[{EDGE_ENDPOINT}]\ntype = identify\nendpoint = {EDGE_ENDPOINT}\n"
            + "".join(f"match = {e}/32\n" for e in edges))


def _carriers(plans: PlanSet, layout: Layout, edges: tuple[str, ...] = ()) -> tuple[str, str]:
    """PJSIP sections of the carriers and their dialplan contexts (`edges`: the addresses the
    cluster's edges send from, when the carriers' calls come through them)."""
    endpoints: list[str] = [_edge_sections(edges)] if edges else []
    contexts: list[str] = []
    seen: dict[str, list[str]] = {}
    for plan in plans.plans:
        for c in plan.carriers:
            lines = seen.setdefault(c.name, [])
            if not lines:
                ep = carrier_endpoint(c.name)
                aor = f"aors = {ep}\n" if c.callback_host else ""
                endpoints.append(
                    f"[{ep}]\ntype = endpoint\ncontext = {carrier_context(c.name)}\ndisallow = all\nallow = {','.join(CODECS)}\n{aor}"
                    f"language = {plan.default_language}\ndirect_media = no\nrtp_symmetric = yes\n{MEDIA_BIND}"
                    "trust_id_inbound = yes\nsend_connected_line = no\ngeoloc_incoming_call_profile = ivr112-incoming\n"
                    f"message_context = {text_context(c.name)}\n{_edges_acl(edges, c.match) if edges else ''}"
                )
                endpoints.append(_carrier_identify(c, ep, edges))
                if c.callback_host:
                    note = "; PLACEHOLDER callback address: set the carrier's SBC in the plan\n" if c.placeholder else ""
                    endpoints.append(f"{note}[{ep}]\ntype = aor\ncontact = sip:{c.callback_host}:{c.callback_port}\n")
            lines += [f"exten => {n},1,Goto({plan_context(plan)},{n},1)" for n in plan.numbers]
    for name, lines in seen.items():
        contexts.append(f"[{carrier_context(name)}]\n" + "\n".join(lines) + f"\ninclude => {REFUSE_CONTEXT}\n")
        contexts.append(_text_context(name, layout))
    return "\n".join(endpoints), "\n".join(contexts)


def _operator_vars(op: Operator, plans: PlanSet) -> str:
    """The endpoint's channel variables that say which plan the operator belongs to."""
    plan = operator_plan(op, plans)
    return (f"set_var = {OPERATOR_PLAN_VAR}={(plan or plans.default).id}\n"
            f"set_var = {OPERATOR_QUEUES_VAR}={plan.id if plan else ALL_PLANS}\n")


def _operator_aor(settings: Settings, name: str) -> str:
    """Where the operator's softphone is: registered here, or (in a cluster) at the edge,
    which finds it in its own registrations and forwards."""
    if settings.sip_edge:
        return f"[{name}]\ntype = aor\ncontact = sip:{name}@{settings.sip_edge}\n"
    return f"[{name}]\ntype = aor\nmax_contacts = 1\nremove_existing = yes\n"


def _operators(settings: Settings, secrets: Secrets, plans: PlanSet) -> str:
    out = []
    # Behind the edge the phone's Contact is already right; rewriting it to the source (the
    # edge) would send in-dialog requests to the edge as their target.
    rewrite = "no" if settings.sip_edge else "yes"
    for op in settings.operators:
        label = op.full_name or op.name
        home = operator_plan(op, plans) or plans.default
        out.append(
            f"[{op.name}]\ntype = endpoint\ncontext = {OPERATOR_CONTEXT}\ndisallow = all\nallow = {','.join(CODECS)}\n"
            f"language = {home.default_language}\nauth = {op.name}\naors = {op.name}\ndirect_media = no\n"
            f"rtp_symmetric = yes\nforce_rport = yes\nrewrite_contact = {rewrite}\ncallerid = \"{label}\" <{op.name}>\n"
            f"{_operator_vars(op, plans)}{MEDIA_BIND}"
        )
        out.append(
            f"[{op.name}]\ntype = auth\nauth_type = digest\nusername = {op.name}\n"
            f"password = {secrets.operator_password(op.name)}\n"
        )
        out.append(_operator_aor(settings, op.name))
        if webrtc.enabled(settings):
            out.append(webrtc.endpoint(op, password=secrets.webrtc_password(op.name), context=OPERATOR_CONTEXT,
                                       language=home.default_language, media_bind=_operator_vars(op, plans) + MEDIA_BIND))
    if webrtc.enabled(settings) and settings.operators:
        out.insert(0, webrtc.transport())
    return "\n".join(out)


def _trunks(plans: PlanSet) -> str:
    out = []
    for plan in plans.plans:
        for agency in plan.agencies.values():
            for i, trunk in enumerate(agency.trunks, start=1):
                ep = trunk_endpoint(plan, agency, i)
                note = "; PLACEHOLDER address: set the agency's real trunk in the plan\n" if trunk.placeholder else ""
                auth = f"outbound_auth = {ep}-auth\n" if trunk.username else ""
                transport = ";transport=tcp" if trunk.transport == "tcp" else ""
                out.append(
                    f"; {agency.label}, trunk {i}\n{note}[{ep}]\ntype = endpoint\ncontext = {REFUSE_CONTEXT}\n"
                    f"disallow = all\nallow = {','.join(CODECS)}\naors = {ep}\n{auth}direct_media = no\nrtp_symmetric = yes\n"
                    f"send_pai = yes\nsend_connected_line = no\ngeoloc_outgoing_call_profile = ivr112-agency\n{MEDIA_BIND}"
                )
                out.append(f"[{ep}]\ntype = aor\ncontact = sip:{trunk.host}:{trunk.port}{transport}\n")
                if trunk.username:
                    out.append(
                        f"[{ep}-auth]\ntype = auth\nauth_type = digest\nusername = {trunk.username}\npassword = {trunk.password}\n"
                    )
    if any(t.transport == "tcp" for p in plans.plans for a in p.agencies.values() for t in a.trunks):
        out.insert(0, "[transport-tcp]\ntype = transport\nprotocol = tcp\nbind = @@sip_host@@:@@sip_port@@\n")
    return "\n".join(out)


def _plan_contexts(settings: Settings, plans: PlanSet, layout: Layout) -> str:
    out = []
    for plan in plans.plans:
        greeting = "&".join(layout.sound(plan.id, plan.default_language, p) for p in plan.entry.greeting)
        play = f" same => n,Playback({greeting})\n" if greeting else ""
        out.append(
            f"[{plan_context(plan)}]\n"
            f"exten => _X.,1,Set(CHANNEL(language)={plan.default_language})\n"
            f" same => n,Set(__IVR112_PLAN={plan.id})\n"
            # Answered here, before the app: the line opens as fast as plain Asterisk can
            # open it, whether the app is quick, slow or away (issue 7's benchmark).
            f" same => n,Answer()\n"
            # The whole call, IVR to hang-up (operator, agency, transfers): on the caller's channel.
            f" same => n,MixMonitor({layout.recordings}/{call_recording_name('${UNIQUEID}')}.wav)\n"
            # The app hears the caller talk (ChannelTalkingStarted): a silent caller never does.
            f" same => n,Set(TALK_DETECT(set)=)\n"
            f" same => n,Set({TALK_DETECT_VAR}=1)\n"
            f"{_invite_header_copies()}"
            f" same => n(stasis),Stasis({settings.app_name},{plan.id},${{EXTEN}})\n"
            f" same => n,Verbose(1,ivr112: ${{CHANNEL}} back from Stasis with STASISSTATUS=${{STASISSTATUS}}, fallback to operators)\n"
            f" same => n,Answer()\n"
            f" same => n,GotoIf($[\"${{STASISSTATUS}}\" != \"FAILED\"]?queue)\n"
            f"{play}"
            f" same => n(queue),Goto({QUEUE_CONTEXT},{plan.asterisk_queue(plan.default_queue.name)},1)\n"
        )
    return "\n".join(out)


def _invite_header_copies() -> str:
    """Dialplan lines copying the caller's INVITE headers into the channel variables
    ari.conf's `channelvars` hands the app in the StasisStart (ivr.location.invite_headers).
    Set() keeps everything after its first "=", commas and quotes included; a channel that
    is not PJSIP (no headers to read) skips them and the app reads what it can itself."""
    lines = [' same => n,GotoIf($["${CHANNEL(channeltype)}" != "PJSIP"]?stasis)\n']
    lines += [f" same => n,Set({var}=${{PJSIP_HEADER(read,{header})}})\n" for var, header in INVITE_HEADER_VARIABLES.items()]
    return "".join(lines)


def queue_node_endpoint(index: int) -> str:
    """The endpoint of the `index`-th node (1: home, 2: standby) of `queue_nodes`."""
    return f"{QUEUE_NODE_PREFIX}{index}"


def queue_nodes_before_me(settings: Settings) -> list[int]:
    """The queues' nodes (1-based, in order) a caller here is sent to before this node's own
    queue: all of them on another node, the home on the standby, none on the home."""
    me = f"{settings.sip_host}:{settings.sip_port}"
    nodes = list(settings.queue_nodes)
    ahead = nodes[:nodes.index(me)] if me in nodes else nodes
    return list(range(1, len(ahead) + 1))


def _to_queue_node(settings: Settings, name: str) -> list[str]:
    """Dialplan lines that send the caller to the node holding queue `name`, if not here;
    on a node that does not answer (down: its contact unreachable) the next, then this
    node's own queue, so the caller is never left without one."""
    ahead = queue_nodes_before_me(settings)
    if not ahead:
        return []
    lines = [f" same => n,Set(__{CALLER_CHANNEL_VAR}=${{UNIQUEID}})"]
    for index in ahead:
        lines += [
            f" same => n,Set({QUEUE_NODE_LOST_VAR}=)",
            f" same => n,Dial(PJSIP/{name}@{queue_node_endpoint(index)},,b({QUEUE_LEG_HANDLER}^s^1))",
            f' same => n,GotoIf($["${{DIALSTATUS}}" = "ANSWER" & "${{{QUEUE_NODE_LOST_VAR}}}" != "1"]?done)',
            f" same => n,Verbose(1,ivr112: ${{CHANNEL}} queue node {index} for {name} did not take the call: ${{DIALSTATUS}})",
        ]
    return lines


def _queue_dialplan(settings: Settings, plans: PlanSet) -> str:
    out = []
    for plan in plans.plans:
        for q in plan.queues.values():
            name = plan.asterisk_queue(q.name)
            lines = [f"exten => {name},1,Answer()", f" same => n,Set(IVR112_QUEUE={name})", *_to_queue_node(settings, name),
                     f" same => n(local),Verbose(2,ivr112: ${{CHANNEL}} in queue {name} here)"]
            if q.overflow is not None:
                statuses = " | ".join(f'"${{QUEUESTATUS}}" = "{s}"' for s in OVERFLOW_STATUSES)
                lines += [
                    # After an overflow that found nobody, wait here: never bounce for ever.
                    ' same => n,GotoIf($["${IVR112_OVERFLOWED}" = "1"]?wait)',
                    f" same => n,Queue({name},r,,,{q.overflow.after})",
                    f" same => n,Verbose(1,ivr112: ${{CHANNEL}} left queue {name} with QUEUESTATUS=${{QUEUESTATUS}})",
                    f" same => n,GotoIf($[{statuses}]?overflow)",
                    " same => n(wait),Queue(" + name + ",r)",
                    " same => n,Playtones(ring)",
                    f" same => n,Wait({RETRY_RING_SECONDS})",
                    " same => n,StopPlaytones()",
                    " same => n,Goto(wait)",
                    f" same => n(overflow),Verbose(1,ivr112: ${{CHANNEL}} overflows from {name} to {q.overflow.to})",
                    " same => n,Set(__IVR112_OVERFLOWED=1)",
                    " same => n,Set(IVR112_VIA=overflow)",
                    f" same => n,{_goto_person(plan, q.overflow.to)}",
                ]
            else:
                lines += [
                    f" same => n(wait),Queue({name},r)",
                    f" same => n,Verbose(1,ivr112: ${{CHANNEL}} left queue {name} with QUEUESTATUS=${{QUEUESTATUS}}, back in)",
                    " same => n,Playtones(ring)",
                    f" same => n,Wait({RETRY_RING_SECONDS})",
                    " same => n,StopPlaytones()",
                    " same => n,Goto(wait)",
                ]
            if queue_nodes_before_me(settings):
                lines.append(" same => n(done),Hangup()")
            out.append("\n".join(lines))
    return "\n".join(out)


def _remote_queue(settings: Settings, plans: PlanSet) -> str:
    """In a cluster: the context where callers other nodes send here join the queue (the
    caller's channel on its node named in a header, kept on the leg for the app), and the
    pre-dial handler that writes that header on a leg this node sends."""
    if not settings.queue_nodes:
        return ""
    lines = [f"[{REMOTE_QUEUE_CONTEXT}]"]
    for name in all_queues(plans):
        lines += [
            f"exten => {name},1,Set({CALLER_CHANNEL_VAR}=${{PJSIP_HEADER(read,{CALLER_CHANNEL_HEADER})}})",
            f" same => n,Verbose(1,ivr112: ${{CHANNEL}} caller ${{{CALLER_CHANNEL_VAR}}} sent here by another node for {name})",
            f" same => n,Goto({QUEUE_CONTEXT},{name},local)",
        ]
    lines += [f"include => {REFUSE_CONTEXT}", "", f"[{QUEUE_LEG_HANDLER}]",
              f"exten => s,1,Set(PJSIP_HEADER(add,{CALLER_CHANNEL_HEADER})=${{{CALLER_CHANNEL_VAR}}})", " same => n,Return()"]
    return "\n".join(lines) + "\n"


def _node_peers(settings: Settings, secrets: Secrets) -> str:
    """In a cluster: the endpoint other nodes' queue legs come in on (found by its user name,
    digest auth with the nodes' shared password), and one per queues' node to send them to,
    asked every QUALIFY_S if it is there (an unreachable one is skipped at once)."""
    if not settings.queue_nodes:
        return ""
    common = (f"disallow = all\nallow = {','.join(CODECS)}\ndirect_media = no\nrtp_symmetric = yes\n"
              f"trust_id_inbound = yes\nsend_pai = yes\n{MEDIA_BIND}")
    out = [
        f"[{NODE_PEER}]\ntype = endpoint\ncontext = {REMOTE_QUEUE_CONTEXT}\nauth = {NODE_PEER}\n{common}",
        f"[{NODE_PEER}]\ntype = auth\nauth_type = digest\nusername = {NODE_PEER}\npassword = {secrets.node_sip_password}\n",
    ]
    for index, address in enumerate(settings.queue_nodes, start=1):
        ep = queue_node_endpoint(index)
        out.append(f"[{ep}]\ntype = endpoint\ncontext = {REFUSE_CONTEXT}\naors = {ep}\noutbound_auth = {NODE_PEER}\n"
                   f"from_user = {NODE_PEER}\n{common}")
        out.append(f"[{ep}]\ntype = aor\ncontact = sip:{address}\nqualify_frequency = {QUALIFY_S}\nqualify_timeout = 1.0\n")
    return "\n".join(out)


def agency_entry_arg(agency: str) -> str:
    """The Stasis argument with which the agency context hands a caller to the app."""
    return f"{AGENCY_ENTRY}{agency}"


def _agency_dialplan(settings: Settings, plans: PlanSet) -> str:
    """An agency reached from the dialplan (the queue's overflow, an operator's transfer).

    A 112 caller (IVR112_PLAN set by the plan's context) goes to the app, which dials the
    trunks as it does from the menu: it records each trunk's result, fails over at once
    on a dead trunk, and knows when the agency answered. With the app away (Stasis fails
    at once) the dialplan dials the trunks itself. Conference legs and operators' own
    calls are dialled here directly."""
    out = []
    for plan in plans.plans:
        for agency in plan.agencies.values():
            lines = [
                f"exten => {agency_exten(plan, agency.name)},1,Set(IVR112_AGENCY={agency.name})",
                ' same => n,GotoIf($["${IVR112_PLAN}" = "" | "${IVR112_CONFERENCE}" = "1"]?dial)',
                f" same => n,Stasis({settings.app_name},{plan.id},${{EXTEN}},{agency_entry_arg(agency.name)},${{IVR112_VIA}})",
                " same => n,Set(IVR112_VIA=)",
                ' same => n,GotoIf($["${STASISSTATUS}" = "FAILED"]?dial)',
                # Back from the app without a route (it never does that on purpose): a person.
                f" same => n,{_goto_person(plan, Target('queue', plan.default_queue.name))}",
                f" same => n(dial),Verbose(1,ivr112: ${{CHANNEL}} dials {agency.name} from the dialplan)",
            ]
            for i, trunk in enumerate(agency.trunks, start=1):
                lines.append(f" same => n,Dial({trunk_dial(plan, agency, i, trunk)},{trunk.ring_timeout},b({AGENCY_LEG_HANDLER}))")
            # An agency dialled into an operator's conference that does not answer just ends;
            # the caller is still with the operator.
            lines.append(' same => n,ExecIf($["${IVR112_CONFERENCE}" = "1"]?Hangup())')
            lines.append(f" same => n,Verbose(1,ivr112: ${{CHANNEL}} no trunk of {agency.name} answered, to {agency.on_failure})")
            lines.append(f" same => n,{_goto_person(plan, agency.on_failure)}")
            out.append("\n".join(lines))
    return "\n".join(out)


def _queues_conf(settings: Settings, plans: PlanSet, layout: Layout) -> str:
    out = []
    for plan in plans.plans:
        for q in plan.queues.values():
            # Members are the operators logged in (AMI QueueAdd or *11), kept across restarts.
            # With an overflow, a queue nobody can answer (none logged in, all paused or
            # unreachable) is left at once for the overflow target.
            nobody = "paused,unavailable,invalid,unknown"
            # Position and wait spoken from our prompts; numbers by say.conf's Indonesian rules.
            sounds = "".join(f"{option} = {layout.sounds}/{SYSTEM_SET}/{sound}\n" for option, sound in QUEUE_SOUND_OPTIONS.items()
                             if option != "periodic-announce")
            empty = f"joinempty = {nobody}\nleavewhenempty = {nobody}\n" if q.overflow else ""
            announce = (
                f"announce-frequency = {q.announce_every}\nmin-announce-frequency = 15\nannounce-position = yes\n"
                "announce-holdtime = yes\nannounce-round-seconds = 10\n" + sounds
                if q.announce_position
                else "announce-frequency = 0\nannounce-position = no\n"
            )
            out.append(
                f"[{plan.asterisk_queue(q.name)}]\nstrategy = {q.strategy}\ntimeout = {q.ring_timeout}\nwrapuptime = {q.wrapup}\n"
                f"retry = 1\nringinuse = no\n{announce}{empty}"
                "setinterfacevar = yes\nsetqueuevar = yes\nsetqueueentryvar = yes\n"
            )
    return "\n".join(out)


def _operator_codes(plans: PlanSet, layout: Layout) -> str:
    """Feature codes for the softphone (*11 log in, *12 log out, *13 pause, *14 resume) and
    the agencies' transfer codes (801...), each plan's own.

    A code reaches the agency of the plan the call belongs to: a caller transferred blind
    carries IVR112_PLAN; an operator's own call (an attended transfer) carries the
    operator's plan (OPERATOR_PLAN_VAR, set by the endpoint). *11/*12 put an operator in
    their plan's queues, or in every plan's for a provincial operator."""
    me = "PJSIP/${CHANNEL(endpoint)}"
    beep = f"Playback({layout.beep})"
    scope = f"${{{OPERATOR_QUEUES_VAR}}}"

    def each_queue(app: str, args: str) -> list[str]:
        # GotoIf past each plan's queues that are not the operator's (pbx builtins only:
        # the instance loads no ExecIf).
        lines, label = [], ""
        for plan in plans.plans:
            lines.append(f' same => n{label},GotoIf($["{scope}" != "{ALL_PLANS}" & "{scope}" != "{plan.id}"]?not-{plan.id})')
            lines += [f" same => n,{app}({plan.asterisk_queue(q)},{args})" for q in plan.queues]
            label = f"(not-{plan.id})"
        return [*lines, f" same => n{label},{beep}", " same => n,Hangup()"]

    lines = [
        "exten => *11,1,Answer()", *each_queue("AddQueueMember", f"{me},0,,${{CHANNEL(endpoint)}},{me}"),
        "exten => *12,1,Answer()", *each_queue("RemoveQueueMember", me),
        "exten => *13,1,Answer()",
        f" same => n,PauseQueueMember(,{me},,softphone)",
        f" same => n,{beep}", " same => n,Hangup()",
        "exten => *14,1,Answer()",
        f" same => n,UnpauseQueueMember(,{me})",
        f" same => n,{beep}", " same => n,Hangup()",
    ]
    codes = sorted({code for plan in plans.plans for code in transfer_codes(plan)})
    whose = f'${{IF($["${{IVR112_PLAN}}" = ""]?${{{OPERATOR_PLAN_VAR}}}:${{IVR112_PLAN}})}}'
    served = " | ".join(f'"${{IVR112_CODES_PLAN}}" = "{plan.id}"' for plan in plans.plans)
    for code in codes:
        lines.append(f"exten => {code},1,Set(IVR112_CODES_PLAN={whose})")
        # No plan, or one no longer served (a reload during the call): the default plan's codes.
        lines.append(f" same => n,GotoIf($[{served}]?{CODES_CONTEXT_PREFIX}${{IVR112_CODES_PLAN}},${{EXTEN}},1)")
        lines.append(f" same => n,Goto({codes_context(plans.default)},${{EXTEN}},1)")
    return "\n".join(lines)


def _codes_contexts(plans: PlanSet) -> str:
    """One context per plan with its transfer codes; a code the plan lacks sends a caller
    back to the plan's operators (never dropped) and refuses an operator's own call."""
    out = []
    for plan in plans.plans:
        lines = [f"[{codes_context(plan)}]"]
        for code, agency in transfer_codes(plan).items():
            lines.append(f"exten => {code},1,Verbose(1,ivr112: ${{CHANNEL}} to agency {agency} of plan {plan.id} (operator transfer))")
            lines.append(f" same => n,Goto({AGENCY_CONTEXT},{agency_exten(plan, agency)},1)")
        lines.append(f"exten => _{TRANSFER_PREFIX}XX,1,Verbose(1,ivr112: ${{CHANNEL}} dialled ${{EXTEN}}: plan {plan.id} has no such agency)")
        lines.append(' same => n,GotoIf($["${IVR112_PLAN}" = ""]?refuse)')
        lines.append(f" same => n,{_goto_person(plan, Target('queue', plan.default_queue.name))}")
        lines.append(" same => n(refuse),Hangup(1)")
        out.append("\n".join(lines))
    return "\n\n".join(out)


def check_bindings(settings: Settings, plans: PlanSet) -> None:
    """Refuse operators or supervisors bound to a plan that is not served (ConfigError):
    they would see nothing and log in to no queue."""
    for op in settings.operators:
        operator_plan(op, plans)
    served = [p.id for p in plans.plans]
    for binding in settings.supervisor_plans:
        name, plan = binding.split("=")
        if plan not in served:
            raise ConfigError(f"supervisor {name!r} watches plan {plan!r}, which is not served (plans: {', '.join(served)}); "
                              "fix supervisor_plans in the settings or add the plan to 'plans'")


def render(settings: Settings, secrets: Secrets, plans: PlanSet, layout: Layout) -> dict[str, str]:
    """Every config file of the instance, by file name; ConfigError for an operator or a
    supervisor bound to a plan not served."""
    check_bindings(settings, plans)
    carrier_sections, carrier_contexts = _carriers(plans, layout, settings.sip_edges)
    default = plans.default
    values = {
        "instance": layout.instance,
        "node_options": f"systemname = {settings.node_name}\n" if settings.node_name else "",
        "identifier_order": identifier_order(settings),
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
        "ari_channelvars": ",".join([*INVITE_HEADER_VARIABLES, TALK_DETECT_VAR]),
        "ami_events": "\n".join(f"eventfilter(name({name})) =" for name in AMI_EVENTS),
        "hep_port": str(settings.hep_port),
        "hep_password": secrets.hep_password,
        "ami_permit": f"{settings.ami_host}/255.255.255.255" if settings.ami_host != "0.0.0.0" else "0.0.0.0/0.0.0.0",
        "webrtc_tls": webrtc.http_tls(settings, layout),
        "ice": "yes" if webrtc.enabled(settings) else "no",
        "http_host": settings.http_host,
        "http_port": str(settings.http_port),
        "rtp_start": str(settings.rtp_start),
        "rtp_end": str(settings.rtp_end),
        "carriers": carrier_sections,
        "operators": _operators(settings, secrets, plans),
        "carrier_contexts": carrier_contexts,
        "operator_numbers": "\n".join(f"exten => {n},1,Goto({plan_context(default)},{n},1)" for n in default.numbers),
        "operator_codes": _operator_codes(plans, layout),
        "codes_contexts": _codes_contexts(plans),
        "plan_contexts": _plan_contexts(settings, plans, layout),
        "queue_dialplan": _queue_dialplan(settings, plans),
        "remote_queue": _remote_queue(settings, plans),
        "node_peers": _node_peers(settings, secrets),
        "agency_dialplan": _agency_dialplan(settings, plans),
        "queues": _queues_conf(settings, plans, layout),
        "say_rules": say_conf(f"{layout.sounds}/{SYSTEM_SET}"),
        **cel.render(settings),
    }
    values["trunks"] = PLACEHOLDER.sub(lambda m: values[m.group(1)], _trunks(plans))
    for key in ("carriers", "operators", "node_peers"):  # their endpoints name the media address (MEDIA_BIND)
        values[key] = PLACEHOLDER.sub(lambda m: values[m.group(1)], values[key])
    files: dict[str, str] = {}
    for template in sorted(TEMPLATES.glob("*.conf")):
        text = template.read_text(encoding="utf-8")

        def fill(m: re.Match[str], name: str = template.name) -> str:
            key = m.group(1)
            if key not in values:
                raise KeyError(f"{name}: unknown placeholder @@{key}@@")
            return values[key]

        files[template.name] = PLACEHOLDER.sub(fill, text)
    return files


def write_rendered(files: dict[str, str], target: Path) -> None:
    """Write rendered files to `target` (mode 0640: they hold secrets)."""
    target.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        path = target / name
        path.write_text(text, encoding="utf-8")
        path.chmod(0o640)
