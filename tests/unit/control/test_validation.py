"""Request validation messages, cursors and the error-status table (no I/O)."""

from __future__ import annotations

import pytest

from redisgate.control import pagination, roles
from redisgate.control.middlewares import STATUS, status_of
from redisgate.control.passwords import password_problem
from redisgate.control.spec import EMAIL, ROLE, obj
from redisgate.control.validation import check, problems
from redisgate.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    QuotaExceeded,
    ServiceUnavailable,
    StoreError,
    TooManyRequests,
    Unauthenticated,
    ValidationFailed,
)

SCHEMA = obj({"email": EMAIL, "role": ROLE}, {"count": {"type": "integer", "minimum": 1}})


def test_every_bad_field_is_named() -> None:
    assert problems(SCHEMA, {"email": "nope", "role": "king", "count": 0, "x": 1}) == {
        "email": "must be an email address like name@example.com",
        "role": "must be one of owner, admin, member, viewer",
        "count": "must be at least 1",
        "x": "is not a known field",
    }
    assert problems(SCHEMA, {"count": "3"}) == {
        "email": "is required",
        "role": "is required",
        "count": "must be an integer",
    }
    with pytest.raises(ValidationFailed) as info:
        check(SCHEMA, {})
    assert info.value.details == {"fields": {"email": "is required", "role": "is required"}}


def test_password_rules() -> None:
    assert password_problem("short") == "must be at least 10 characters"
    assert password_problem("Password123") is not None
    assert password_problem("qwertyuiop") is not None
    assert password_problem("me@example.com", "ME@example.com") == "must not be your email address"
    assert password_problem("x" * 1025) == "must be at most 1024 characters"
    assert password_problem("tangerine lighthouse 42") is None


def test_cursors_round_trip_and_refuse_foreign_ones() -> None:
    import uuid
    from datetime import UTC, datetime

    at, ident = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), uuid.uuid4()
    assert pagination.time_id(pagination.encode([at.isoformat(), ident])) == (at, ident)
    assert pagination.integer(pagination.encode([42])) == 42
    for bad in ("!!", pagination.encode(["x"]), pagination.encode([1, 2]), "e30"):
        with pytest.raises(ValidationFailed):
            pagination.time_id(bad)
    with pytest.raises(ValidationFailed):
        pagination.integer(pagination.encode(["1"]))
    assert pagination.page([{}], 2, [1])["next_cursor"] is None
    assert pagination.page([{}, {}], 2, [1])["next_cursor"] == pagination.encode([1])


def test_status_table() -> None:
    cases = {
        BadRequest("x"): 400,
        Unauthenticated("x"): 401,
        Forbidden("x"): 403,
        NotFound("x"): 404,
        Conflict("x"): 409,
        QuotaExceeded("x"): 409,
        ValidationFailed("x"): 422,
        TooManyRequests("x", retry_after_s=3): 429,
        ServiceUnavailable("x"): 503,
        StoreError("x"): 503,
    }
    for exc, status in cases.items():
        assert status_of(exc) == status, exc
    assert status_of(ValueError()) is None
    assert set(STATUS) == {type(e) for e in cases}


def test_require_names_the_allowed_roles() -> None:
    roles.require("admin", "members.manage")
    with pytest.raises(Forbidden) as info:
        roles.require("viewer", "audit.read")
    assert info.value.details["allowed_roles"] == ["owner", "admin"]
    assert "viewer" in info.value.message


def test_argon2_memory_must_cover_the_lanes() -> None:
    from redisgate.config.load import load_settings
    from redisgate.control.passwords import Passwords
    from redisgate.errors import ConfigError

    env = {"REDISGATE_ARGON2_MEMORY_KIB": "64", "REDISGATE_ARGON2_PARALLELISM": "16"}
    with pytest.raises(ConfigError, match="argon2_memory_kib = 64 \\(env"):
        Passwords(load_settings(env=env))


def test_text_that_cannot_be_stored_is_named_at_any_depth() -> None:
    from redisgate.control.validation import text_problems

    assert text_problems({"name": "fine", "email": "a\ud800@x.org"}) == {
        "email": "must be valid Unicode text (it holds a lone surrogate)"
    }
    assert text_problems({"scopes": ["ok", "n\x00l"], "deep": {"x": "\udfff"}}) == {
        "scopes.1": "must not contain NUL characters",
        "deep.x": "must be valid Unicode text (it holds a lone surrogate)",
    }
    assert text_problems({"emoji 🙂": "\U0001d518 astral"}) == {}


@pytest.mark.parametrize(
    "weak", ["aaaaaaaaaa", "qwertyuiop", "1234567890", "password123", "1qaz2wsx3edc"]
)
def test_weak_passwords_are_refused_with_a_reason(weak: str) -> None:
    problem = password_problem(weak)
    assert problem is not None and problem.startswith(("is too easy", "is one of the most"))


def test_a_password_built_from_the_email_is_weak() -> None:
    assert password_problem("jonathan.smith2", "jonathan.smith@example.com") is not None
    assert password_problem("correct horse battery staple", "jonathan@example.com") is None
