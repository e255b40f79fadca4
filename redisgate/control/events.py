"""Live updates: `GET /v1/orgs/{org_id}/events`, a server-sent event stream of an org's changes.

Theory of operation:

1. One `EventHub` per control process holds one PostgreSQL connection that LISTENs on both
   change channels (`store.changes`: the gateways' and the events-only one) and fans each
   notice out to the streams of its org. Streams never touch PostgreSQL for events; the
   number of LISTEN connections does not grow with them.
2. A notice says what changed, never how (`changes.Event`: kind, id, org): the console
   fetches what it shows again. So a stream may drop nothing silently: a stream opens only
   while the hub listens (it waits up to `READY_WAIT_S`, then 503), and a stream whose queue
   overflows, or any stream open when the LISTEN connection is lost (notices then are gone
   for good), is ended; the client reconnects and fetches everything afresh. A notice sent
   just before a stream opened may still arrive on it: an extra fetch, never a missed one.
3. A stream lives at most as long as the access token it was opened with (the client
   reconnects with a fresh one), and ends when its user loses access: a "member" or "org"
   event naming them or their org, or a "session" notice for the user, has the stream check
   the membership (or session) again, with one short query. Streams are bounded per user
   and in total (`events_max_streams_per_user`, `events_max_streams`: 429 beyond), and an
   idle one gets a `: ping` comment every `HEARTBEAT_S` so proxies keep it open and a
   departed client is noticed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import asyncpg
from aiohttp import web

from redisgate.control.spec import Call
from redisgate.control.state import POOL
from redisgate.errors import ServiceUnavailable, StoreError, TooManyRequests
from redisgate.store import changes, orgs, users
from redisgate.store.db import CONNECT_TIMEOUT_S, map_exceptions

log = logging.getLogger(__name__)

HEARTBEAT_S = 15.0
QUEUE_MAX = 256  # events waiting for one stream's client; past it the stream ends (resync)
HEALTH_INTERVAL_S = 5.0
READY_WAIT_S = 5.0  # a stream opened while not listening waits this long for it, then 503
BACKOFF_S = (0.1, 5.0)

_END = changes.Event("end", "", None)  # put in a queue: the stream must end


@dataclass(eq=False, slots=True)
class Stream:
    """One open event stream: whose, of which org, and its queue of events."""

    user_id: uuid.UUID
    session_id: uuid.UUID
    org_id: uuid.UUID
    queue: asyncio.Queue[changes.Event] = field(
        default_factory=lambda: asyncio.Queue(QUEUE_MAX + 1)
    )

    def put(self, event: changes.Event) -> None:
        if self.queue.qsize() >= QUEUE_MAX:  # the client does not keep up: resync
            self.end()
            return
        self.queue.put_nowait(event)

    def end(self) -> None:
        with contextlib.suppress(asyncio.QueueFull):
            self.queue.put_nowait(_END)


class EventHub:
    """The LISTEN connection of one control process and the streams it feeds."""

    def __init__(self, dsn: str, *, max_streams: int, max_per_user: int) -> None:
        self.dsn = dsn
        self.max_streams = max_streams
        self.max_per_user = max_per_user
        self._listening = asyncio.Event()
        self._by_org: dict[uuid.UUID, set[Stream]] = {}
        self._per_user: dict[uuid.UUID, int] = {}
        self._count = 0
        self._task: asyncio.Task[None] | None = None
        self._lost = asyncio.Event()

    def __repr__(self) -> str:
        state = "listening" if self.connected else "not listening"
        return f"<EventHub {state} | {self._count} streams>"

    @property
    def streams(self) -> int:
        return self._count

    @property
    def connected(self) -> bool:
        return self._listening.is_set()

    async def wait_listening(self) -> None:
        """Return once notices are heard (a stream opened before would miss some); 503 if
        that takes over `READY_WAIT_S` (PostgreSQL is down)."""
        if self._listening.is_set():
            return
        try:
            await asyncio.wait_for(self._listening.wait(), READY_WAIT_S)
        except TimeoutError:
            raise ServiceUnavailable(
                "live updates are unavailable while PostgreSQL is unreachable; try again shortly",
                code="events_unavailable",
            ) from None

    # --- Streams -----------------------------------------------------------------------------

    @contextlib.contextmanager
    def stream(
        self, user_id: uuid.UUID, session_id: uuid.UUID, org_id: uuid.UUID
    ) -> Iterator[Stream]:
        """Register a stream for the block (429 over the bounds)."""
        if self._count >= self.max_streams:
            raise TooManyRequests(
                "this server has as many live-update streams open as it allows "
                "(events_max_streams); try again shortly",
                retry_after_s=5,
            )
        if self._per_user.get(user_id, 0) >= self.max_per_user:
            raise TooManyRequests(
                f"you have {self.max_per_user} live-update streams open (events_max_streams_"
                "per_user): close a console tab, or try again shortly",
                retry_after_s=5,
            )
        stream = Stream(user_id, session_id, org_id)
        self._by_org.setdefault(org_id, set()).add(stream)
        self._per_user[user_id] = self._per_user.get(user_id, 0) + 1
        self._count += 1
        try:
            yield stream
        finally:
            self._count -= 1
            left = self._per_user[user_id] - 1
            if left:
                self._per_user[user_id] = left
            else:
                del self._per_user[user_id]
            streams = self._by_org[org_id]
            streams.discard(stream)
            if not streams:
                del self._by_org[org_id]

    def end_all(self) -> None:
        for streams in self._by_org.values():
            for stream in streams:
                stream.end()

    def publish(self, event: changes.Event) -> None:
        """Hand `event` to the streams it concerns."""
        if event.kind == "session":
            user = _uuid(event.id)
            for streams in self._by_org.values():
                for stream in streams:
                    if stream.user_id == user:
                        stream.put(event)  # the stream checks its session, sends nothing
            return
        org = _uuid(event.org_id)
        if org is None:
            return
        for stream in self._by_org.get(org, ()):
            stream.put(event)

    # --- The LISTEN connection ---------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def close(self) -> None:
        self.end_all()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._listening.clear()

    async def _run(self) -> None:
        delay = BACKOFF_S[0]
        while True:
            try:
                await self._listen_once()
                delay = BACKOFF_S[0]
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
                if delay == BACKOFF_S[0]:
                    log.warning("live updates: connection lost (%s); reconnecting", exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, BACKOFF_S[1])

    async def _listen_once(self) -> None:
        conn: asyncpg.Connection = await asyncpg.connect(
            self.dsn,
            timeout=CONNECT_TIMEOUT_S,
            server_settings={"application_name": "redisgate-events"},
        )
        self._lost.clear()
        try:
            conn.add_termination_listener(lambda _conn: self._lost.set())
            await conn.add_listener(changes.CHANNEL, self._notice)
            await conn.add_listener(changes.EVENTS_CHANNEL, self._notice)
            self._listening.set()
            while not self._lost.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._lost.wait(), HEALTH_INTERVAL_S)
                if not self._lost.is_set():
                    await asyncio.wait_for(conn.fetchval("SELECT 1"), HEALTH_INTERVAL_S)
            raise ConnectionResetError("the LISTEN connection was closed")
        finally:
            if self._listening.is_set():
                self._listening.clear()
                self.end_all()  # events are being lost from now on: clients start over
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), 1.0)
            if not conn.is_closed():
                conn.terminate()

    def _notice(self, _conn: object, _pid: int, channel: str, payload: str) -> None:
        event = changes.event_of(channel, payload)
        if event is not None:
            self.publish(event)


def _uuid(value: str | None) -> uuid.UUID | None:
    try:
        return None if value is None else uuid.UUID(value)
    except ValueError:
        return None


# --- The route -------------------------------------------------------------------------------

EVENTS = web.AppKey("events", EventHub)


async def org_events(call: Call) -> web.StreamResponse:
    """The org's changes as server-sent events until the access token expires or the caller
    loses access to the org (the format is in the route's summary, routes.py)."""
    assert call.caller is not None and call.org_id is not None
    request = call.request
    hub = request.app[EVENTS]
    caller, org_id = call.caller, call.org_id
    await hub.wait_listening()
    with hub.stream(caller.user.id, caller.session_id, org_id) as stream:
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-store",
                "X-Accel-Buffering": "no",  # nginx: pass events on at once
            }
        )
        await response.prepare(request)
        try:
            await response.write(b": live updates of this organization\n\n")
            await _pump(call, stream, response, caller.token_expires_at)
        except ConnectionResetError:
            return response  # the client left
        with contextlib.suppress(ConnectionResetError):
            await response.write_eof()
    return response


async def _pump(
    call: Call, stream: Stream, response: web.StreamResponse, token_expires_at: float
) -> None:
    while True:
        left = token_expires_at - time.time()
        if left <= 0:
            await response.write(b": the access token expired; reconnect with a fresh one\n\n")
            return
        try:
            event = await asyncio.wait_for(stream.queue.get(), min(HEARTBEAT_S, left))
        except TimeoutError:
            if token_expires_at - time.time() > 0:
                await response.write(b": ping\n\n")
            continue
        if event is _END:
            await response.write(b": reconnect and fetch afresh\n\n")
            return
        if event.kind in ("member", "org", "session") and not await _still_allowed(call, event):
            await response.write(b": access to this organization ended\n\n")
            return
        if event.kind == "session":
            continue
        data = json.dumps(event.public(), separators=(",", ":"))
        await response.write(f"event: {event.kind}\ndata: {data}\n\n".encode())


async def _still_allowed(call: Call, event: changes.Event) -> bool:
    """Whether the stream's user still may see its org (after an event that may say not)."""
    assert call.caller is not None and call.org_id is not None
    user = call.caller.user
    if event.kind == "member" and event.id != str(user.id):
        return True  # someone else's membership
    try:
        with map_exceptions("cannot check access"):
            async with call.request.app[POOL].acquire() as conn:
                if event.kind == "session":
                    live = await users.get_user_in_session(conn, user.id, call.caller.session_id)
                    return live is not None
                return await orgs.get_role(conn, call.org_id, user.id) is not None
    except StoreError:
        return False  # cannot tell: end it; the client reconnects and is checked again
