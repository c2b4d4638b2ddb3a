"""The rules that join a plan's parts: every name refers to something that exists, every
menu is reachable, and every path a caller can take ends at a person.

A caller who presses nothing, or presses wrong keys, must reach an operator or an agency;
an agency whose trunks all fail must hand the caller to a person; no chain of such rules
may go round in a circle. `check_plan_set` adds the rules for plans served side by side.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

from ivr.plan import Agency, Carrier, Menu, Plan, Problem, Queue, Target
from ivr.yamlsrc import Mark


def check_plan(plan: Plan) -> list[Problem]:
    """Every problem of references and paths in one plan (empty when it is sound)."""
    c = _Checker(plan)
    c.references()
    if c.out:
        return c.out  # the path rules need sound references
    c.paths()
    return c.out


class _Checker:
    """One plan's problems, collected in the order a reader meets them in the file."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.top = Mark(plan.source, 1, 1)
        self.out: list[Problem] = []

    def at(self, mark: Mark | None) -> Mark:
        return mark or self.top

    def problem(self, mark: Mark | None, message: str) -> None:
        self.out.append(Problem(self.at(mark), message))

    def prompt_refs(self, names: Iterable[str], mark: Mark | None, where: str) -> None:
        for n in names:
            if n not in self.plan.prompts:
                self.problem(mark, f"{where} plays prompt '{n}', which is not under 'prompts'; add it or fix the name")

    def target_ref(self, t: Target | None, where: str) -> bool:
        """Whether `t` names something that exists (a problem said when it does not)."""
        plan = self.plan
        if t is None or (t.kind != "repeat" and not t.name):
            return False  # missing: reported where it was read
        known: dict[str, Iterable[str]] = {"queue": plan.queues, "menu": plan.menus, "agency": plan.agencies}
        if t.kind in known and t.name not in known[t.kind]:
            names = ", ".join(known[t.kind]) or "none"
            self.problem(t.mark, f"{where} leads to {t.kind} '{t.name}', which is not defined; known {t.kind} names: {names}")
            return False
        if t.kind == "language" and t.name not in plan.languages:
            self.problem(t.mark, f"{where} switches to language '{t.name}', which is not in service.languages")
            return False
        return True

    # References -------------------------------------------------------------------------

    def references(self) -> None:
        self.policy_refs()
        plan = self.plan
        if self.target_ref(plan.entry.then, "entry.then") and plan.entry.then.kind in ("language", "repeat"):
            self.problem(plan.entry.then.mark, "entry.then must be a menu, a queue or an agency")
        for menu in plan.menus.values():
            self.menu_refs(menu)
        for agency in plan.agencies.values():
            if self.target_ref(agency.on_failure, f"agency '{agency.name}' on_failure") and not agency.on_failure.reaches_person:
                self.problem(agency.on_failure.mark, f"agency '{agency.name}' on_failure must be a queue or another agency")
        for queue in plan.queues.values():
            self.overflow_refs(queue)

    def policy_refs(self) -> None:
        """The greeting and the prompts, agencies and menus the policies (location, silent, prank, priority) name."""
        plan, top = self.plan, self.top
        self.prompt_refs(plan.entry.greeting, plan.entry.mark, "entry.greeting")
        if plan.location.ask_prompt:
            self.prompt_refs((plan.location.ask_prompt,), top, "location.ask_prompt")
        if plan.silent.prompt:
            self.prompt_refs((plan.silent.prompt,), top, "silent.prompt")
        if plan.prank.prompt:
            self.prompt_refs((plan.prank.prompt,), top, "prank.prompt")
        for name in plan.priority.urgent_agencies:
            if name not in plan.agencies:
                self.problem(top, f"priority.urgent_agencies names agency '{name}', which is not defined; known: {', '.join(plan.agencies) or 'none'}")
        for name in plan.operators_first.menus or ():
            if name not in plan.menus:
                self.problem(top, f"operators_first.menus names menu '{name}', which is not defined; known: {', '.join(plan.menus) or 'none'}")
        if plan.location.kecamatan_prompt:
            self.prompt_refs((plan.location.kecamatan_prompt,), top, "location.kecamatan_prompt")

    def menu_refs(self, menu: Menu) -> None:
        self.prompt_refs(menu.prompts + menu.retry_prompts, menu.mark, f"menu '{menu.name}'")
        if not menu.prompts:
            self.problem(menu.mark, f"menu '{menu.name}' plays no prompt; a caller would not know what to press")
        for digit, t in menu.options.items():
            self.target_ref(t, f"menu '{menu.name}' option {digit}")
            if t.kind == "menu" and t.name == menu.name:
                self.problem(t.mark, f"menu '{menu.name}' option {digit} leads to the same menu; use 'repeat' to replay it")
        for rule, rule_target in (("no_input", menu.no_input), ("wrong_input", menu.wrong_input)):
            if rule_target is None:
                self.problem(menu.mark, f"menu '{menu.name}' has no {rule} rule; add '{rule}: {{queue: ...}}' so a caller always reaches a person")
            elif rule_target.kind in ("repeat", "language"):
                self.problem(
                    rule_target.mark, f"menu '{menu.name}' {rule} must end at a person (a queue, an agency or another menu), not {rule_target}"
                )
            else:
                self.target_ref(rule_target, f"menu '{menu.name}' {rule}")

    def overflow_refs(self, queue: Queue) -> None:
        if queue.overflow is None:
            return
        to = queue.overflow.to
        if not self.target_ref(to, f"queue '{queue.name}' overflow.to"):
            return
        if not to.reaches_person:
            self.problem(to.mark, f"queue '{queue.name}' overflow.to must be another queue or an agency")
        elif to.kind == "queue" and to.name == queue.name:
            self.problem(to.mark, f"queue '{queue.name}' overflows to itself; name another queue or a backup centre's agency")

    # Paths ------------------------------------------------------------------------------

    def paths(self) -> None:
        plan = self.plan
        reachable = _reachable_menus(plan)
        for menu in plan.menus.values():
            if menu.name not in reachable:
                self.problem(menu.mark, f"menu '{menu.name}' is never reached from entry.then; link it from a menu option or remove it")
        for rule in ("no_input", "wrong_input"):
            self.rule_loops(rule)
        for agency in plan.agencies.values():
            self.failover_circle(agency)
            if not agency.trunks:
                self.problem(agency.mark, f"agency '{agency.name}' has no trunk to dial")

    def rule_loops(self, rule: str) -> None:
        """The first menu whose `rule` sends a caller round in a circle (one report per rule)."""
        for menu in self.plan.menus.values():
            loop = _rule_loop(self.plan, menu, rule)
            if loop:
                self.problem(
                    menu.mark,
                    f"a caller at menu '{menu.name}' who gives {'no' if rule == 'no_input' else 'wrong'} input goes round "
                    f"{' -> '.join(loop)} for ever; make one {rule} lead to a queue or an agency",
                )
                return

    def failover_circle(self, agency: Agency) -> None:
        seen = [agency.name]
        t = agency.on_failure
        while t.kind == "agency":
            if t.name in seen:
                self.problem(agency.mark, f"agencies fail over in a circle ({' -> '.join([*seen, t.name])}); end the chain at a queue")
                return
            seen.append(t.name)
            t = self.plan.agencies[t.name].on_failure


def _targets(menu: Menu) -> list[Target]:
    return [*menu.options.values(), *(t for t in (menu.no_input, menu.wrong_input) if t is not None)]


def _reachable_menus(plan: Plan) -> set[str]:
    start = plan.entry.then
    todo = [start.name] if start.kind == "menu" else []
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo.extend(t.name for t in _targets(plan.menus[name]) if t.kind == "menu")
    return seen


def _rule_loop(plan: Plan, menu: Menu, rule: str) -> list[str]:
    """The circle a caller follows through `rule` from `menu`, or [] when it ends at a person."""
    path = [menu.name]
    current = menu
    while True:
        t = current.no_input if rule == "no_input" else current.wrong_input
        if t is None or t.kind != "menu":
            return []
        if t.name in path:
            return [*path, t.name]
        path.append(t.name)
        current = plan.menus[t.name]


def check_plan_set(plans: Sequence[Plan]) -> list[Problem]:
    """Rules for plans side by side: distinct ids, and each call finds exactly one plan."""
    out: list[Problem] = []
    ids: dict[str, Plan] = {}
    for plan in plans:
        top = Mark(plan.source, 1, 1)
        if plan.id in ids:
            out.append(Problem(top, f"plan id '{plan.id}' is also used by {ids[plan.id].source}; give each plan its own service.id"))
        ids[plan.id] = plan
    carriers: dict[str, tuple[Plan, Carrier]] = {}
    served: dict[tuple[str, str], Plan] = {}
    for plan in plans:
        top = Mark(plan.source, 1, 1)
        for carrier in plan.carriers:
            at = carrier.mark or top
            first = carriers.setdefault(carrier.name, (plan, carrier))[1]
            if first.match != carrier.match:
                out.append(Problem(at, f"carrier '{carrier.name}' has other addresses in {first.mark or first.name}; a carrier has one set of addresses"))
            for number in plan.numbers:
                other = served.get((carrier.name, number))
                if other is not None and other is not plan:
                    out.append(
                        Problem(
                            at,
                            f"calls to {number} from carrier '{carrier.name}' would match both this plan and {other.source}; "
                            "give them different numbers or carriers",
                        )
                    )
                served[(carrier.name, number)] = plan
    out.extend(_overlapping_carriers([c for _, c in carriers.values()]))
    return out


def _overlapping_carriers(carriers: Sequence[Carrier]) -> list[Problem]:
    """Two carriers whose addresses overlap, reported at the later one's `match:` line."""
    out: list[Problem] = []
    nets = [(c, ipaddress.ip_network(m, strict=False)) for c in carriers for m in c.match]
    for i, (a, net_a) in enumerate(nets):
        for b, net_b in nets[i + 1 :]:
            if a.name != b.name and net_a.overlaps(net_b):
                out.append(Problem(b.mark or Mark("<plans>", 1, 1), f"carrier '{b.name}' matches {net_b}, which carrier '{a.name}' also matches "
                                                                     f"({net_a}, at {a.mark}); a source address must name one carrier"))
    return out


def _is_our_host(host: str, sip_host: str) -> bool:
    """Whether `host` reaches the address our SIP transport listens on: the same address, or
    loopback while we bind loopback or every address."""
    if host in (sip_host, "localhost"):
        return True
    try:
        address, bound = ipaddress.ip_address(host), ipaddress.ip_address(sip_host)
    except ValueError:
        return False
    return address.is_loopback and (bound.is_loopback or bound.is_unspecified)


def check_own_address(plans: Sequence[Plan], sip_host: str, sip_port: int) -> list[Problem]:
    """Agency trunks and carrier callbacks that point at our own SIP transport (sip_host:sip_port):
    the call would come back in to this Asterisk as a new 112 call instead of reaching the agency."""
    out: list[Problem] = []
    for plan in plans:
        top = Mark(plan.source, 1, 1)
        for agency in plan.agencies.values():
            for trunk in agency.trunks:
                if trunk.port == sip_port and _is_our_host(trunk.host, sip_host):
                    out.append(Problem(trunk.mark or agency.mark or top,
                                       f"agency '{agency.name}': trunk {trunk.host}:{trunk.port} is this centre's own SIP address (settings sip_host:sip_port "
                                       f"{sip_host}:{sip_port}); a call to it would come back in as a new 112 call; give the agency's own address and port"))
        for carrier in plan.carriers:
            if carrier.callback_host and carrier.callback_port == sip_port and _is_our_host(carrier.callback_host, sip_host):
                out.append(Problem(carrier.mark or top,
                                   f"carrier '{carrier.name}': callback {carrier.callback_host}:{carrier.callback_port} is this centre's own SIP address "
                                   f"(settings sip_host:sip_port {sip_host}:{sip_port}); give the carrier's SBC address and port"))
    return out
