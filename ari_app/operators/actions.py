"""What an operator does to a call from the console or the API: call a number back from
the callback list (operator first, then the caller through its carrier), and move an
answered caller to an agency (blind, or a three-way conference).
"""

from __future__ import annotations

import logging

from ari_app.ari.client import AriClient
from ari_app.ari.errors import AriError
from ari_app.asterisk.layout import Layout
from ari_app.asterisk.render import AGENCY_CONTEXT, agency_exten, carrier_dial, carrier_endpoint
from ari_app.calls.callback_call import CallbackCall
from ari_app.calls.ports import PlanSource
from ari_app.operators.desk import Desk, DeskError
from ari_app.storage import AsyncStore
from ivr import agency_data as data
from ivr import callbacks
from ivr.plan import Plan
from ivr.settings import Settings

log = logging.getLogger(__name__)

TRANSFER_MODES = ("blind", "conference")
WHY_MAX_CHARS = 200


class OperatorActions:
    def __init__(self, *, settings: Settings, ari: AriClient, store: AsyncStore, plans: PlanSource, layout: Layout, desk: Desk) -> None:
        self.settings = settings
        self.ari = ari
        self.store = store
        self.plans = plans
        self.layout = layout
        self.desk = desk
        # Operators' callbacks being placed, by each of their two channels.
        self.callback_calls: dict[str, CallbackCall] = {}

    async def place_callback(self, number: str, operator: str) -> CallbackCall:
        """Call back a number from the callback list through its carrier, operator first;
        return the call being placed (DeskError when it cannot be)."""
        if operator not in {op.name for op in self.settings.operators}:
            raise DeskError(f"no operator named {operator!r}")
        entry = await self.store.run(lambda s: callbacks.start(s, number, operator))
        incident = await self.store.get(entry.incident_id) if entry.incident_id is not None else None
        plan = self.plans.plan_for(incident.plan_id if incident else "")
        endpoint = incident.carrier if incident and incident.carrier.startswith(carrier_endpoint("")) else ""
        carrier = next((c for c in plan.carriers if carrier_endpoint(c.name) == endpoint and c.callback_host), None)
        carrier = carrier or next((c for c in plan.carriers if c.callback_host), None)
        if carrier is None:
            await self.store.run(lambda s: callbacks.finish(s, number, connected=False, detail="no carrier callback address"))
            raise DeskError(f"plan {plan.id} has no carrier with a callback address; add callback: {{host, port}} to a carrier")
        call = CallbackCall(
            number=number, operator=operator, dial=carrier_dial(carrier.name, number), service_number=plan.numbers[0],
            incident_id=entry.incident_id, ari=self.ari, store=self.store, layout=self.layout, done=self.callback_done,
        )
        for channel in call.channels:
            self.callback_calls[channel] = call
        try:
            await call.place()
        except AriError as exc:
            await self.callback_done(call)
            why = str(exc)[:WHY_MAX_CHARS]
            await self.store.run(lambda s: callbacks.finish(s, number, connected=False, detail=why))
            raise DeskError(f"could not ring operator {operator}'s softphone (is it registered?): {exc}") from exc
        return call

    async def callback_done(self, call: CallbackCall) -> None:
        for channel in call.channels:
            self.callback_calls.pop(channel, None)

    async def transfer(self, incident_id: int, agency: str, *, mode: str = "blind") -> str:
        """Move an answered caller to an agency: blind (the operator is released), or a
        three-way conference (caller, operator and agency; the operator leaves when done).
        Returns the agency's extension the call went to."""
        incident = await self.store.get(incident_id)
        if incident is None:
            raise DeskError(f"incident {incident_id} does not exist")
        plan = self.plans.plan_for(incident.plan_id)
        if agency not in plan.agencies:
            raise DeskError(f"plan {plan.id} has no agency {agency!r}; agencies: {', '.join(plan.agencies)}")
        if incident.ended_at:
            raise DeskError(f"incident {incident_id}'s call has ended")
        if mode not in TRANSFER_MODES:
            raise DeskError(f"transfer mode {mode!r} is unknown; use blind or conference")
        try:
            caller = await self.ari.get_channel(incident.channel_id)
        except AriError as exc:
            raise DeskError(f"incident {incident_id}'s call is not live: {exc}") from exc
        exten = agency_exten(plan, agency)
        if mode == "blind":
            await self.desk.redirect(caller.name, AGENCY_CONTEXT, exten)
        else:
            operator = self.desk.holding(incident.channel_id)
            op_channel = self.desk.board.get(operator).agent_channel if operator else ""
            if not op_channel:
                raise DeskError(f"no operator holds incident {incident_id}; use a blind transfer")
            await self.desk.conference(caller.name, op_channel, room=str(incident_id), agency_exten=exten,
                                       caller_id=incident.caller_number,
                                       variables=await self._leg_variables(plan, incident_id, agency))
        await self.store.add_event(incident_id, "transfer", {"agency": agency, "mode": mode})
        return exten

    async def _leg_variables(self, plan: Plan, incident_id: int, agency: str) -> list[str]:
        """What the conference's trunk leg carries (docs/agencies.md), as channel variables the
        dialplan's pre-dial handler writes on it: the same Call-Info and position as the legs the app dials."""
        mode = plan.agencies[agency].location
        best = None
        if mode == "value":
            try:
                best = data.best_position(await self.store.run(lambda s: s.locations(incident_id)))
            except Exception as exc:  # the agency is dialled without the position rather than not at all
                log.warning("incident %d: no position for %s's conference leg: the store failed: %s", incident_id, agency, exc)
        return data.dialplan_leg_variables(data.leg_variables(data.centre_of(plan.name, self.settings), incident_id,
                                                              mode=mode, best=best))
