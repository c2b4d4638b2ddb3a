"""Which plans (regencies) a console user sees: a supervisor bound to a plan
(`supervisor_plans`) or an operator bound to one (`operators[].plan`) sees that plan's
calls, figures and people only; a provincial supervisor or operator (no binding) and the
scripts' bearer key see every plan. A call of another plan is answered as if it did not
exist (404), so a regency cannot read another's callers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ari_app.live import Shape
from ari_app.web.console_auth import Principal
from ivr.settings import Settings


@dataclass(frozen=True)
class Scope:
    plan: str  # the one plan seen; "" for every plan

    def sees(self, plan_id: str) -> bool:
        """Whether a record of `plan_id` is shown; one of no known plan ("": a text to 112,
        which no carrier routes to a regency yet) is shown to everyone, never hidden from all."""
        return not self.plan or not plan_id or plan_id == self.plan

    @property
    def provincial(self) -> bool:
        return not self.plan


def scope_of(principal: Principal, settings: Settings) -> Scope:
    """The plans `principal` sees."""
    if principal.via == "bearer" or principal.agency is not None:  # an agency's pages have their own filter
        return Scope("")
    if principal.supervisor:
        return Scope(settings.supervisor_plan(principal.name))
    return Scope(settings.operator_plan(principal.name))


def stream_shape(scope: Scope, settings: Settings, queue_plans: Mapping[str, str]) -> Shape | None:
    """The live stream's filter for a console that sees one plan (None: every message as
    it is). An incident step of another plan is dropped; one whose plan is not known is
    cut to its id and kind (the page reads the incident through the API, which answers
    404 for another plan's); operators of another plan and callers waiting in another
    plan's queue are left out. `queue_plans` maps each Asterisk queue to its plan."""
    if scope.provincial:
        return None

    def shape(kind: str, data: dict[str, Any]) -> dict[str, Any] | None:
        if kind == "incident":
            plan = data.get("plan", "")
            if not plan:
                return {"id": data.get("id"), "kind": data.get("kind")}
            return data if scope.sees(plan) else None
        if kind == "operator":
            bound = settings.operator_plan(str(data.get("name", "")))
            return data if not bound or scope.sees(bound) else None
        if kind == "wall" and "waiting" in data:
            return {**data, "waiting": [w for w in data["waiting"] if scope.sees(queue_plans.get(w.get("queue", ""), ""))]}
        return data

    return shape
