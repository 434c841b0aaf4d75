"""One router's share of the state every gateway process holds in common, in Redis.

Each process keeps its own signals (they go on working when Redis does not) and, on a
background tick every ``sync_interval_s`` (and early when a request ended), publishes
what it has seen since the last one (ended requests, latency samples and failures,
conversations' tiers, overflow charges), renews the leases of its requests in flight and
reads every tier back. Decisions read the view of the last tick: no I/O. Only two things
wait on Redis on the request path, bounded together by the request's ``budget_ms``:
claiming a place on a tier with a limit (``in_flight``, per user, a probe), so a burst
split over processes cannot overshoot; and reading the tier of a conversation past its
first turn.

In-flight requests are leases (a sorted set per tier, scored by expiry), renewed each tick:
a process that dies stops renewing and its share is gone within ``lease_ttl_s``. A write
whose reply did not come in time is never sent again: it may have been applied, and what
it carried is either state that the next tick sends whole (the leases) or a sample that is
dropped and counted.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ...config import StratumSettings, Tier
from . import scripts
from .keys import Keys
from .view import Claim, Claimed, SharedView, ms, text, tier_of

logger = logging.getLogger("stratum_litellm")

#: A script's source -> a callable running it: ``await run(keys=[...], args=[...])``
#: (LiteLLM's ``RedisCache.async_register_script``, redis-py's ``Redis.register_script``).
Register = Callable[[str], Callable[..., Awaitable[Any]]]
#: Finds the gateway's Redis (it may appear only after start-up); None while there is none.
Connect = Callable[[], "Register | None"]
#: Told of each error against Redis, by operation (sync, claim, recall).
Report = Callable[[str, BaseException], None]

_MAX_PENDING = 10_000  # queued writes between two ticks; past it the oldest are dropped
_LATE_IN_A_ROW = 3
_MIN_GAP_S = 0.01


@dataclass(slots=True)
class _Lease:
    tier: Tier
    member: str
    owner_key: str | None
    started_at: float


class SharedState:
    """Thread-safe: queues are appended under a lock held for a few list operations, and
    the view is replaced whole, so a reader never sees half of one."""

    def __init__(self, settings: StratumSettings, connect: Connect, clock: Callable[[], float] = time.monotonic,
                 report: Report | None = None, wall: Callable[[], float] = time.time) -> None:
        self._connect = connect
        self._clock = clock
        self._wall = wall
        self._report = report
        self.process_id = uuid.uuid4().hex[:12]
        self._lock = threading.Lock()
        self._leases: dict[str, _Lease] = {}
        self._ended: list[_Lease] = []
        self._samples: dict[Tier, list[str]] = {}
        self._remembered: deque[tuple[str, int, Tier]] = deque(maxlen=_MAX_PENDING)
        self._charges = [0, 0.0]
        self._view: SharedView | None = None
        #: Set when requests' waits ran out in a row: none waits again until a tick succeeds.
        self._down = False
        self._late = 0
        self._scripts: dict[str, Callable[..., Awaitable[Any]]] = {}
        self._register: Register | None = None
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._wake: asyncio.Event | None = None
        #: Set once a tick has reached Redis (or failed to): a new process's first
        #: requests wait for it, within ``start_wait_ms``.
        self._first_tick = asyncio.Event()
        self._closed = False
        self._released = False
        self.dropped = 0
        self.configure(settings)

    def configure(self, settings: StratumSettings) -> None:
        """New settings (a reload): intervals, budgets and the tiers; leases carry over."""
        self.settings = settings
        shared = settings.shared_state
        self.keys = Keys(shared.key_prefix, settings.routed_model)
        self._lease_ms = int(shared.lease_ttl_s * 1000)
        self._budget = next((s.budget for s in settings.tiers.values() if s.overflow and s.budget is not None), None)

    # -- what decisions read ----------------------------------------------------------------

    @property
    def up(self) -> bool:
        """Whether the shared view is fresh: the last tick succeeded within ``lease_ttl_s``."""
        view = self._view
        return (view is not None and not self._down
                and self._clock() - view.taken_at <= self.settings.shared_state.lease_ttl_s)

    def view(self) -> SharedView | None:
        """The view of the last tick, or None when it is not fresh (decide from local state)."""
        return self._view if self.up else None

    # -- the request path (bounded waits) -------------------------------------------------------

    async def claim(self, tier: Tier, call_id: str, limit: int | None, owner: str | None,
                    owner_limit: int | None, probe_s: float | None, budget_s: float) -> Claim:
        """Take a lease on ``tier`` for ``call_id`` if the tier (and the owner's share, and
        the probe when ``probe_s``) has room across every process."""
        owner_key = self.keys.owner(tier, owner) if owner is not None else None
        member = f"{self.process_id}:{call_id}"
        keys = [self.keys.leases(tier), owner_key or self.keys.leases(tier), self.keys.probe(tier)]
        args = [member, self._lease_ms, limit or 0,
                -1 if owner_key is None else (owner_limit or 0), int((probe_s or 0) * 1000)]
        try:
            reply = await self._run("claim", keys, args, budget_s)
        except Exception as exc:
            self._late_reply("claim", exc)
            # It may have been applied: the lease is kept, and the next tick renews it
            # (the request does run on this tier).
            self._hold(call_id, tier, member, owner_key)
            return Claim(Claimed.UNKNOWN)
        self._late = 0
        code, count, owned = (int(x) for x in reply)
        if code == 1:
            self._hold(call_id, tier, member, owner_key)
            return Claim(Claimed.GRANTED, count, owned)
        result = {0: Claimed.TIER_FULL, 2: Claimed.OWNER_FULL, 3: Claimed.PROBE_TAKEN}[code]
        return Claim(result, count, owned)

    async def recall(self, conversation: str, budget_s: float) -> Tier | None:
        """The tier another process saw this conversation reach, if any."""
        try:
            value = await self._run("recall", [self.keys.conversation(conversation)], [], budget_s)
        except Exception as exc:
            self._late_reply("recall", exc)
            return None
        self._late = 0
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        if not isinstance(value, str) or "|" not in value:
            return None
        tier = value.split("|", 1)[1]
        return tier if tier in self.settings.tiers else None

    async def take_samples(self, per_hour: int, per_day: int, budget_s: float) -> bool | None:
        """Take one judged sample from this clock hour's and day's budget, counted across
        every process: True taken, False spent, None unknown (Redis down or late)."""
        if not self.up:
            return None
        hour = int(self._wall() // 3600)
        keys = [self.keys.samples_hour(hour), self.keys.samples_day(hour // 24)]
        try:
            reply = await self._run("samples", keys, [per_hour, per_day, 2 * 3_600_000, 2 * 86_400_000], budget_s)
        except Exception as exc:
            if self._report is not None:
                self._report("samples", exc)
            return None
        return bool(int(reply))

    def holds(self, call_id: str) -> bool:
        return call_id in self._leases

    def hold(self, call_id: str, tier: Tier, owner: str | None = None) -> None:
        """Count a request on ``tier`` without claiming (nothing limits it): the next tick
        publishes its lease."""
        self._hold(call_id, tier, f"{self.process_id}:{call_id}",
                   self.keys.owner(tier, owner) if owner is not None else None)

    # -- what the callbacks report (queued, no I/O) ---------------------------------------------

    def end(self, call_id: str | None) -> None:
        """The request left its tier: its lease goes with a tick started at once."""
        if call_id is None:
            return
        with self._lock:
            lease = self._leases.pop(call_id, None)
            if lease is None:
                return
            self._ended.append(lease)
        self._wake_up()  # its place is free: tell the others now, not a tick later

    def drop(self, call_id: str | None) -> None:
        """A place claimed for nothing (the request went elsewhere): it goes as an end."""
        self.end(call_id)

    def _wake_up(self) -> None:
        loop, wake = self._loop, self._wake
        if loop is None or wake is None:
            return
        if threading.get_ident() == self._loop_thread:
            wake.set()
        else:
            loop.call_soon_threadsafe(wake.set)

    def sample(self, tier: Tier, ttft_ms: float | None, total_ms: float | None, probe: bool) -> None:
        self._queue_sample(tier, ("s", ms(ttft_ms), ms(total_ms), "1" if probe else "0"))

    def failure(self, tier: Tier, total_ms: float | None) -> None:
        self._queue_sample(tier, ("f", "", ms(total_ms), "0"))

    def remember(self, conversation: str | None, tier: Tier, rank: int) -> None:
        if conversation is not None:
            self._remembered.append((conversation, rank, tier))  # deque: atomic append

    def charge(self, requests: int = 0, spend_usd: float = 0.0) -> None:
        if self._budget is None:
            return
        with self._lock:
            self._charges[0] += requests
            self._charges[1] += spend_usd

    def pending_charges(self) -> tuple[int, float]:
        """Charges not yet published: a decision adds them to the shared totals."""
        return int(self._charges[0]), float(self._charges[1])

    # -- the background tick --------------------------------------------------------------------

    def start(self) -> None:
        """Start the tick on the running event loop (idempotent). Redis clients are bound to
        the loop that made them: the gateway's, where requests are served."""
        if self._task is None and not self._closed:
            self._task = asyncio.get_running_loop().create_task(self.run(), name="stratum-shared-state")

    async def run(self) -> None:
        """Tick every ``sync_interval_s``, and early when a request ended (at most one tick
        per ``_MIN_GAP_S``, so a busy gateway batches its ends). Cancelled (the gateway's
        loop ends, or :meth:`close`), it gives back every lease it still holds first."""
        self._loop, self._loop_thread = asyncio.get_running_loop(), threading.get_ident()
        self._wake = wake = asyncio.Event()
        try:
            while not self._closed:
                started = self._clock()
                wake.clear()  # before the tick takes its batch: an end during it wakes the next
                try:
                    await self.sync()
                except Exception as exc:  # never let the tick die
                    self._failed("sync", exc)
                interval = self.settings.shared_state.sync_interval_s
                try:
                    await asyncio.wait_for(wake.wait(), max(0.0, interval - (self._clock() - started)))
                except asyncio.TimeoutError:
                    pass
                await asyncio.sleep(max(0.0, _MIN_GAP_S - (self._clock() - started)))
        except asyncio.CancelledError:
            # The loop is going (the process stops): the others get this process's places
            # now rather than when its leases expire.
            await self.release()
            raise

    async def settle(self, budget_s: float) -> None:
        """Wait (at most ``budget_s``) for the first tick to reach Redis: a new process's
        first requests then see every process's counts. No wait after that."""
        if self.settled or self._closed or budget_s <= 0:
            return
        try:
            await asyncio.wait_for(self._first_tick.wait(), budget_s)
        except asyncio.TimeoutError:
            self._settle()  # Redis not found yet: the next requests do not wait again

    async def release(self) -> int:
        """Give back every lease this process holds, in one last tick, and stop ticking:
        the process is stopping. Bounded by ``sync_timeout_s``; once only. Returns how
        many leases went (0 when Redis could not be reached: they expire)."""
        if self._released:
            return 0
        self._released = self._closed = True
        with self._lock:
            held, self._leases = list(self._leases.values()), {}
            self._ended.extend(held)
            count = len(self._ended)
        if self._register is None or count == 0:
            return 0
        try:
            # The client that last worked: at this point the gateway may have dropped its
            # own reference to it (its teardown), which is not the Redis being down.
            done = await self.sync(resolve=False)
        except Exception as exc:
            self._failed("sync", exc)
            return 0
        if done:
            logger.warning("stratum router: stopping; %d lease(s) given back (process %s)", count, self.process_id)
        return count if done else 0

    def close(self) -> None:
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def sync(self, resolve: bool = True) -> bool:
        """One tick: publish, renew and read back. False when Redis is absent or failed.
        ``resolve=False`` uses the client of the last tick without looking it up again."""
        if (self._resolve() if resolve else self._register) is None:
            self._view = None
            return False
        settings = self.settings
        ended, samples, remembered, charges = self._take()
        calls: list[Awaitable[Any]] = []
        timeout = settings.shared_state.sync_timeout_s
        lat = settings.latency
        tiers = [t for t in settings.tiers]
        with self._lock:
            held = list(self._leases.values())
        for tier in tiers:
            gone = [lease.member for lease in ended if lease.tier == tier]
            kept = [lease.member for lease in held if lease.tier == tier]
            args: list[Any] = [self._lease_ms, lat.ema_alpha, lat.failure_threshold, int(lat.cooldown_s * 1000),
                               len(gone), *gone, len(kept), *kept, *samples.get(tier, ())]
            calls.append(self._run("tier", [self.keys.leases(tier), self.keys.state(tier), self.keys.probe(tier)],
                                   args, timeout))
        owners = _by_owner(ended, held)
        if owners:
            args = [self._lease_ms]
            for gone, kept in owners.values():
                args += [len(gone), *gone, len(kept), *kept]
            calls.append(self._run("owners", list(owners), args, timeout))
        if remembered:
            ttl_ms = int(settings.affinity.ttl_s * 1000)
            keys, args = [], [ttl_ms]
            for conversation, rank, tier in remembered:
                keys.append(self.keys.conversation(conversation))
                args += [rank, tier]
            calls.append(self._run("remember", keys, args, timeout))
        budget_at = len(calls)
        if self._budget is not None:
            calls.append(self._run("budget", self._budget_keys(), list(charges), timeout))
        if not self.up:
            # Coming up (a first tick, or Redis back, maybe empty): load the scripts the
            # request path runs, so a request never pays for loading one.
            calls.append(self._run("claim", [self.keys.leases(tiers[0])] * 3, ["", 0, 0, -1, 0], timeout))
            calls.append(self._run("recall", [self.keys.conversation("")], [], timeout))
        try:
            replies = await asyncio.gather(*calls)
        except Exception as exc:
            # Dropped, never re-sent: a write that timed out may have been applied. The
            # leases are state and go whole with the next tick; ended ones expire.
            self.dropped += sum(len(v) // 4 for v in samples.values()) + len(remembered)
            self._failed("sync", exc)
            return False
        now = self._clock()
        view_tiers = {tier: tier_of(reply, now) for tier, reply in zip(tiers, replies)}
        budget_used = None
        if self._budget is not None:
            hour_r, hour_s, day_r, day_s = (float(text(x)) for x in replies[budget_at])
            budget_used = (int(hour_r), int(day_r), hour_s, day_s)
        was_up = self.up
        self._view = SharedView(view_tiers, budget_used, now)
        self._down = False
        self._settle()
        if not was_up:
            logger.info("stratum router: shared state in Redis is up (process %s)", self.process_id)
        return True

    # -- internals ------------------------------------------------------------------------------

    @property
    def settled(self) -> bool:
        """Whether a tick has reached Redis or failed to (or a first wait ran out)."""
        return self._first_tick.is_set()

    def _settle(self) -> None:
        self._first_tick.set()

    def _resolve(self) -> Register | None:
        try:
            register = self._connect()
        except Exception as exc:
            self._failed("connect", exc)
            return None
        if register is not self._register:  # a new client: its scripts are registered anew
            self._register, self._scripts = register, {}
        return register

    async def _run(self, name: str, keys: Sequence[str], args: Sequence[Any], timeout_s: float) -> Any:
        script = self._scripts.get(name)
        if script is None:
            register = self._register if self._register is not None else self._resolve()
            if register is None:
                raise ConnectionError("no Redis configured for the gateway")
            script = self._scripts[name] = register(_SOURCES[name])
        return await asyncio.wait_for(script(keys=list(keys), args=list(args)), timeout=max(timeout_s, 0.0005))

    def _late_reply(self, op: str, exc: BaseException) -> None:
        """A request's wait ran out (or failed). One is a slow moment; a few in a row are
        Redis down or hung, and requests stop waiting until a tick succeeds."""
        self._late += 1
        if self._late >= _LATE_IN_A_ROW:
            self._failed(op, exc)
        elif self._report is not None:
            self._report(op, exc)

    def _failed(self, op: str, exc: BaseException) -> None:
        if self.up:
            logger.warning("stratum router: shared state in Redis is down (%s: %s: %s); routing from this "
                           "process's own state until it is back", op, type(exc).__name__, exc)
        self._down = True
        self._settle()  # Redis is not there: a new process's requests stop waiting for it
        if self._report is not None:
            self._report(op, exc)

    def _hold(self, call_id: str, tier: Tier, member: str, owner_key: str | None) -> None:
        now = self._clock()
        timeout = self.settings.latency.in_flight_timeout_s
        with self._lock:
            self._leases[call_id] = _Lease(tier, member, owner_key, now)
            if len(self._leases) > _MAX_PENDING:  # callbacks that never came: bounded all the same
                for cid in [c for c, lease in self._leases.items() if now - lease.started_at > timeout]:
                    self._ended.append(self._leases.pop(cid))

    def _queue_sample(self, tier: Tier, fields: tuple[str, str, str, str]) -> None:
        with self._lock:
            queue = self._samples.setdefault(tier, [])
            if len(queue) < 4 * _MAX_PENDING:
                queue.extend(fields)
            else:
                self.dropped += 1

    def _take(self) -> tuple[list[_Lease], dict[Tier, list[str]], list[tuple[str, int, Tier]], tuple[int, float]]:
        with self._lock:
            ended, self._ended = self._ended, []
            samples, self._samples = self._samples, {}
            charges = (int(self._charges[0]), float(self._charges[1]))
            self._charges = [0, 0.0]
        remembered = []
        while self._remembered:
            remembered.append(self._remembered.popleft())
        return ended, samples, remembered, charges

    def _budget_keys(self) -> list[str]:
        minute = int(self._wall() // 60)
        hour = minute // 60
        return ([self.keys.budget_minute(minute), self.keys.budget_hour(hour)]
                + [self.keys.budget_minute(minute - n) for n in range(60)]
                + [self.keys.budget_hour(hour - n) for n in range(24)])


_SOURCES = {"claim": scripts.CLAIM, "tier": scripts.TIER, "owners": scripts.OWNERS, "remember": scripts.REMEMBER,
            "recall": scripts.RECALL, "budget": scripts.BUDGET, "samples": scripts.SAMPLES}


def _by_owner(ended: list[_Lease], held: list[_Lease]) -> dict[str, tuple[list[str], list[str]]]:
    owners: dict[str, tuple[list[str], list[str]]] = {}
    for index, leases in enumerate((ended, held)):
        for lease in leases:
            if lease.owner_key is not None:
                owners.setdefault(lease.owner_key, ([], []))[index].append(lease.member)
    return owners
