"""`ivr112 firewall`: the nftables ruleset made from the settings and the plans is one that
Debian's nft accepts (`nft -c`, checked in a network namespace of the test's own, so nothing
ever reaches this machine's firewall), lets SIP in only from the plan's carrier and the
operators' LAN, and follows the plan when the carrier's `match:` changes."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ivr.settings import PROJECT_DIR

PLAN = PROJECT_DIR / "dialplans" / "kotim.yaml"


def firewall(tmp_path: Path, carrier: str, **settings: str) -> str:
    done = run_firewall(tmp_path, carrier, **settings)
    assert done.returncode == 0, done.stderr
    return done.stdout


def run_firewall(tmp_path: Path, carrier: str, **settings: str) -> subprocess.CompletedProcess[str]:
    """The ruleset printed for Kotim's plan with its carrier matching `carrier`."""
    text = PLAN.read_text()
    assert text.count("match: [127.0.0.0/8]") == 1
    folder = tmp_path / f"plans-{carrier.replace('/', '_')}"
    shutil.copytree(PLAN.parent, folder, dirs_exist_ok=True)
    plan = folder / PLAN.name
    plan.write_text(text.replace("match: [127.0.0.0/8]", f"match: [{carrier}]"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("IVR112_")}
    env |= {"IVR112_DATA_DIR": str(tmp_path / "var"), "IVR112_PLANS": str(plan)}
    env |= {f"IVR112_{k.upper()}": v for k, v in settings.items()}
    return subprocess.run([sys.executable, "-m", "ari_app.cli", "firewall"], capture_output=True, text=True, cwd=PROJECT_DIR,
                          env=env, check=False, timeout=60)


def nft_check(ruleset: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    if shutil.which("nft") is None:
        pytest.skip("nft is not installed (make deps installs Debian's nftables); the ruleset was made but not checked")
    path = tmp_path / "ivr112.nft"
    path.write_text(ruleset)
    # -r -n: a new user and network namespace, so even a wrong flag could not touch this machine
    return subprocess.run(["unshare", "-rn", "nft", "-c", "-f", str(path)], capture_output=True, text=True, check=False, timeout=60)


def sip_rules(ruleset: str) -> list[str]:
    return [line.strip() for line in ruleset.splitlines() if "dport 5060" in line]


def test_the_ruleset_passes_nft_and_lets_sip_in_only_from_the_carrier_and_the_lan(tmp_path: Path) -> None:
    ruleset = firewall(tmp_path, "203.0.113.8/29", operators_lan="10.20.0.0/24", console_host="0.0.0.0")
    checked = nft_check(ruleset, tmp_path)
    assert checked.returncode == 0, checked.stderr
    sip_set = re.search(r"set sip_v4 \{[^}]*elements = \{ ([^}]*) \}", ruleset)
    assert sip_set is not None and sip_set[1] == "10.20.0.0/24, 203.0.113.8/29"
    assert sip_rules(ruleset) == [
        "meta l4proto { udp, tcp } th dport 5060 ip saddr @sip_v4 accept",
        "meta l4proto { udp, tcp } th dport 5060 ip6 saddr @sip_v6 accept",
        'meta l4proto { udp, tcp } th dport 5060 drop comment "sip: nobody else"',
    ]
    assert "tcp dport 8443 ip saddr @console_v4 accept" in ruleset
    assert 'tcp dport 8443 drop comment "console: nobody else"' in ruleset
    assert "udp dport 10000-10999 accept" in ruleset
    assert ruleset.index('iif "lo" accept') < ruleset.index("dport 5060")  # loopback first, always


def test_nft_really_checks_a_ruleset(tmp_path: Path) -> None:
    broken = firewall(tmp_path, "203.0.113.8/29").replace("type ipv4_addr", "type ipv9_addr", 1)
    checked = nft_check(broken, tmp_path)
    assert checked.returncode != 0
    assert "ipv9_addr" in checked.stderr


def test_the_ruleset_follows_the_plans_carrier_and_merges_overlaps(tmp_path: Path) -> None:
    one = firewall(tmp_path, "203.0.113.8/29")
    other = firewall(tmp_path, "198.51.100.20")
    assert "203.0.113.8/29" in one and "203.0.113.8/29" not in other
    assert "elements = { 198.51.100.20 }" in other
    assert one != other
    # an SBC inside the operators' LAN: one interval, which nft takes
    inside = firewall(tmp_path, "10.20.0.9", operators_lan="10.20.0.0/24")
    assert "elements = { 10.20.0.0/24 }" in inside
    assert nft_check(inside, tmp_path).returncode == 0


def test_a_mistyped_lan_is_named_not_turned_into_a_ruleset(tmp_path: Path) -> None:
    done = run_firewall(tmp_path, "203.0.113.8/29", operators_lan="10.20.0.0/33")
    assert done.returncode != 0 and done.stdout == ""
    assert "'10.20.0.0/33'" in done.stderr and "fix operators_lan" in done.stderr
    assert "Traceback" not in done.stderr


def test_sip_beyond_loopback_without_carriers_or_lan_is_warned_of_at_start() -> None:
    from ari_app.deploy.firewall import exposure_warnings
    from ivr.plan import load_plans
    from ivr.settings import load_settings

    plans = load_plans([PLAN])  # Kotim's placeholder carrier matches 127.0.0.0/8 only
    quiet = load_settings(environ={})
    assert exposure_warnings(quiet, plans) == []  # on loopback: nobody else can reach it
    open_ = load_settings(environ={"IVR112_SIP_HOST": "0.0.0.0"})
    warned = exposure_warnings(open_, plans)
    assert len(warned) == 2
    assert "no plan names a carrier's SBC outside loopback" in warned[0] and "operators_lan is empty" in warned[1]
    named = load_settings(environ={"IVR112_SIP_HOST": "0.0.0.0", "IVR112_OPERATORS_LAN": "10.20.0.0/24"})
    assert [w for w in exposure_warnings(named, plans) if "operators_lan" in w] == []
