"""Which plans (regencies) a console user sees: a supervisor bound to a plan
(`supervisor_plans`) or an operator bound to one (`operators[].plan`) sees that plan's
calls, figures and people only; a provincial supervisor or operator (no binding) and the
scripts' bearer key see every plan. A call of another plan is answered as if it did not
exist (404), so a regency cannot read another's callers.
"""

from __future__ import annotations

from dataclasses import dataclass

from ari_app.web.console_auth import Principal
from ivr.settings import Settings


@dataclass(frozen=True)
class Scope:
    plan: str  # the one plan seen; "" for every plan

    def sees(self, plan_id: str) -> bool:
        return not self.plan or plan_id == self.plan

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
