"""`ivr112 firewall`: the nftables ruleset (Debian's nft) that keeps this server's doors to
the people who need them. SIP only from the carriers' SBCs (the plans' `carriers: match:`)
and the operators' network (`operators_lan`); the RTP range open (a carrier's media often
comes from other addresses than its signalling); the console's HTTPS port and the browser
phone's WebSocket only from the operators' network; the AML door only from the AML gateways'
addresses and the carriers; the loopback-only ports (HTTP side, ARI, AMI) from nobody
outside. Loopback is always let in. The ruleset lives in its own table `inet ivr112` and
drops only traffic to our ports: SSH and everything else of the machine are left alone.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from ivr.errors import ConfigError
from ivr.plan import PlanSet, load_plans
from ivr.settings import Settings

TABLE = "ivr112"


@dataclass(frozen=True)
class Door:
    """One set of our ports and the networks allowed to reach them."""

    name: str
    what: str
    protocols: tuple[str, ...]
    ports: str
    sources: tuple[str, ...]


def _network(address: str, door: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    try:
        return ipaddress.ip_network(address, strict=False)
    except ValueError:
        raise ConfigError(f"{address!r}, a source of {door}, is not an address or network (address/prefix); "
                          "fix operators_lan, aml_gateways' addresses or the plan's carriers: match:") from None


def _networks(addresses: Iterable[str], door: str) -> tuple[list[str], list[str]]:
    """The addresses as nft set elements, IPv4 and IPv6 apart, overlaps merged (an interval
    set refuses two elements that overlap, as a carrier's SBC inside the operators' LAN)."""
    nets = [_network(a, door) for a in addresses]
    out: dict[int, list[str]] = {4: [], 6: []}
    for version in (4, 6):
        same = [n for n in nets if n.version == version]
        for net in ipaddress.collapse_addresses(same):  # type: ignore[type-var]
            out[version].append(str(net.network_address) if net.num_addresses == 1 else str(net))
    return out[4], out[6]


def _beyond_loopback(address: str) -> bool:
    try:
        return not ipaddress.ip_network(address, strict=False).is_loopback
    except ValueError:
        return address != "localhost"


def exposure_warnings(settings: Settings, plans: PlanSet) -> list[str]:
    """What the app warns of at start when SIP listens beyond loopback without anybody named to
    let in: no carrier outside loopback in the plans, or no operators' network."""
    if not _beyond_loopback(settings.sip_host):
        return []
    where = f"SIP listens on {settings.sip_host}:{settings.sip_port}, beyond loopback"
    fix = "then make and apply the firewall (`ivr112 firewall`, docs/operations.md)"
    found = []
    carriers = [m for plan in plans.plans for c in plan.carriers for m in c.match]
    if not any(_beyond_loopback(m) for m in carriers):
        found.append(f"{where}, but no plan names a carrier's SBC outside loopback (carriers: match:): "
                     f"put the carriers' SBC addresses in the plan, {fix}")
    if not settings.operators_lan:
        found.append(f"{where}, but operators_lan is empty: set the operators' network, {fix}")
    return found


def doors(settings: Settings) -> list[Door]:
    """Our ports facing the network, each with who may reach it, from the settings and plans."""
    plans = load_plans(settings.plan_paths)
    carriers = tuple(m for plan in plans.plans for c in plan.carriers for m in c.match)
    lan = settings.operators_lan
    gateways = tuple(a for g in settings.aml_gateways for a in g.addresses)
    found = [
        Door("sip", "SIP: the carriers' SBCs (plans' carriers: match:) and the operators' LAN", ("udp", "tcp"),
             str(settings.sip_port), carriers + lan),
        Door("aml", "the AML door: the AML gateways' addresses and the carriers", ("tcp",), str(settings.aml_port), gateways + carriers),
    ]
    if settings.console_host:
        found.append(Door("console", "the console's HTTPS: the operators' LAN", ("tcp",), str(settings.console_port), lan))
    if settings.webrtc_port:
        found.append(Door("webrtc", "the browser phones' WebSocket: the operators' LAN", ("tcp",), str(settings.webrtc_port), lan))
    return found


def _set(name: str, kind: str, elements: list[str]) -> list[str]:
    body = f"\t\ttype {kind}\n\t\tflags interval\n"
    if elements:
        body += f"\t\telements = {{ {', '.join(elements)} }}\n"
    return [f"\tset {name} {{\n{body}\t}}"]


def _match(protocols: tuple[str, ...], ports: str) -> str:
    if len(protocols) == 1:
        return f"{protocols[0]} dport {ports}"
    return f"meta l4proto {{ {', '.join(protocols)} }} th dport {ports}"


def ruleset(settings: Settings, *, origin: str = "") -> str:
    """The ruleset as `nft -f` reads it: it replaces the table `inet ivr112` at once."""
    sets: list[str] = []
    rules = ['\t\tiif "lo" accept comment "loopback: always"', "\t\tct state established,related accept"]
    for door in doors(settings):
        v4, v6 = _networks(door.sources, door.what)
        sets += _set(f"{door.name}_v4", "ipv4_addr", v4) + _set(f"{door.name}_v6", "ipv6_addr", v6)
        match = _match(door.protocols, door.ports)
        rules += [
            f"\t\t# {door.what}",
            f"\t\t{match} ip saddr @{door.name}_v4 accept",
            f"\t\t{match} ip6 saddr @{door.name}_v6 accept",
            f'\t\t{match} drop comment "{door.name}: nobody else"',
        ]
    rules += [
        "\t\t# RTP: open (a carrier's media may come from other addresses than its SBC's signalling)",
        f"\t\tudp dport {settings.rtp_start}-{settings.rtp_end} accept",
        "\t\t# loopback-only ports (HTTP side, ARI, AMI): from nobody outside",
        f'\t\ttcp dport {{ {settings.http_port}, {settings.ari_port}, {settings.ami_port} }} drop comment "loopback only"',
    ]
    head = [
        "#!/usr/sbin/nft -f",
        f"# made by `ivr112 firewall`{f' from {origin}' if origin else ''}: SIP, the console and the AML door",
        "# only from their sources. Check with `nft -c -f FILE`, apply with `nft -f FILE`.",
        f"table inet {TABLE}",
        f"delete table inet {TABLE}",
        f"table inet {TABLE} {{",
    ]
    chain = ["\tchain input {", "\t\ttype filter hook input priority filter; policy accept;", *rules, "\t}"]
    return "\n".join([*head, *sets, *chain, "}"]) + "\n"
