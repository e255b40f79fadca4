"""Data-plane limits over HTTP: on instances and keys (create, PATCH, GET), org defaults for
platform admins, validation, and what the gateway's lookup then sees (docs/limits.md)."""

from __future__ import annotations

from redisgate.config import Settings
from redisgate.limits import FIELDS, Limits
from redisgate.proxy.keys.postgres import _record
from redisgate.proxy.policy.rates import LimitRegistry
from redisgate.store import api_keys, db
from tests.integration.control.conftest import Api
from tests.integration.control.test_instances import new_instance
from tests.integration.control.test_quotas import admin_token

UNSET = dict.fromkeys(FIELDS)


async def test_instance_and_key_limits_are_set_patched_read_and_reach_the_gateway(
    api: Api, settings: Settings
) -> None:
    user = await api.register()
    org, token = user["org"]["id"], user["access_token"]
    instance = await new_instance(
        api, token, org, limits={"ops_per_second": 100, "max_connections": 10}
    )
    assert instance["limits"] == {**UNSET, "ops_per_second": 100, "max_connections": 10}
    path = f"/v1/orgs/{org}/instances/{instance['id']}"
    patched = await api.patch(
        path, token=token, json={"limits": {"burst": 20, "max_connections": None}}
    )
    assert patched.status == 200
    assert patched.body["limits"] == {**UNSET, "ops_per_second": 100, "burst": 20}
    assert (await api.get(path, token=token)).body["limits"] == patched.body["limits"]

    created = await api.post(
        f"{path}/keys", token=token, json={"name": "web", "limits": {"max_request_bytes": 4096}}
    )
    assert created.status == 201 and created.body["limits"]["max_request_bytes"] == 4096
    key_path = f"{path}/keys/{created.body['id']}"
    key = await api.patch(key_path, token=token, json={"limits": {"ops_per_second": 5}})
    assert key.body["limits"] == {**UNSET, "ops_per_second": 5, "max_request_bytes": 4096}
    renamed = await api.patch(key_path, token=token, json={"name": "web2"})
    assert renamed.body["limits"] == key.body["limits"]  # absent: unchanged
    listing = await api.get(f"{path}/keys", token=token)
    assert [k["limits"] for k in listing.body["items"]] == [key.body["limits"]]

    admin = await admin_token(api, settings)
    org_limits = {"ops_per_second": 50, "daily_commands": 1_000_000}
    put = await api.put(f"/v1/orgs/{org}/limits", token=admin, json=org_limits)
    assert put.status == 200 and put.body["limits"] == {**UNSET, **org_limits}
    seen = await api.get(f"/v1/orgs/{org}/limits", token=token)
    assert seen.body == put.body

    assert settings.database_url
    async with db.connection(settings.database_url) as conn:
        found = await api_keys.gateway_key(conn, created.body["id"])
    assert found is not None
    record = _record(found)
    assert record is not None
    key_limits, instance_limits = LimitRegistry(Limits(max_connections=3)).effective(
        record.principal
    )
    assert key_limits == Limits(ops_per_second=5, burst=5, max_request_bytes=4096)
    # The org's 50/s is tighter than the instance's 100/s; its null max_connections is the
    # gateway's default; daily quotas are carried for the accounting still to come.
    assert instance_limits == Limits(
        ops_per_second=50, burst=20, max_connections=3, daily_commands=1_000_000
    )


async def test_bad_limits_are_refused_with_422_naming_the_field(api: Api) -> None:
    user = await api.register()
    org, token = user["org"]["id"], user["access_token"]
    for limits, field in (
        ({"ops_per_second": -1}, "limits.ops_per_second"),
        ({"burst": 0}, "limits.burst"),
        ({"max_connections": 2**31}, "limits.max_connections"),
        ({"daily_bytes": "lots"}, "limits.daily_bytes"),
        ({"per_minute": 5}, "limits.per_minute"),
    ):
        response = await api.post(
            f"/v1/orgs/{org}/instances",
            token=token,
            json={"name": "x", "memory_mb": 1, "limits": limits},
        )
        assert response.status == 422, response.body
        assert field in response.error["details"]["fields"], response.error


async def test_org_limits_are_set_by_platform_admins_only(api: Api, settings: Settings) -> None:
    user = await api.register()
    org, token = user["org"]["id"], user["access_token"]
    assert (await api.get(f"/v1/orgs/{org}/limits", token=token)).body == {"limits": UNSET}
    denied = await api.put(f"/v1/orgs/{org}/limits", token=token, json={"ops_per_second": 1})
    assert denied.status == 403
    admin = await admin_token(api, settings)
    await api.put(f"/v1/orgs/{org}/limits", token=admin, json={"ops_per_second": 1})
    cleared = await api.put(f"/v1/orgs/{org}/limits", token=admin, json={})
    assert cleared.body == {"limits": UNSET}  # PUT replaces: absent fields are null
    audit = await api.get(f"/v1/orgs/{org}/audit", token=token)
    assert audit.body["items"][0]["action"] == "limits.update"
