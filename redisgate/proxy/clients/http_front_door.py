"""The HTTP command API's server: Upstash's REST API on the gateway's own command path.

Serverless and edge code cannot hold a TCP connection, so the gateway also takes commands
over HTTP, as Upstash's REST API has them (docs/http.md), and the Upstash SDKs work against
it unchanged. Every request is one `front_door.Caller`: it presents the request's token as
AUTH would (the same key cache, auth-failure throttle and `max_connections`), then runs its
commands through the same session, scope check, rate limits, quotas, usage counters and
backend pools as a RESP client, and closes, so nothing of it outlives the request. The
language itself (request bodies, JSON replies, server-sent events, the script dialect) is
sans-IO, in `proxy.http_api`; here is only the transport.

- `POST /` runs one command (`{"result"}`, or `{"error"}` with 400; 429 when a limit refused
  it); `/COMMAND/arg/…` is the same from the path. `POST /pipeline` runs a batch in order on
  the shared connection, one `{"result"}`/`{"error"}` entry per command. `POST /multi-exec`
  runs MULTI … EXEC on a dedicated connection. `POST /subscribe/<channel>` and
  `/psubscribe/<pattern>` stream messages as server-sent events until the client leaves.
- Bounded: a request may take `http_timeout_s` (a blocking command too; streams excepted),
  a body is refused past the key's `max_request_bytes` before it is buffered and the bodies
  buffered at once share `max_total_request_bytes`, a batch holds `http_max_commands`, the
  server holds `http_max_connections`, and a client that leaves cancels its request (aiohttp's
  handler cancellation), which closes its caller: its dedicated connection goes back and its
  usage is counted.
- Every answer is JSON, errors included: the Python SDK retries (and so runs a command twice)
  on a body it cannot parse.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Any, cast

from aiohttp import web

from redisgate import metrics
from redisgate.proxy.clients.front_door import Caller, CallerHost
from redisgate.proxy.clients.key_binding import REPLY_AUTH_UNAVAILABLE
from redisgate.proxy.http_api.replies import ReplyError, dumps, entry, parse, sse_event
from redisgate.proxy.http_api.requests import (
    ArgError,
    BadRequest,
    batch,
    command,
    path_command,
    path_segments,
)
from redisgate.proxy.http_api.scripts import Dialect

log = logging.getLogger(__name__)

_OK = b"+OK\r\n"
_HEARTBEAT_S = 15.0  # an idle stream gets a comment this often (and notices a dead client)
_REFUSED_LINGER_S = 1.0  # how long a refused connection's request is drained
_BODY_SLACK = 64 * 1024  # JSON's quoting around a command of exactly max_request_bytes
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT"})
_ALLOWED_HEADERS = "Authorization, Content-Type, Upstash-Encoding, Upstash-Sync-Token"

# Commands that only make sense on a connection that outlives the request.
_TRANSACTION = "transactions are POST /multi-exec requests (a JSON array of commands)"
_SUBSCRIBE = (
    "subscribe with POST /subscribe/<channel> or /psubscribe/<pattern> (server-sent events)"
)
_NOT_OVER_HTTP: dict[bytes, str] = {
    b"multi": _TRANSACTION,
    b"exec": _TRANSACTION,
    b"discard": _TRANSACTION,
    b"watch": "WATCH needs a connection that outlives the request; use /multi-exec",
    b"unwatch": "WATCH needs a connection that outlives the request; use /multi-exec",
    b"subscribe": _SUBSCRIBE,
    b"psubscribe": _SUBSCRIBE,
    b"ssubscribe": _SUBSCRIBE,
    b"unsubscribe": _SUBSCRIBE,
    b"punsubscribe": _SUBSCRIBE,
    b"sunsubscribe": _SUBSCRIBE,
    b"monitor": "MONITOR is not available over HTTP",
    b"auth": "each request authenticates with its token (Authorization: Bearer <key>)",
    b"hello": "each request authenticates with its token (Authorization: Bearer <key>)",
    b"select": "each request starts on the instance's database",
    b"reset": "each request starts afresh",
    b"quit": "each request ends with its answer",
}
_CLIENT_NOT_OVER_HTTP = {b"reply", b"tracking", b"caching"}


def _refusal(args: Sequence[bytes]) -> str | None:
    """Why `args` cannot run over HTTP (None: it can)."""
    name = args[0].lower()
    why = _NOT_OVER_HTTP.get(name)
    if why is None and name == b"client" and args[1:2] and args[1].lower() in _CLIENT_NOT_OVER_HTTP:
        why = "CLIENT REPLY, TRACKING and CACHING need a connection that outlives the request"
    if why is None:
        return None
    return f"ERR {args[0].decode('utf-8', 'replace').upper()} is not available over HTTP: {why}"


def _json(status: int, value: Any) -> web.Response:
    return web.Response(status=status, body=dumps(value), content_type="application/json")


def _error(status: int, message: str) -> web.Response:
    return _json(status, {"error": message})


class _Refused(asyncio.Protocol):
    """A connection over `http_max_connections`: answered 503 and closed. Its request is read
    and dropped meanwhile (closing at once would reset it before the client reads the
    answer), for `_REFUSED_LINGER_S` at most."""

    _BODY = dumps({"error": "ERR the gateway holds too many HTTP connections; retry shortly"})
    _REPLY = (
        b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
        b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(_BODY), _BODY)
    )

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        writer = cast(asyncio.WriteTransport, transport)  # uvloop's are not subclasses
        writer.write(self._REPLY)
        writer.write_eof()
        asyncio.get_running_loop().call_later(_REFUSED_LINGER_S, writer.close)

    def data_received(self, data: bytes) -> None:
        pass  # the request nobody will serve

    def eof_received(self) -> bool:
        return False  # the client is done too: close


class HttpFrontDoor:
    """The HTTP command API of one gateway process: a protocol factory for its listeners."""

    def __init__(self, gateway: CallerHost) -> None:
        self.gateway = gateway
        self.settings = s = gateway.settings
        self.dialect = Dialect()
        origins = s.http_cors_origins
        self.cors: frozenset[str] = frozenset(
            origin.strip() for origin in (origins or "").split(",") if origin.strip()
        )
        self.body_bytes = 0  # request bodies buffered now, all requests together
        self.server = web.Server(
            self._handle, handler_cancellation=True, access_log=None, keepalive_timeout=75.0
        )

    def __repr__(self) -> str:
        return f"<HttpFrontDoor [{len(self.server.connections)} connections]>"

    def protocol(self) -> asyncio.Protocol:
        """A new connection's protocol (a refusal past `http_max_connections`). A connection
        whose first request's headers have not all arrived within `auth_timeout_s` is closed,
        as the RESP port closes one that does not authenticate: aiohttp waits for headers
        forever, and slow ones would hold a connection each."""
        if len(self.server.connections) >= self.settings.http_max_connections:
            return _Refused()
        handler = self.server()
        asyncio.get_running_loop().call_later(
            self.settings.auth_timeout_s, _close_if_silent, handler
        )
        return handler

    async def shutdown(self, timeout_s: float) -> None:
        """Let requests in progress finish within `timeout_s` (streams end at once)."""
        for caller in list(self.gateway.callers):
            if caller.streaming:
                caller.close()
        await self.server.shutdown(timeout_s)

    # --- One request -----------------------------------------------------------------------

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        loop = asyncio.get_running_loop()
        started = loop.time()
        segments = path_segments(request.raw_path)
        endpoint = _endpoint(segments)
        cors = self._cors_headers(request)
        try:
            response = await self._respond(request, segments, endpoint, cors)
        except BadRequest as exc:
            response = _error(exc.status, str(exc))
            if exc.status == 413:
                response.force_close()  # the rest of the body is never read
        if not response.prepared:
            response.headers.update(cors)
        key = (endpoint, response.status)
        metrics.REST_REQUESTS[key] = metrics.REST_REQUESTS.get(key, 0) + 1
        if endpoint != "subscribe":
            metrics.REST_LATENCY[endpoint].observe(loop.time() - started)
        return response

    async def _respond(
        self,
        request: web.BaseRequest,
        segments: list[bytes],
        endpoint: str,
        cors: dict[str, str],
    ) -> web.StreamResponse:
        method = request.method
        if method == "OPTIONS":
            return self._preflight(request, cors)
        if method not in _METHODS:
            response = _error(405, f"ERR method {method} is not allowed: use POST (or GET)")
            response.headers["Allow"] = ", ".join(sorted(_METHODS))
            return response
        token = _token(request)
        if not token:
            raise BadRequest("Unauthorized: send the API key as Authorization: Bearer <key>", 401)
        peer = request.transport.get_extra_info("peername") if request.transport else None
        caller = Caller(self.gateway, f"{peer[0]}:{peer[1]}" if peer else "unknown:0")
        try:
            if endpoint == "subscribe":
                return await self._stream(request, caller, token, segments, cors)
            async with asyncio.timeout(self.settings.http_timeout_s):
                refused = await self._authenticate(caller, token)
                if refused is not None:
                    return refused
                base64 = request.headers.get("Upstash-Encoding", "").lower() == "base64"
                body = await self._body(request, caller)
                try:
                    if endpoint == "pipeline":
                        return await self._pipeline(caller, body, base64)
                    if endpoint == "multi-exec":
                        return await self._transaction(caller, body, base64)
                    if segments:
                        query = request.rel_url.query.items()
                        args = path_command(
                            segments, body if method in ("POST", "PUT") else None, query
                        )
                    elif method in ("POST", "PUT"):
                        args = command(body)
                    else:
                        raise BadRequest(
                            "ERR no command: POST a JSON array of arguments, or GET /COMMAND/arg/…"
                        )
                    return await self._single(caller, args, base64)
                finally:
                    self.body_bytes -= len(body)
        except TimeoutError:
            return _error(
                504,
                f"ERR the request took longer than http_timeout_s "
                f"({self.settings.http_timeout_s:g} s) and was cut off",
            )
        finally:
            caller.close()

    async def _authenticate(self, caller: Caller, token: bytes) -> web.Response | None:
        """None when the key is good; else the answer refusing the request."""
        reply = await caller.authenticate(token)
        if reply == _OK:
            return None
        text = parse(reply)
        if reply == REPLY_AUTH_UNAVAILABLE:
            return _error(503, str(text))
        if str(text).startswith("ERR max concurrent connections"):
            return _error(429, str(text))
        return _error(
            401, "Unauthorized: the token is not a valid API key (unknown, revoked or expired)"
        )

    async def _body(self, request: web.BaseRequest, caller: Caller) -> bytes:
        """The request body, refused before it is buffered when it would pass the key's
        `max_request_bytes`, or all buffered bodies' `max_total_request_bytes`."""
        cap = caller.framer.max_request_bytes + _BODY_SLACK
        length = request.content_length
        total = self.settings.max_total_request_bytes
        if length is not None and length > cap:
            raise BadRequest(_too_big(length, cap), status=413)
        if self.body_bytes + (length or 0) > total:
            raise BadRequest(
                "ERR the gateway holds too many request bytes now; retry shortly", status=503
            )
        chunks: list[bytes] = []
        size = 0
        while chunk := await request.content.readany():
            size += len(chunk)
            if size > cap:
                raise BadRequest(_too_big(size, cap), status=413)
            chunks.append(chunk)
        body = b"".join(chunks)
        self.body_bytes += len(body)
        return body

    # --- Endpoints -------------------------------------------------------------------------

    async def _single(self, caller: Caller, args: list[bytes], base64: bool) -> web.Response:
        why = _refusal(args)
        if why is not None:
            return _error(400, why)
        limited = _refusals(caller)
        args, sha = self.dialect.rewrite(args)
        value = _value(await caller.call(args), base64, sha)
        if isinstance(value, ReplyError):
            if caller.closed:  # its key went, or the gateway is stopping: retry elsewhere
                return _error(503, str(value))
            return _error(429 if _refusals(caller) > limited else 400, str(value) or "ERR")
        return _json(200, {"result": value})

    async def _pipeline(self, caller: Caller, body: bytes, base64: bool) -> web.Response:
        commands = batch(body, self.settings.http_max_commands)
        entries: list[dict[str, Any] | None] = []
        runnable: list[list[bytes]] = []
        shas: list[bytes | None] = []
        for args in commands:
            if isinstance(args, ArgError):
                entries.append({"error": str(args)})
                continue
            why = _refusal(args)
            if why is not None:
                entries.append({"error": why})
                continue
            args, sha = self.dialect.rewrite(args)
            entries.append(None)
            runnable.append(args)
            shas.append(sha)
        replies = iter(await caller.call_all(runnable))
        found = iter(shas)
        answer = [
            slot if slot is not None else entry(_value(next(replies), base64, next(found)))
            for slot in entries
        ]
        return _json(200, answer)

    async def _transaction(self, caller: Caller, body: bytes, base64: bool) -> web.Response:
        commands = batch(body, self.settings.http_max_commands)
        runnable: list[list[bytes]] = []
        shas: list[bytes | None] = []
        for args in commands:
            why = str(args) if isinstance(args, ArgError) else _refusal(args)
            if why is not None:  # nothing of it runs, as Redis discards a doomed transaction
                return _error(400, f"EXECABORT Transaction discarded because of: {why}")
            assert not isinstance(args, ArgError)
            args, sha = self.dialect.rewrite(args)
            runnable.append(args)
            shas.append(sha)
        if not runnable:
            return _json(200, [])
        # MULTI alone first: refused (by the key's scope, a rate limit), the commands would
        # run one by one, outside any transaction, and the client be told it failed.
        opened = parse(await caller.call([b"MULTI"]))
        if isinstance(opened, ReplyError):
            return _error(400, str(opened))
        replies = await caller.call_all([*runnable, [b"EXEC"]])
        queued, executed = replies[:-1], replies[-1]
        results = parse(executed, base64, error_depth=2)
        if isinstance(results, ReplyError) or results is None:
            first = next((parse(r) for r in queued if r.startswith(b"-")), None)
            why = str(first or results or "EXECABORT Transaction discarded")
            return _error(400, why)
        answer = []
        for value, sha in zip(results, shas, strict=True):
            if sha is not None and not isinstance(value, ReplyError):
                value = _text(sha, base64)
            answer.append(entry(value))
        return _json(200, answer)

    async def _stream(
        self,
        request: web.BaseRequest,
        caller: Caller,
        token: bytes,
        segments: list[bytes],
        cors: dict[str, str],
    ) -> web.StreamResponse:
        """SUBSCRIBE or PSUBSCRIBE, then each message as a server-sent event until the client
        leaves (its request is cancelled), the key changes or the gateway stops."""
        targets = segments[1:]
        if not targets:
            raise BadRequest("ERR name a channel: POST /subscribe/<channel>")
        name = b"SUBSCRIBE" if segments[0].lower() == b"subscribe" else b"PSUBSCRIBE"
        try:
            async with asyncio.timeout(self.settings.http_timeout_s):
                refused = await self._authenticate(caller, token)
                if refused is not None:
                    return refused
                reply = await caller.call([name, *targets])
        except TimeoutError:
            return _error(504, "ERR the subscription could not be set up in time")
        if reply:  # refused (NOPERM, a limit): no stream
            return _error(400, str(parse(reply)))
        response = web.StreamResponse(
            headers={
                **cors,
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",
            }
        )
        await response.prepare(request)
        caller.streaming = True
        metrics.REST_STREAMS["open"] += 1
        try:
            while True:
                for frame in caller.take_pushes():
                    event = sse_event(parse(frame))
                    if event is not None:
                        await response.write(event)
                if caller.closed:
                    break
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(_HEARTBEAT_S):
                        await caller.pushed.wait()
                if not caller.pushed.is_set() and not caller.closed:
                    await response.write(b": ping\n\n")
            await response.write_eof()
        except ConnectionResetError:
            pass  # the client left
        finally:
            metrics.REST_STREAMS["open"] -= 1
        return response

    # --- CORS --------------------------------------------------------------------------------

    def _cors_headers(self, request: web.BaseRequest) -> dict[str, str]:
        origin = request.headers.get("Origin")
        if not origin or not self.cors or ("*" not in self.cors and origin not in self.cors):
            return {}
        return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}

    def _preflight(self, request: web.BaseRequest, cors: dict[str, str]) -> web.Response:
        if not cors:
            return _error(
                403, "ERR this origin may not call the HTTP command API (http_cors_origins)"
            )
        response = web.Response(status=204)
        response.headers.update(
            {
                "Access-Control-Allow-Methods": "GET, POST, PUT, HEAD",
                "Access-Control-Allow-Headers": request.headers.get(
                    "Access-Control-Request-Headers", _ALLOWED_HEADERS
                ),
                "Access-Control-Max-Age": "600",
            }
        )
        return response


def _close_if_silent(handler: Any) -> None:
    """Close a connection that has not sent a whole request yet (aiohttp counts them)."""
    if getattr(handler, "_request_count", 1) == 0 and handler.transport is not None:
        log.debug("closing an HTTP connection that sent no request in auth_timeout_s")
        handler.transport.close()


def _endpoint(segments: list[bytes]) -> str:
    if not segments:
        return "command"
    first = segments[0].lower()
    if len(segments) == 1 and first in (b"pipeline", b"multi-exec"):
        return first.decode()
    if first in (b"subscribe", b"psubscribe"):
        return "subscribe"
    return "command"


def _token(request: web.BaseRequest) -> bytes | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip().encode()
    query = request.rel_url.query.get("_token")
    return query.encode() if query else None


def _refusals(caller: Caller) -> int:
    """Commands a rate limit or quota refused so far (the session's running total)."""
    return caller.session.limited if caller.session is not None else 0


def _text(data: bytes, base64: bool) -> Any:
    return parse(b"$%d\r\n%s\r\n" % (len(data), data), base64)


def _value(reply: bytes, base64: bool, sha: bytes | None) -> Any:
    """A command's reply as JSON; a rewritten SCRIPT LOAD answers with the client's SHA-1."""
    value = parse(reply, base64)
    if sha is not None and not isinstance(value, ReplyError):
        return _text(sha, base64)
    return value


def _too_big(size: int, cap: int) -> str:
    return (
        f"ERR the request body is too large ({size} bytes; this key's limit is "
        f"{cap - _BODY_SLACK} bytes per command, max_request_bytes)"
    )
