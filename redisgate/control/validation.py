"""Request input: JSON bodies and query strings checked against the route's JSON Schema.

Every problem is reported at once, keyed by field, so a form can mark each bad field:
`{"error": {"code": "validation_failed", "details": {"fields": {"email": "..."}}}}`.

Every string of every body and query is also checked to be text that can be stored and
encoded: JSON may carry lone UTF-16 surrogates (`"\\ud800"`), which no UTF-8 encoder (asyncpg,
argon2) accepts, and NUL, which PostgreSQL text cannot hold. Caught here, they are a 422
naming the field instead of a failure deep in a handler.
"""

from __future__ import annotations

import functools
import json
from datetime import datetime
from typing import Any

from aiohttp import web
from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError

from redisgate.control.emails import EmailProblem, normalize_email
from redisgate.control.spec import Param, Schema
from redisgate.errors import BadRequest, ValidationFailed


@functools.cache
def _validator(schema_json: str) -> Draft202012Validator:
    return Draft202012Validator(json.loads(schema_json), format_checker=FormatChecker())


def problems(schema: Schema, data: Any) -> dict[str, str]:
    """field -> what is wrong with it (empty when `data` is valid)."""
    validator = _validator(json.dumps(schema, sort_keys=True))
    fields: dict[str, str] = {}
    for error in validator.iter_errors(data):
        for name, message in _describe(error):
            fields.setdefault(name, message)
    return fields


def text_problem(value: str) -> str | None:
    """Why `value` cannot be stored as text, or None."""
    if "\x00" in value:
        return "must not contain NUL characters"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "must be valid Unicode text (it holds a lone surrogate)"
    return None


def text_problems(data: Any, where: str = "") -> dict[str, str]:
    """field -> problem for every string in `data` (keys included), at any depth."""
    fields: dict[str, str] = {}
    if isinstance(data, str):
        problem = text_problem(data)
        if problem:
            fields[where or "body"] = problem
    elif isinstance(data, dict):
        for key, value in data.items():
            name = f"{where}.{key}" if where else str(key)
            if text_problem(str(key)):
                fields[name] = "must be a field name in valid Unicode text"
                continue
            fields.update(text_problems(value, name))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            fields.update(text_problems(value, f"{where}.{i}" if where else str(i)))
    return fields


def _normalize(schema: Schema, data: dict[str, Any], fields: dict[str, str]) -> None:
    """Replace fields declared `x-normalize` by their normal form, or name their problem."""
    for name, prop in schema.get("properties", {}).items():
        value = data.get(name)
        if prop.get("x-normalize") != "email" or not isinstance(value, str) or name in fields:
            continue
        try:
            data[name] = normalize_email(value)
        except EmailProblem as exc:
            fields[name] = str(exc)


def check(schema: Schema, data: Any) -> None:
    """Raise ValidationFailed naming every bad field of `data`."""
    fields = problems(schema, data)
    if fields:
        names = ", ".join(sorted(fields))
        raise ValidationFailed(f"invalid fields: {names}", details={"fields": fields})


def _describe(error: ValidationError) -> list[tuple[str, str]]:
    rule: Any = error.validator
    value: Any = error.validator_value
    schema: Any = error.schema
    instance: Any = error.instance
    where = ".".join(str(p) for p in error.absolute_path)
    prefix = where + "." if where else ""
    if rule == "required":
        missing = [r for r in value if r not in (instance or {})]
        return [(prefix + name, "is required") for name in missing]
    if rule == "additionalProperties":
        allowed = set(schema.get("properties", {}))
        extra = sorted(k for k in instance if k not in allowed)
        return [(prefix + name, "is not a known field") for name in extra]
    return [(where or "body", _message(error))]


def _message(error: ValidationError) -> str:
    rule: Any = error.validator
    value: Any = error.validator_value
    schema: Any = error.schema
    if rule == "type":
        kinds = value if isinstance(value, list) else [value]
        return "must be " + " or ".join(f"a{'n' if k[0] in 'aeiou' else ''} {k}" for k in kinds)
    if rule == "minLength":
        return f"must be at least {value} characters"
    if rule == "maxLength":
        return f"must be at most {value} characters"
    if rule == "minimum":
        return f"must be at least {value}"
    if rule == "maximum":
        return f"must be at most {value}"
    if rule == "enum":
        return "must be one of " + ", ".join(str(v) for v in value)
    if rule == "pattern" and schema.get("format") is None and "@" in str(value):
        return "must be an email address like name@example.com"
    if rule == "format":
        return f"must be a valid {value}"
    if rule == "minProperties":
        return "must name at least one field"
    return error.message


async def read_body(request: web.Request, schema: Schema) -> dict[str, Any]:
    """The validated JSON object of the body (size already capped by the app)."""
    raw = await request.read()
    if not raw.strip():
        data: Any = {}
    else:
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise BadRequest(f"the body is not valid JSON: {exc}", code="invalid_json") from None
    if not isinstance(data, dict):
        raise BadRequest("the body must be a JSON object", code="invalid_json")
    fields = problems(schema, data)
    fields.update(text_problems(data))
    _normalize(schema, data, fields)
    if fields:
        names = ", ".join(sorted(fields))
        raise ValidationFailed(f"invalid fields: {names}", details={"fields": fields})
    return data


def read_query(request: web.Request, params: tuple[Param, ...]) -> dict[str, Any]:
    """Query parameters converted to their schema's type and validated; unknown ones refused."""
    known = {p.name: p for p in params}
    fields: dict[str, str] = {}
    out: dict[str, Any] = {}
    for name, text in request.query.items():
        param = known.get(name)
        problem = text_problem(name) or text_problem(text)
        if problem:
            fields[name if not text_problem(name) else "query"] = problem
            continue
        if param is None:
            fields[name] = "is not a known parameter"
            continue
        kind = param.schema.get("type")
        try:
            if kind == "integer":
                out[name] = int(text)
            elif param.schema.get("format") == "date-time":
                out[name] = datetime.fromisoformat(text)
                if out[name].tzinfo is None:
                    raise ValueError
            else:
                out[name] = text
        except ValueError:
            wanted = "a whole number" if kind == "integer" else "a timestamp with a time zone"
            fields[name] = f"must be {wanted}"
    checked = {k: v for k, v in out.items() if k not in fields and not isinstance(v, datetime)}
    schema = {
        "type": "object",
        "properties": {p.name: p.schema for p in params if p.schema.get("format") != "date-time"},
        "required": [p.name for p in params if p.required],
    }
    fields.update(problems(schema, checked))
    if fields:
        raise ValidationFailed(
            f"invalid query parameters: {', '.join(sorted(fields))}", details={"fields": fields}
        )
    return out
