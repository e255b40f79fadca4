"""HTTP command requests to argument lists, sans-IO: the JSON body of `POST /`, the batches of
`/pipeline` and `/multi-exec`, and the path style `/COMMAND/arg/…` (docs/http.md).

The Upstash SDKs send each argument as a JSON string, number or boolean. A number keeps its
literal text (`1.50` stays `1.50`: it is never read as a float), booleans become `true` and
`false`. Anything else (null, an array, an object, a string holding a lone surrogate) cannot
be a Redis argument: in a batch that refuses the one command, as Redis refuses a bad
command, and the others still run.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any
from urllib.parse import unquote_to_bytes

__all__ = ["ArgError", "BadRequest", "batch", "command", "path_command", "path_segments"]


class BadRequest(Exception):
    """The request as a whole cannot be run: answered with `status` and `{"error": str}`."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class ArgError(Exception):
    """One command of a request cannot be sent to Redis (its error entry, as Redis's)."""


def _literal(text: str) -> str:
    return text  # JSON numbers keep the text they were written with


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _load(body: bytes) -> Any:
    if not body.strip():
        raise BadRequest("ERR the request body is empty: send a JSON array of command arguments")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest(f"ERR the request body is not valid UTF-8 (byte {exc.start})") from None
    try:
        return json.loads(
            text, parse_int=_literal, parse_float=_literal, parse_constant=_no_constant
        )
    except ValueError as exc:
        raise BadRequest(f"ERR the request body is not valid JSON: {exc}") from None


def _arg(value: Any) -> bytes:
    if isinstance(value, str):
        try:
            return value.encode("utf-8")
        except UnicodeEncodeError:
            raise ArgError("ERR unsupported arg: a string holding a lone surrogate") from None
    if value is True:
        return b"true"
    if value is False:
        return b"false"
    kind = "null" if value is None else "an array" if isinstance(value, list) else "an object"
    raise ArgError(f"ERR unsupported arg type: {kind} (send strings, numbers or booleans)")


def _args(values: list[Any]) -> list[bytes]:
    if not values:
        raise ArgError("ERR empty command: a command is a non-empty array of arguments")
    return [_arg(value) for value in values]


def command(body: bytes) -> list[bytes]:
    """`POST /`: one command, a JSON array of its arguments."""
    values = _load(body)
    if not isinstance(values, list):
        raise BadRequest("ERR the request body must be a JSON array of command arguments")
    try:
        return _args(values)
    except ArgError as exc:
        raise BadRequest(str(exc)) from None


def batch(body: bytes, max_commands: int) -> list[list[bytes] | ArgError]:
    """`/pipeline` and `/multi-exec`: a JSON array of commands; a command that cannot be sent
    is its `ArgError` in place, so the others keep their positions."""
    values = _load(body)
    if not isinstance(values, list) or not all(isinstance(entry, list) for entry in values):
        raise BadRequest(
            "ERR the request body must be a JSON array of commands, each an array of arguments"
        )
    if len(values) > max_commands:
        raise BadRequest(
            f"ERR too many commands in one request: {len(values)} (at most {max_commands})",
            status=413,
        )
    commands: list[list[bytes] | ArgError] = []
    for entry in values:
        try:
            commands.append(_args(entry))
        except ArgError as exc:
            commands.append(exc)
    return commands


def path_segments(raw_path: str) -> list[bytes]:
    """The raw path's segments, each percent-decoded, empty ones dropped (`//pipeline` is
    `/pipeline`: a base URL with a trailing slash makes the Python SDK send it). The path is
    split before it is decoded, so `%2F` stays inside its segment."""
    path = raw_path.split("?", 1)[0]
    return [unquote_to_bytes(part) for part in path.split("/") if part]


def path_command(
    segments: list[bytes], body: bytes | None, query: Iterable[tuple[str, str]]
) -> list[bytes]:
    """Path style: `/SET/key/value?EX=100` is `SET key value EX 100`; a POST body (raw bytes,
    binary-safe) is the last argument. The query's `_token` is the key, not an argument."""
    args = list(segments)
    if body:
        args.append(body)
    for name, value in query:
        if name != "_token":
            args.append(name.encode())
            if value:
                args.append(value.encode())
    return args
