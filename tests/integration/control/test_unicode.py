"""Strings that are not valid Unicode (lone surrogates) or that PostgreSQL cannot store (NUL)
are refused at validation with a 422 naming the field, never a 5xx from deeper down."""

from __future__ import annotations

import pytest

from tests.integration.control.conftest import PASSWORD, Api

SURROGATE = "\ud800"


def _field_error(response: object, field: str) -> None:
    status = response.status  # type: ignore[attr-defined]
    error = response.error  # type: ignore[attr-defined]
    assert status == 422, (status, error)
    assert error["code"] == "validation_failed"
    assert field in error["details"]["fields"], error


async def test_lone_surrogate_in_an_org_name_is_422(api: Api) -> None:
    user = await api.register()
    response = await api.post(
        "/v1/orgs", token=user["access_token"], json={"name": "acme " + SURROGATE}
    )
    _field_error(response, "name")


async def test_lone_surrogate_in_an_email_is_422(api: Api) -> None:
    response = await api.post(
        "/v1/auth/register", json={"email": f"a{SURROGATE}@example.com", "password": PASSWORD}
    )
    _field_error(response, "email")


async def test_lone_surrogate_in_a_login_password_is_422(api: Api) -> None:
    user = await api.register()
    response = await api.post(
        "/v1/auth/login", json={"email": user["email"], "password": PASSWORD + SURROGATE}
    )
    _field_error(response, "password")


@pytest.mark.parametrize("bad", ["%00", "%ED%A0%80", "%FF"])
async def test_query_strings_are_checked_too(api: Api, bad: str) -> None:
    user = await api.register()
    org = user["org"]["id"]
    response = await api.get(f"/v1/orgs/{org}/audit?action=x{bad}", token=user["access_token"])
    if bad == "%00":
        _field_error(response, "action")
    else:  # invalid UTF-8 is decoded with replacement characters: harmless, no 5xx
        assert response.status in (200, 422), response.body


async def test_nested_strings_and_field_names_are_checked(api: Api) -> None:
    user = await api.register()
    org = user["org"]["id"]
    response = await api.post(
        f"/v1/orgs/{org}/instances",
        token=user["access_token"],
        json={"name": "ok", "limits": {SURROGATE: 1}},
    )
    assert response.status == 422
    assert any(name.startswith("limits.") for name in response.error["details"]["fields"])
