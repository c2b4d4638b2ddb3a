"""Two regencies served side by side on one stack: Kotim (the test plan) and Seruyan, a
copy written as a new user would, with its own carrier (callers from 127.0.0.2) and its
own agency trunks (SIPp stands in). The softphone's transfer codes (801...) reach the
agencies of the plan the call belongs to, and an operator bound to a plan works that
plan's queue only.
"""

from __future__ import annotations

import json
import re
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from ari_app.asterisk.render import transfer_codes
from ivr.plan import load_plans
from ivr.store import Incident
from tests.integration.stack import Sipp, Stack, sipp_args, wait_for
from tests.integration.test_console_api import Browser, _password
from tests.support.plan import make_regency_plan
from tests.support.stacks import healed, running_stack

pytestmark = pytest.mark.asterisk

POLICE_1 = 5071  # the placeholder port of police trunk 1, in both plans
SERUYAN_SOURCE = "127.0.0.2"
PROVINCIAL, SERUYAN_OPERATOR, KOTIM_OPERATOR = "operator1", "operator2", "operator3"
SERUYAN_SUPERVISOR = "supervisor2"
PORTS: dict[str, dict[int, int]] = {}


def _seruyan(tmp: Path) -> list[Path]:
    path, ports = make_regency_plan(tmp, "seruyan", "Seruyan", "seruyan-net", f"{SERUYAN_SOURCE}/32")
    PORTS["seruyan"] = ports
    return [path]


@pytest.fixture(scope="module")
def two(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    operators = [{"name": PROVINCIAL}, {"name": SERUYAN_OPERATOR, "plan": "seruyan"}, {"name": KOTIM_OPERATOR, "plan": "kotim"}]
    with running_stack(tmp_path_factory, "regencies", plan_changes={"carriers.0.match": ["127.0.0.1/32"]},
                       more_plans=_seruyan, operators=operators, supervisors=["supervisor1", SERUYAN_SUPERVISOR],
                       supervisor_plans=[f"{SERUYAN_SUPERVISOR}=seruyan"]) as s:
        yield s


@pytest.fixture
def live(two: Stack, request: pytest.FixtureRequest) -> Iterator[Stack]:
    with healed(two, request) as s:
        for queue in ("kotim-operators", "seruyan-operators"):
            for name in _members(s, queue):
                s.asterisk_cli(f"queue remove member PJSIP/{name} from {queue}")
        yield s


def _members(s: Stack, queue: str) -> list[str]:
    return re.findall(r"^\s+(\S+) \(PJSIP/", s.asterisk_cli(f"queue show {queue}"), flags=re.MULTILINE)


def _invites(sipp: Sipp) -> list[str]:
    return re.findall(r"INVITE-FROM-USER=(\S*)", sipp.logs())


def _transferred_by_softphone(live: Stack, caller: str, source: str) -> tuple[Sipp, Sipp, Incident]:
    """A caller of the carrier at `source` presses 0; the provincial operator answers and
    transfers blind to 801 with the softphone's transfer key."""
    port = live.sipp_port()
    live.register_operator(PROVINCIAL, port, login=False)
    live.ivr112("operators", "login", PROVINCIAL)
    wait_for("the provincial operator in both queues",
             lambda: PROVINCIAL in _members(live, "kotim-operators") and PROVINCIAL in _members(live, "seruyan-operators"))
    operator = live.sipp("operator_refer", "-key", "code", "801", port=port, background=True, timeout=60)
    call = live.sipp("caller", *sipp_args(("caller", caller)), "-s", "112", "-d", "6000",
                     steps=[("pause", "1000"), ("dtmf", "0")], background=True, timeout=60, local_ip=source)
    incident = wait_for("the operator to answer", lambda: (i := live.incident_for(caller)) and i.operator_answered_at and i, timeout=30)
    return operator, call, incident


def test_an_operator_on_a_seruyan_call_who_transfers_to_801_reaches_seruyans_police_not_kotims(live: Stack) -> None:
    caller = "081250016001"
    seruyan_police = live.sipp("answer", port=PORTS["seruyan"][POLICE_1], background=True, timeout=60)
    kotim_police = live.sipp("answer", port=live.trunk_ports[POLICE_1], background=True, timeout=25)
    operator, call, incident = _transferred_by_softphone(live, caller, SERUYAN_SOURCE)
    assert incident.plan_id == "seruyan"
    assert operator.wait() == 0, operator.report()
    assert seruyan_police.wait() == 0, seruyan_police.report()
    assert _invites(seruyan_police) == [caller]
    assert call.wait() == 0, call.report()
    closed = wait_for("the incident closed", lambda: (i := live.incident_for(caller)) and i.ended_at and i, timeout=30)
    assert closed.route == "agency:police" and closed.route_result == "answered by police trunk 1", closed
    # Kotim's police never rang (its SIPp gives up waiting for an INVITE).
    assert kotim_police.wait() != 0 and _invites(kotim_police) == []


def test_with_the_app_away_the_dialplan_also_takes_a_seruyan_call_on_801_to_seruyans_police(live: Stack) -> None:
    """The fallback with no app: the dialplan alone queues the caller, and the operator's
    transfer dials the trunks itself (where the code once meant Kotim's police for every plan)."""
    caller = "081250016003"
    port = live.sipp_port()
    live.register_operator(PROVINCIAL, port, login=False)
    live.app_stop()
    password = live.operator_password(PROVINCIAL)
    login = live.sipp("operator_dial", "-key", "operator", PROVINCIAL, "-au", PROVINCIAL, "-ap", password, "-s", "*11",
                      port=port, timeout=20)
    assert login.returncode == 0, login.report()
    assert PROVINCIAL in _members(live, "seruyan-operators")
    seruyan_police = live.sipp("answer", port=PORTS["seruyan"][POLICE_1], background=True, timeout=60)
    kotim_police = live.sipp("answer", port=live.trunk_ports[POLICE_1], background=True, timeout=30)
    operator = live.sipp("operator_refer", "-key", "code", "801", port=port, background=True, timeout=60)
    call = live.sipp("caller", *sipp_args(("caller", caller)), "-s", "112", "-d", "15000", background=True, timeout=60,
                     local_ip=SERUYAN_SOURCE)
    assert operator.wait() == 0, operator.report()
    assert seruyan_police.wait() == 0, seruyan_police.report()
    assert _invites(seruyan_police) == [caller]
    assert call.wait() == 0, call.report()
    assert kotim_police.wait() != 0 and _invites(kotim_police) == []


def test_the_same_code_on_a_kotim_call_reaches_kotims_police(live: Stack) -> None:
    caller = "081250016002"
    kotim_police = live.sipp("answer", port=live.trunk_ports[POLICE_1], background=True, timeout=60)
    operator, call, incident = _transferred_by_softphone(live, caller, "127.0.0.1")
    assert incident.plan_id == "kotim"
    assert operator.wait() == 0, operator.report()
    assert kotim_police.wait() == 0, kotim_police.report()
    assert _invites(kotim_police) == [caller]
    assert call.wait() == 0, call.report()


def test_an_operator_bound_to_seruyan_logs_in_to_seruyans_queue_only(live: Stack) -> None:
    port = live.sipp_port()
    live.register_operator(SERUYAN_OPERATOR, port, login=False)
    password = live.operator_password(SERUYAN_OPERATOR)
    dial = live.sipp("operator_dial", "-key", "operator", SERUYAN_OPERATOR, "-au", SERUYAN_OPERATOR, "-ap", password,
                     "-s", "*11", port=port, timeout=20)
    assert dial.returncode == 0, dial.report()
    wait_for("operator2 in Seruyan's queue", lambda: SERUYAN_OPERATOR in _members(live, "seruyan-operators"))
    assert SERUYAN_OPERATOR not in _members(live, "kotim-operators")
    # The console's (and the command's) login does the same.
    live.asterisk_cli(f"queue remove member PJSIP/{SERUYAN_OPERATOR} from seruyan-operators")
    live.ivr112("operators", "login", SERUYAN_OPERATOR)
    wait_for("operator2 in Seruyan's queue again", lambda: SERUYAN_OPERATOR in _members(live, "seruyan-operators"))
    assert SERUYAN_OPERATOR not in _members(live, "kotim-operators")


def test_operators_codes_lists_each_plans_codes_under_its_plan(live: Stack) -> None:
    out = live.ivr112("operators", "codes").stdout
    plans = load_plans(live.settings.plan_paths)
    for plan in plans.plans:
        block = out.split(f"\n{plan.id} (")[1].split("\n\n")[0]
        for code, agency in transfer_codes(plan).items():
            assert f"{code}\ttransfer to {agency} ({plan.agencies[agency].label})" in block
    assert "Polres Seruyan" in out and "Polres Kotawaringin Timur" in out


def _quick_call(live: Stack, caller: str, source: str) -> Incident:
    call = live.sipp("caller", *sipp_args(("caller", caller)), "-s", "112", "-d", "1000", timeout=30, local_ip=source)
    assert call.returncode == 0, call.report()
    return wait_for(f"the incident of {caller} closed", lambda: (i := live.incident_for(caller)) and i.ended_at and i, timeout=30)


def _logged_in(live: Stack, name: str) -> Browser:
    browser = Browser(live)
    status, body = browser.login(name, _password(live, name))
    assert status == 200, body
    return browser


def test_a_regency_supervisor_sees_only_their_regency_and_a_provincial_one_sees_both(live: Stack) -> None:
    kotim = _quick_call(live, "081250016010", "127.0.0.1")
    seruyan = _quick_call(live, "081250016011", SERUYAN_SOURCE)
    assert (kotim.plan_id, seruyan.plan_id) == ("kotim", "seruyan")
    today = "?from=2000-01-01&to=2999-12-31"

    regency = _logged_in(live, SERUYAN_SUPERVISOR)
    status, rows = regency.call("GET", "/api/incidents?limit=500")
    assert status == 200 and {r["plan_id"] for r in rows} == {"seruyan"}
    assert seruyan.id in [r["id"] for r in rows]
    assert regency.call("GET", f"/api/incidents/{kotim.id}") == (404, {"error": "no such incident"})
    assert regency.call("GET", f"/api/incidents/{seruyan.id}")[0] == 200
    status, body = regency.call("POST", f"/api/incidents/{kotim.id}/close", {"notes": "bukan wilayah saya"})
    assert status == 404
    status, figures = regency.call("GET", f"/api/figures{today}")
    assert status == 200 and figures["plans"] == "seruyan"
    seruyan_calls = len(live.read(lambda s: [i for i in s.recent(500) if i.plan_id == "seruyan"]))
    assert figures["calls"] == seruyan_calls
    status, body = regency.call("GET", f"/api/figures{today}&plan=kotim")
    assert status == 403 and "seruyan only" in body["error"]
    with urllib.request.urlopen(regency.request("GET", f"/api/figures.csv{today}"), timeout=10) as resp:
        csv = resp.read().decode().splitlines()
    assert csv[0] == "from,to,figure,value" and "2000-01-01,2999-12-31,plans,seruyan" in csv
    status, wall = regency.call("GET", "/api/wall")
    assert status == 200 and wall["plans"] == ["seruyan"] and {t["plan"] for t in wall["trunks"]} == {"seruyan"}
    # Seruyan's own operator and the provincial one; not Kotim's.
    assert {o["name"] for o in wall["operators"]} == {PROVINCIAL, SERUYAN_OPERATOR}
    status, body = regency.call("POST", f"/api/operators/{KOTIM_OPERATOR}/pause", {"reason": "rapat"})
    assert status == 403 and "another regency" in body["error"]
    assert live.api("/api/plan")["id"] == "kotim" and regency.call("GET", "/api/plan")[1]["id"] == "seruyan"
    # Both callers hung up before a person answered: each is on their own regency's callback list.
    numbers = {r["number"] for r in regency.call("GET", "/api/callbacks")[1]}
    assert seruyan.caller_number in numbers and kotim.caller_number not in numbers
    status, body = regency.call("POST", f"/api/callbacks/{kotim.caller_number}/call", {"operator": SERUYAN_OPERATOR})
    assert status == 404 and "your regency" in body["error"]

    province = _logged_in(live, "supervisor1")
    status, rows = province.call("GET", "/api/incidents?limit=500")
    assert {kotim.id, seruyan.id} <= {r["id"] for r in rows}
    status, figures = province.call("GET", f"/api/figures{today}")
    assert figures["plans"] == "kotim,seruyan" and figures["calls"] == len(live.read(lambda s: s.recent(500)))
    assert province.call("GET", f"/api/figures{today}&plan=kotim")[1]["plans"] == "kotim"
    assert {kotim.caller_number, seruyan.caller_number} <= {r["number"] for r in province.call("GET", "/api/callbacks")[1]}
    status, wall = province.call("GET", "/api/wall")
    assert wall["plans"] == ["kotim", "seruyan"] and {t["plan"] for t in wall["trunks"]} == {"kotim", "seruyan"}

    # An operator bound to Seruyan reads Seruyan's calls only, as their supervisor does.
    operator = _logged_in(live, SERUYAN_OPERATOR)
    status, rows = operator.call("GET", "/api/incidents?limit=500")
    assert {r["plan_id"] for r in rows} == {"seruyan"}


def _listen(browser: Browser, received: list[str], until: str) -> threading.Thread:
    def run() -> None:
        with urllib.request.urlopen(browser.request("GET", "/api/stream"), timeout=60) as resp:
            for raw in resp:
                received.append(raw.decode().strip())
                if until in received[-1]:
                    return

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_the_live_stream_of_a_regency_console_carries_only_that_regencys_calls(live: Stack) -> None:
    regency, province = _logged_in(live, SERUYAN_SUPERVISOR), _logged_in(live, "supervisor1")
    mine: list[str] = []
    everyone: list[str] = []
    # The marker that ends both listens: Seruyan's operator logging in (both consoles see it).
    marker = f'"name": "{SERUYAN_OPERATOR}"'
    threads = [_listen(regency, mine, marker), _listen(province, everyone, marker)]
    wait_for("both streams open", lambda: "event: hello" in mine and "event: hello" in everyone)
    kotim = _quick_call(live, "081250016020", "127.0.0.1")
    seruyan = _quick_call(live, "081250016021", SERUYAN_SOURCE)
    live.register_operator(SERUYAN_OPERATOR, live.sipp_port(), login=False)
    live.ivr112("operators", "login", SERUYAN_OPERATOR)
    for thread in threads:
        thread.join(timeout=30)

    def steps(lines: list[str], incident: Incident) -> list[dict[str, object]]:
        data = [json.loads(line[5:]) for line in lines if line.startswith("data:")]
        return [d for d in data if d.get("id") == incident.id]

    assert any("detail" in d for d in steps(everyone, kotim)) and any("detail" in d for d in steps(everyone, seruyan))
    assert any("detail" in d for d in steps(mine, seruyan))
    # Of Kotim's call the Seruyan console gets at most bare ids (plan not known), never a detail or the number.
    assert all(set(d) == {"id", "kind"} for d in steps(mine, kotim)), steps(mine, kotim)
    assert kotim.caller_number not in "\n".join(mine)
