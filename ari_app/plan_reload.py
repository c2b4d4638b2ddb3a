"""The plans being served and their reload: validate the configured files, build their
prompts, render Asterisk's configuration and have Asterisk reload it, then switch. A reload
that does not validate (or that Asterisk refuses) changes nothing; calls in progress finish
on the plan they started with.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from ari_app.asterisk import process
from ari_app.asterisk.layout import Layout
from ari_app.operators.ami import AmiClient, AmiError
from ivr import prompts
from ivr.errors import Ivr112Error, PlanError
from ivr.plan import Plan, PlanSet, load_plans
from ivr.secrets import Secrets
from ivr.settings import Settings

log = logging.getLogger(__name__)


class PlanRegistry:
    """The plans being served; swapped whole on reload (a call keeps the Plan it started with)."""

    def __init__(self, plans: PlanSet) -> None:
        self.current = plans

    def plan_for(self, plan_id: str) -> Plan:
        plan = self.current.by_id(plan_id)
        if plan is None:
            plan = self.current.default
            if plan_id:
                log.warning("no plan with id %r; serving the call with plan %r", plan_id, plan.id)
        return plan

    @property
    def ids(self) -> list[str]:
        return [p.id for p in self.current.plans]


@dataclass(frozen=True)
class ReloadResult:
    ok: bool
    problems: tuple[str, ...]
    plans: tuple[str, ...]


class PlanReloader:
    """One reload at a time, over the app's AMI link when it is up."""

    def __init__(self, settings: Settings, secrets: Secrets, layout: Layout, registry: PlanRegistry, ami: AmiClient) -> None:
        self.settings = settings
        self.secrets = secrets
        self.layout = layout
        self.registry = registry
        self.ami = ami
        self._lock = asyncio.Lock()

    async def reload(self) -> ReloadResult:
        """Validate the configured plans and switch to them; a refused reload changes nothing."""
        async with self._lock:
            loop = asyncio.get_running_loop()
            try:
                own_sip = (self.settings.sip_host, self.settings.sip_port)
                plans = await loop.run_in_executor(None, lambda: load_plans(self.settings.plan_paths, own_sip=own_sip))
            except PlanError as exc:
                problems = tuple(str(p) for p in exc.problems)
                log.error("reload refused, the running plans stay:\n  %s", "\n  ".join(problems))
                return ReloadResult(False, problems, tuple(self.registry.ids))
            try:
                managed = await loop.run_in_executor(None, self._apply, plans)
                if managed:
                    await self._reload_asterisk()
            except Ivr112Error as exc:
                log.error("reload refused, the running plans stay: %s", exc)
                return ReloadResult(False, (str(exc),), tuple(self.registry.ids))
            self.registry.current = plans
            log.info("plans reloaded: %s", ", ".join(self.registry.ids))
            return ReloadResult(True, (), tuple(self.registry.ids))

    def _apply(self, plans: PlanSet) -> bool:
        """Prompts for the new plans, and Asterisk's config files rendered for them (in a
        thread); True when there is a managed Asterisk to reload."""
        prompts.build(plans.plans, self.settings.data_path)
        files = prompts.require(plans.plans, self.settings.data_path)
        if process.read_pid(self.layout) is None:
            log.warning("no Asterisk instance '%s' managed here; only the app's plans were switched", self.layout.instance)
            return False
        process.prepare(self.settings, self.secrets, plans, files, self.layout)
        return True

    async def _reload_asterisk(self) -> None:
        """Asterisk reloads SIP, the dialplan and the queues: over the AMI link the app holds
        (no new process, about a millisecond each), else by `asterisk -rx` as the command does."""
        if self.ami.connected:
            try:
                for command in process.RELOAD_COMMANDS:
                    await self.ami.action("Command", Command=command)
                return
            except AmiError as exc:
                log.warning("reload over AMI failed (%s); reloading with asterisk -rx", exc)
        await asyncio.get_running_loop().run_in_executor(None, process.reload_modules, self.layout)

