"""The firewall of one process: judges what a request would reach, holds it while an admin decides,
scans its prompts for secrets, and records every decision (audit record, metric)."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import hashlib
import logging
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from gateway.config import Config, FirewallConfig, FirewallRule, StateConfig
from gateway.errors import GatewayError, PermissionDenied, ServerShuttingDown
from gateway.firewall import rules as firewall_rules
from gateway.firewall.approvals import (
    CANCELLED,
    SHUTDOWN,
    Approval,
    Board,
    BoardUnavailable,
    Decision,
    MemoryBoard,
    RedisBoard,
    new_id,
)
from gateway.firewall.rules import Verdict
from gateway.firewall.secrets import PROMPT_KEYS, Detector, Found, Scan
from gateway.observability.metrics import Metrics
from gateway.observability.usage import AuditRecord, UsageWriter
from gateway.routing.router import Target

log = logging.getLogger("localrouter.firewall")

#: seconds between a webhook's attempts (the first at once): then it is given up, logged
WEBHOOK_BACKOFF = (1.0, 2.0, 4.0)
WEBHOOK_TIMEOUT = 5.0
#: the operator page's list of held requests, linked from the webhook's notice
APPROVALS_PAGE = "/ui/#approvals"
#: audit records of secrets found, at most, per request (the first ones)
MAX_SECRET_RECORDS = 10


class FirewallDenied(PermissionDenied):
    """403: a rule denied, an admin denied, nobody decided in time, or a secret was found (``block``)."""

    code = "firewall_denied"


class FirewallUnavailable(GatewayError):
    """503: where approvals wait and grants are kept (Redis) cannot be reached, so a request a rule asks
    about can be neither held (no admin could see it) nor let through (it may not be)."""

    status = 503
    type = "server_error"
    code = "firewall_unavailable"

    def __init__(self, message: str) -> None:
        super().__init__(message, headers={"Retry-After": "1"})


class Firewall:
    """One per process (app key ``FIREWALL``), kept across reloads: the rules and settings come with each
    request's runtime, the held requests and grants stay."""

    def __init__(self, state: StateConfig, metrics: Metrics | None, usage: UsageWriter | None) -> None:
        self.board: Board = (
            RedisBoard(state.redis_url, state.key_prefix, state.timeout) if state.backend == "redis" else MemoryBoard()
        )
        self.metrics, self.usage = metrics, usage
        self._held: dict[str, asyncio.Future[Decision]] = {}
        self.closing = False  # the process is shutting down: nothing is held any more
        self._detector: Detector | None = None
        self._notices: set[asyncio.Task[None]] = set()
        self._http: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        await self.board.start(self._deliver)

    async def close(self) -> None:
        for task in list(self._notices):
            task.cancel()
        await asyncio.gather(*self._notices, return_exceptions=True)
        if self._http is not None:
            await self._http.close()
        await self.board.close()

    @property
    def detector(self) -> Detector:
        if self._detector is None:  # made on first use: a gateway with ``secrets: off`` never pays for it
            self._detector = Detector()
        return self._detector

    # -- rules -------------------------------------------------------------------------------------------

    async def judge_model(
        self,
        client: str,
        rules: Sequence[FirewallRule],
        requested: str,
        resolved: str,
        chain: tuple[Target, ...],
        config: Config,
        link: str,
        hold: bool = True,
    ) -> tuple[Target, ...]:
        """The chain the request may use, once allowed (held first if a rule asks and ``hold``); or
        :class:`FirewallDenied`."""
        verdict, kept = firewall_rules.for_model(rules, requested, resolved, chain)
        if verdict is None:
            return kept
        if not kept and verdict.action != "deny":  # every target left out as a fallback that would ask
            verdict = Verdict("deny", verdict.what, verdict.rule)
        if verdict.action != "ask" or hold:
            await self._settle(client, verdict, config, link)
        return kept

    async def judge_item(
        self, client: str, rules: Sequence[FirewallRule], item: str, config: Config, link: str, call: str | None
    ) -> None:
        """An MCP item (``{server}__{name}``): allowed (held first if a rule asks), or :class:`FirewallDenied`.
        ``call`` names the call for :meth:`cancel`."""
        verdict = firewall_rules.first(rules, item)
        if verdict is not None:
            await self._settle(client, verdict, config, link, call)

    async def _settle(self, client: str, verdict: Verdict, config: Config, link: str, call: str | None = None) -> None:
        if verdict.action == "allow":
            self._count(client, "allow")
            return
        if verdict.action == "deny":
            self._record(client, verdict, "deny", "rule")
            raise FirewallDenied(f"`{verdict.what}` is denied by the firewall rule `{verdict.rule}`.")
        began = time.monotonic()
        try:
            if await self.board.granted(client, verdict.what, config_generation(config)):
                self._record(client, verdict, "granted", "grant")
                return
            decision = await self._hold(client, verdict, config.firewall, link, call)
        except BoardUnavailable as exc:
            self._record(client, verdict, "unavailable", "state")
            raise FirewallUnavailable(
                f"`{verdict.what}` needs an admin's approval (firewall rule `{verdict.rule}`), and the approvals "
                "store cannot be reached now; try again shortly."
            ) from exc
        held_ms = round((time.monotonic() - began) * 1000, 3)
        if decision is None:
            self._record(client, verdict, "timeout", "timeout", held_ms)
            raise FirewallDenied(
                f"`{verdict.what}` needs an admin's approval (firewall rule `{verdict.rule}`), and none came "
                f"within {config.firewall.ask_timeout:g} s."
            )
        self._record(client, verdict, decision.decision, decision.actor, held_ms)
        if decision.decision == SHUTDOWN:
            raise ServerShuttingDown("The server is shutting down; retry the request.")
        if not decision.allows:
            raise FirewallDenied(f"`{verdict.what}` was denied by an admin (firewall rule `{verdict.rule}`).")

    # -- approvals ---------------------------------------------------------------------------------------

    async def _hold(
        self, client: str, verdict: Verdict, config: FirewallConfig, link: str, call: str | None
    ) -> Decision | None:
        """Wait for a decision on a new approval; None when none came within ``ask_timeout``. A request
        cancelled meanwhile (its client went away, or cancelled it) takes its approval with it."""
        now = time.time()
        approval = Approval(new_id(), client, verdict.what, verdict.rule, now, now + config.ask_timeout, call)
        if self.closing:  # no admin could answer before the process is gone
            return Decision(approval.id, SHUTDOWN, "gateway")
        future: asyncio.Future[Decision] = asyncio.get_running_loop().create_future()
        self._held[approval.id] = future
        try:
            await self.board.post(approval)
            if config.webhook is not None:
                self._notify(config.webhook.reveal(), approval, link)
            async with asyncio.timeout(config.ask_timeout):
                return await future
        except TimeoutError:
            return None
        except asyncio.CancelledError:
            self._record(client, verdict, "abandoned", "client", round((time.time() - now) * 1000, 3))
            raise
        finally:
            self._held.pop(approval.id, None)
            if future.cancelled() or not future.done():  # undecided: off every list (shielded: we may be cancelled)
                await asyncio.shield(self._withdraw(approval.id))

    async def _withdraw(self, approval_id: str) -> None:
        try:
            await self.board.take(approval_id)
        except BoardUnavailable:  # left listed until its ``expires`` is past (RedisBoard.waiting drops it then)
            log.warning("firewall: approval %s could not be taken off the list (redis unreachable)", approval_id)

    def _deliver(self, decision: Decision) -> None:
        future = self._held.get(decision.id)
        if future is None or future.done():
            return
        if decision.decision == CANCELLED:  # ends as a client's cancellation here would: see cancel
            future.cancel()
        else:
            future.set_result(decision)

    async def cancel(self, client: str, call: str) -> bool:
        """End the held MCP call ``call`` names (``client``'s), on whichever process holds it: off the list,
        then ended there as a cancelled request (never run). Whether one was held; a board that cannot be
        reached cancels nothing (the call waits on, as it would for a lost notification)."""
        try:
            for approval in await self.board.waiting():
                if approval.call == call and approval.client == client:
                    if await self.board.take(approval.id) is None:
                        return False  # decided meanwhile
                    await self.board.publish(Decision(approval.id, CANCELLED, "client"))
                    return True
        except BoardUnavailable:
            log.warning("firewall: a held call's cancellation could not be delivered (redis unreachable)")
        return False

    async def shut(self) -> None:
        """The process is shutting down: every request held here ends now (503 ``server_shutting_down``),
        off the list, and none is held from now on."""
        self.closing = True
        held = [(approval_id, future) for approval_id, future in self._held.items() if not future.done()]
        await asyncio.gather(*(self._withdraw(approval_id) for approval_id, _ in held))
        for approval_id, future in held:
            if not future.done():
                future.set_result(Decision(approval_id, SHUTDOWN, "gateway"))

    async def waiting(self) -> list[Approval]:
        """What waits for a decision, oldest first (every process's with Redis); :class:`FirewallUnavailable`
        when the board cannot be reached."""
        try:
            return sorted(await self.board.waiting(), key=lambda a: a.since)
        except BoardUnavailable as exc:
            raise FirewallUnavailable("The approvals store cannot be reached now; try again shortly.") from exc

    async def decide(self, decision: Decision, config: Config) -> Approval | None:
        """Apply an admin's decision; None if that approval is not waiting (decided already, or gone);
        :class:`FirewallUnavailable` when the board cannot be reached (the approval is put back, if it can
        be, so the decision can be taken again)."""
        try:
            approval = await self.board.take(decision.id)
        except BoardUnavailable as exc:
            raise FirewallUnavailable("The approvals store cannot be reached now; try again shortly.") from exc
        if approval is None:
            return None
        try:
            if decision.decision in ("allow_for", "allow_always"):
                seconds = decision.seconds if decision.decision == "allow_for" else None
                await self.board.grant(approval.client, approval.what, seconds, config_generation(config))
            await self.board.publish(decision)
        except BoardUnavailable as exc:
            with contextlib.suppress(BoardUnavailable):
                await self.board.post(approval)
            raise FirewallUnavailable(
                "The approvals store cannot be reached now; the decision was not delivered, try again shortly."
            ) from exc
        return approval

    # -- the webhook -------------------------------------------------------------------------------------

    def _notify(self, url: str, approval: Approval, link: str) -> None:
        """Tell the webhook, off the request's path: the request never waits on it, nor fails with it."""
        notice: dict[str, Any] = {"approval_id": approval.id, "client": approval.client, "what": approval.what}
        notice |= {"rule": approval.rule, "since": approval.since, "link": link}
        task = asyncio.get_running_loop().create_task(self._post(url, notice))
        self._notices.add(task)
        task.add_done_callback(self._notices.discard)

    async def _post(self, url: str, notice: dict[str, Any]) -> None:
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=WEBHOOK_TIMEOUT))
        shown = _shown(url)
        for attempt, pause in enumerate((0.0, *WEBHOOK_BACKOFF)):
            await asyncio.sleep(pause)
            try:
                async with self._http.post(url, json=notice) as resp:
                    if resp.status < 300:
                        return
                    why = f"status {resp.status}"
            except (aiohttp.ClientError, TimeoutError) as exc:
                why = type(exc).__name__
            log.warning("firewall webhook %s: attempt %d failed (%s)", shown, attempt + 1, why)
        log.error("firewall webhook %s: given up on approval %s", shown, notice["approval_id"])

    # -- secrets -----------------------------------------------------------------------------------------

    def scan(self, client: str, mode: str, body: dict[str, Any], keys: tuple[str, ...] = PROMPT_KEYS) -> bool:
        """Scan ``body``'s prompts (its ``keys``: by default those of every inference endpoint) for secrets,
        as ``mode`` says: ``block`` raises :class:`FirewallDenied` naming the kind and where (never the
        value), ``redact`` rewrites them in place, ``log`` records them and lets them through. Whether one
        was found. A refused body is redacted too: the access log may show it (``logging.bodies``); under
        ``log`` the caller shows :meth:`redacted` there instead of the body forwarded as sent."""
        found = Scan(self.detector, redact=mode != "log").body(body, keys)
        if not found:
            return False
        for item in found[:MAX_SECRET_RECORDS]:
            self._audit(client, item.where, mode, "secrets", rule=item.kind)
        self._count(client, f"secrets_{mode}")
        if mode == "block":
            raise FirewallDenied(f"The request holds a secret: {_listed(found)}. Remove it and send again.")
        return True

    def redacted(self, body: dict[str, Any], keys: tuple[str, ...] = PROMPT_KEYS) -> dict[str, Any]:
        """A copy of ``body`` with every secret in its ``keys`` replaced, as ``redact`` would."""
        shown = copy.deepcopy(body)
        Scan(self.detector, redact=True).body(shown, keys)
        return shown

    # -- records -----------------------------------------------------------------------------------------

    def _record(self, client: str, verdict: Verdict, action: str, actor: str, held_ms: float | None = None) -> None:
        self._audit(client, verdict.what, action, actor, rule=verdict.rule, held_ms=held_ms)
        self._count(client, action)

    def _audit(self, client: str, subject: str, action: str, actor: str, **more: Any) -> None:
        if self.usage is not None:
            self.usage.add_audit(AuditRecord(new_id(), time.time(), "firewall", actor, client, subject, action, **more))

    def _count(self, client: str, action: str) -> None:
        if self.metrics is not None:
            self.metrics.firewall(client, action)


def config_generation(config: Config) -> str:
    """What ``allow_always`` lasts for: the config's strategies and firewall as loaded (a reload of a changed
    file ends it; every process of one config agrees on it)."""
    return hashlib.sha256(repr((config.strategies, config.firewall)).encode()).hexdigest()[:16]


def _listed(found: list[Found]) -> str:
    return "; ".join(f"{f.kind} in {f.where}" for f in found[:5]) + ("; ..." if len(found) > 5 else "")


def _shown(url: str) -> str:
    """A webhook's URL for a log line: its scheme and host (its path often holds a token)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}"
