"""Organizations, members, the last-owner rule, isolation between orgs, and the audit log."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from redisgate.store import db
from tests.integration.control.conftest import Api, api_for, control_settings


async def test_org_crud(api: Api) -> None:
    user = await api.register()
    token = user["access_token"]
    created = await api.post("/v1/orgs", token=token, json={"name": "Acme"})
    assert created.status == 201 and created.body["role"] == "owner"
    org_id = created.body["id"]
    listing = await api.get("/v1/orgs", token=token)
    assert [o["name"] for o in listing.body["items"]] == [user["org"]["name"], "Acme"]
    got = await api.get(f"/v1/orgs/{org_id}", token=token)
    assert got.body["name"] == "Acme" and got.body["personal"] is False
    renamed = await api.patch(f"/v1/orgs/{org_id}", token=token, json={"name": "Acme Inc"})
    assert renamed.status == 200 and renamed.body["name"] == "Acme Inc"
    bad = await api.patch(f"/v1/orgs/{org_id}", token=token, json={"name": "   "})
    assert bad.status == 422 and "name" in bad.error["details"]["fields"]
    assert (await api.delete(f"/v1/orgs/{org_id}", token=token)).status == 204
    gone = await api.get(f"/v1/orgs/{org_id}", token=token)
    assert gone.status == 404 and gone.error["code"] == "org_not_found"


async def test_create_org_validation(api: Api) -> None:
    user = await api.register()
    for body, field in (({}, "name"), ({"name": ""}, "name"), ({"name": "x" * 101}, "name")):
        response = await api.post("/v1/orgs", token=user["access_token"], json=body)
        assert response.status == 422 and field in response.error["details"]["fields"]


async def test_orgs_paginate(api: Api) -> None:
    user = await api.register()
    token = user["access_token"]
    for i in range(5):
        await api.post("/v1/orgs", token=token, json={"name": f"org {i}"})
    names: list[str] = []
    cursor = None
    while True:
        params = {"limit": "2"} | ({"cursor": cursor} if cursor else {})
        page = await api.get("/v1/orgs", token=token, params=params)
        names += [o["name"] for o in page.body["items"]]
        cursor = page.body["next_cursor"]
        if cursor is None:
            break
    assert names[1:] == [f"org {i}" for i in range(5)]


async def test_other_orgs_answer_404(api: Api) -> None:
    alice, bob = await api.register(), await api.register()
    org = alice["org"]["id"]
    for method, path in (
        ("GET", f"/v1/orgs/{org}"),
        ("DELETE", f"/v1/orgs/{org}"),
        ("GET", f"/v1/orgs/{org}/members"),
        ("GET", f"/v1/orgs/{org}/quota"),
        ("GET", f"/v1/orgs/{org}/audit"),
        ("GET", f"/v1/orgs/{uuid.uuid4()}"),
        ("GET", "/v1/orgs/not-a-uuid"),
    ):
        response = await api.request(method, path, token=bob["access_token"])
        assert response.status == 404, (method, path)


async def add(api: Api, token: str, org: str, email: str, role: str) -> Any:
    return await api.post(
        f"/v1/orgs/{org}/members", token=token, json={"email": email, "role": role}
    )


async def test_members_add_change_remove(api: Api) -> None:
    owner, bob = await api.register(), await api.register()
    token, org = owner["access_token"], owner["org"]["id"]
    added = await add(api, token, org, bob["email"].upper(), "member")
    assert added.status == 201 and added.body["role"] == "member"
    assert (await add(api, token, org, bob["email"], "viewer")).error["code"] == "already_member"
    missing = await add(api, token, org, "nobody@example.com", "viewer")
    assert missing.status == 404 and missing.error["code"] == "user_not_found"
    bad = await add(api, token, org, "x", "king")
    assert bad.status == 422 and set(bad.error["details"]["fields"]) == {"email", "role"}
    bob_id = bob["user"]["id"]
    changed = await api.patch(
        f"/v1/orgs/{org}/members/{bob_id}", token=token, json={"role": "admin"}
    )
    assert changed.body["role"] == "admin"
    me = await api.get("/v1/me", token=bob["access_token"])
    assert {"id": org, "name": owner["org"]["name"], "role": "admin"} in me.body["orgs"]
    listing = await api.get(f"/v1/orgs/{org}/members", token=token)
    assert {m["email"] for m in listing.body["items"]} == {owner["email"], bob["email"]}
    assert (await api.delete(f"/v1/orgs/{org}/members/{bob_id}", token=token)).status == 204
    assert (await api.delete(f"/v1/orgs/{org}/members/{bob_id}", token=token)).status == 404
    assert (await api.get(f"/v1/orgs/{org}", token=bob["access_token"])).status == 404


async def test_last_owner_stays(api: Api) -> None:
    owner = await api.register()
    token, org, me = owner["access_token"], owner["org"]["id"], owner["user"]["id"]
    demote = await api.patch(f"/v1/orgs/{org}/members/{me}", token=token, json={"role": "admin"})
    assert demote.status == 409 and demote.error["code"] == "last_owner"
    remove = await api.delete(f"/v1/orgs/{org}/members/{me}", token=token)
    assert remove.status == 409
    leave = await api.delete(f"/v1/orgs/{org}/membership", token=token)
    assert leave.status == 409 and leave.error["code"] == "last_owner"


async def test_a_viewer_can_leave(api: Api) -> None:
    owner, viewer = await api.register(), await api.register()
    org = owner["org"]["id"]
    await add(api, owner["access_token"], org, viewer["email"], "viewer")
    assert (
        await api.delete(f"/v1/orgs/{org}/membership", token=viewer["access_token"])
    ).status == 204
    assert (await api.get(f"/v1/orgs/{org}", token=viewer["access_token"])).status == 404
    log = await api.get(f"/v1/orgs/{org}/audit", token=owner["access_token"])
    assert log.body["items"][0]["action"] == "member.leave"


async def test_two_owners_demoting_each_other_at_once_leave_one(
    api: Api, database_url: str
) -> None:
    a, b = await api.register(), await api.register()
    org = a["org"]["id"]
    await add(api, a["access_token"], org, b["email"], "owner")
    results = await asyncio.gather(
        api.patch(
            f"/v1/orgs/{org}/members/{b['user']['id']}",
            token=a["access_token"],
            json={"role": "admin"},
        ),
        api.patch(
            f"/v1/orgs/{org}/members/{a['user']['id']}",
            token=b["access_token"],
            json={"role": "admin"},
        ),
    )
    assert sorted(r.status for r in results) in ([200, 403], [200, 409])
    async with db.connection(database_url) as conn:
        owners = await conn.fetchval(
            "SELECT count(*) FROM memberships WHERE org_id = $1 AND role = 'owner'",
            uuid.UUID(org),
        )
    assert owners == 1


async def test_admin_cannot_touch_owners(api: Api) -> None:
    owner, admin, other = await api.register(), await api.register(), await api.register()
    org = owner["org"]["id"]
    await add(api, owner["access_token"], org, admin["email"], "admin")
    tok = admin["access_token"]
    make_owner = await add(api, tok, org, other["email"], "owner")
    assert make_owner.status == 403 and make_owner.error["code"] == "insufficient_role"
    owner_id = owner["user"]["id"]
    demote = await api.patch(
        f"/v1/orgs/{org}/members/{owner_id}", token=tok, json={"role": "viewer"}
    )
    assert demote.status == 403
    assert (await api.delete(f"/v1/orgs/{org}/members/{owner_id}", token=tok)).status == 403
    assert (await add(api, tok, org, other["email"], "member")).status == 201


async def test_audit_rows_for_changes_with_filters_and_pages(api: Api) -> None:
    owner, bob = await api.register(), await api.register()
    token, org = owner["access_token"], owner["org"]["id"]
    await api.patch(
        f"/v1/orgs/{org}", token=token, json={"name": "Renamed"}, headers={"X-Request-ID": "req-42"}
    )
    await add(api, token, org, bob["email"], "viewer")
    await api.patch(
        f"/v1/orgs/{org}/members/{bob['user']['id']}", token=token, json={"role": "member"}
    )
    log = await api.get(f"/v1/orgs/{org}/audit", token=token)
    assert log.status == 200
    actions = [e["action"] for e in log.body["items"]]
    assert actions == ["member.update", "member.add", "org.update", "org.create"]
    update = log.body["items"][2]
    assert update["before"] == {"name": owner["org"]["name"]} and update["after"] == {
        "name": "Renamed"
    }
    assert update["actor_id"] == owner["user"]["id"] and update["request_id"] == "req-42"
    assert update["client_addr"] == "127.0.0.1"
    only = await api.get(f"/v1/orgs/{org}/audit", token=token, params={"action": "member.add"})
    assert [e["action"] for e in only.body["items"]] == ["member.add"]
    by_bob = await api.get(
        f"/v1/orgs/{org}/audit", token=token, params={"actor": bob["user"]["id"]}
    )
    assert by_bob.body["items"] == []
    future = await api.get(
        f"/v1/orgs/{org}/audit", token=token, params={"since": "2100-01-01T00:00:00+00:00"}
    )
    assert future.body["items"] == []
    past = await api.get(
        f"/v1/orgs/{org}/audit", token=token, params={"until": "2000-01-01T00:00:00Z"}
    )
    assert past.body["items"] == []
    bad = await api.get(
        f"/v1/orgs/{org}/audit", token=token, params={"since": "yesterday", "actor": "x"}
    )
    assert bad.status == 422 and set(bad.error["details"]["fields"]) == {"since", "actor"}
    first = await api.get(f"/v1/orgs/{org}/audit", token=token, params={"limit": "3"})
    rest = await api.get(
        f"/v1/orgs/{org}/audit",
        token=token,
        params={"limit": "3", "cursor": first.body["next_cursor"]},
    )
    assert [e["action"] for e in first.body["items"] + rest.body["items"]] == actions


async def test_audit_is_in_the_same_transaction(api: Api, database_url: str) -> None:
    """A change whose audit row cannot be written does not happen."""
    owner = await api.register()
    token, org = owner["access_token"], owner["org"]["id"]
    async with db.connection(database_url) as conn:
        await conn.execute(
            "ALTER TABLE audit_log ADD CONSTRAINT no_updates CHECK (action <> 'org.update')"
        )
    response = await api.patch(f"/v1/orgs/{org}", token=token, json={"name": "Never"})
    assert response.status == 503
    got = await api.get(f"/v1/orgs/{org}", token=token)
    assert got.body["name"] == owner["org"]["name"]


async def test_deleting_an_org_keeps_its_audit_rows(api: Api, database_url: str) -> None:
    owner = await api.register()
    token = owner["access_token"]
    org = (await api.post("/v1/orgs", token=token, json={"name": "Short-lived"})).body["id"]
    await api.delete(f"/v1/orgs/{org}", token=token)
    async with db.connection(database_url) as conn:
        rows = await conn.fetch(
            "SELECT action FROM audit_log WHERE org_id = $1 ORDER BY id", uuid.UUID(org)
        )
    assert [r["action"] for r in rows] == ["org.create", "org.delete"]


async def test_one_account_owns_at_most_max_orgs_per_user(database_url: str) -> None:
    """Each org has its own quota: without this bound, more orgs would mean more quota."""
    async for api in api_for(control_settings(database_url, max_orgs_per_user="3")):
        user = await api.register()  # the personal org is the first
        token = user["access_token"]
        for n in range(2):
            made = await api.post("/v1/orgs", token=token, json={"name": f"team {n}"})
            assert made.status == 201
        over = await api.post("/v1/orgs", token=token, json={"name": "one too many"})
        assert over.status == 409 and over.error["code"] == "quota_exceeded"
        assert over.error["details"] == {"resource": "organizations", "used": 3, "limit": 3}
        assert "the most one account may own (3)" in over.error["message"]
