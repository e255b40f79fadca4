"""The role matrix: every role against every org route, expected outcomes read from
docs/roles.md (so the documented table, the code's table and the behaviour cannot drift)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from redisgate.control import roles
from redisgate.control.routes import ROUTES
from redisgate.control.spec import Access
from tests.integration.control.conftest import Api

DOC = Path(__file__).resolve().parents[3] / "docs" / "roles.md"


def documented_table() -> dict[str, dict[str, bool]]:
    text = DOC.read_text()
    block = text.split("<!-- roles:begin -->")[1].split("<!-- roles:end -->")[0]
    lines = [line for line in block.strip().splitlines() if line.startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    role_names = header[1:-1]
    table: dict[str, dict[str, bool]] = {}
    for line in lines[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        action = cells[0].strip("`")
        table[action] = {r: cells[1 + i] == "yes" for i, r in enumerate(role_names)}
    return table


TABLE = documented_table()


def test_docs_table_is_the_code_table() -> None:
    text = DOC.read_text()
    block = text.split("<!-- roles:begin -->\n")[1].split("<!-- roles:end -->")[0]
    assert block == roles.markdown_table(), "run scripts/update_roles_doc.py"
    for action, (allowed, _) in roles.PERMISSIONS.items():
        assert TABLE[action] == {r.value: r in allowed for r in roles.ROLES}


ORG_ROUTES = [r for r in ROUTES if r.access is Access.ORG]

Setup = dict[str, Any]
# (method, path) -> how to call it: (path with ids filled in, json body or None)
CALLS: dict[tuple[str, str], Callable[[Setup], tuple[str, Any]]] = {
    ("GET", "/v1/orgs/{org_id}"): lambda s: (f"/v1/orgs/{s['org']}", None),
    ("PATCH", "/v1/orgs/{org_id}"): lambda s: (f"/v1/orgs/{s['org']}", {"name": "New name"}),
    ("DELETE", "/v1/orgs/{org_id}"): lambda s: (f"/v1/orgs/{s['org']}", None),
    ("GET", "/v1/orgs/{org_id}/members"): lambda s: (f"/v1/orgs/{s['org']}/members", None),
    ("POST", "/v1/orgs/{org_id}/members"): lambda s: (
        f"/v1/orgs/{s['org']}/members",
        {"email": s["outsider_email"], "role": "viewer"},
    ),
    ("PATCH", "/v1/orgs/{org_id}/members/{user_id}"): lambda s: (
        f"/v1/orgs/{s['org']}/members/{s['target']}",
        {"role": "member"},
    ),
    ("DELETE", "/v1/orgs/{org_id}/members/{user_id}"): lambda s: (
        f"/v1/orgs/{s['org']}/members/{s['target']}",
        None,
    ),
    ("DELETE", "/v1/orgs/{org_id}/membership"): lambda s: (
        f"/v1/orgs/{s['org']}/membership",
        None,
    ),
    ("GET", "/v1/orgs/{org_id}/quota"): lambda s: (f"/v1/orgs/{s['org']}/quota", None),
    ("GET", "/v1/orgs/{org_id}/limits"): lambda s: (f"/v1/orgs/{s['org']}/limits", None),
    ("GET", "/v1/orgs/{org_id}/audit"): lambda s: (f"/v1/orgs/{s['org']}/audit", None),
    ("GET", "/v1/orgs/{org_id}/instances"): lambda s: (f"/v1/orgs/{s['org']}/instances", None),
    ("POST", "/v1/orgs/{org_id}/instances"): lambda s: (
        f"/v1/orgs/{s['org']}/instances",
        {"name": "another", "memory_mb": 1},
    ),
    ("GET", "/v1/orgs/{org_id}/instances/{instance_id}"): lambda s: (s["instance"], None),
    ("PATCH", "/v1/orgs/{org_id}/instances/{instance_id}"): lambda s: (
        s["instance"],
        {"memory_mb": 2},
    ),
    ("DELETE", "/v1/orgs/{org_id}/instances/{instance_id}"): lambda s: (s["instance"], None),
    ("GET", "/v1/orgs/{org_id}/instances/{instance_id}/stats"): lambda s: (
        s["instance"] + "/stats",
        None,
    ),
    ("GET", "/v1/orgs/{org_id}/usage"): lambda s: (f"/v1/orgs/{s['org']}/usage", None),
    ("GET", "/v1/orgs/{org_id}/instances/{instance_id}/usage"): lambda s: (
        s["instance"] + "/usage",
        None,
    ),
    ("GET", "/v1/orgs/{org_id}/instances/{instance_id}/keys"): lambda s: (
        s["instance"] + "/keys",
        None,
    ),
    ("POST", "/v1/orgs/{org_id}/instances/{instance_id}/keys"): lambda s: (
        s["instance"] + "/keys",
        {"name": "another"},
    ),
    ("GET", "/v1/orgs/{org_id}/instances/{instance_id}/keys/{key_id}"): lambda s: (s["key"], None),
    ("PATCH", "/v1/orgs/{org_id}/instances/{instance_id}/keys/{key_id}"): lambda s: (
        s["key"],
        {"name": "renamed"},
    ),
    ("DELETE", "/v1/orgs/{org_id}/instances/{instance_id}/keys/{key_id}"): lambda s: (
        s["key"],
        None,
    ),
    ("GET", "/v1/orgs/{org_id}/events"): lambda s: (f"/v1/orgs/{s['org']}/events", None),
    ("POST", "/v1/orgs/{org_id}/instances/{instance_id}/console-key"): lambda s: (
        s["instance"] + "/console-key",
        None,
    ),
}


def test_every_org_route_is_in_the_matrix() -> None:
    assert {(r.method, r.path) for r in ORG_ROUTES} == set(CALLS)
    for route in ORG_ROUTES:
        assert route.action in TABLE, f"{route.path}: action {route.action} is not documented"


async def setup_org(api: Api, role: str) -> tuple[str, Setup]:
    """An org with an owner, the caller in `role`, a viewer to act on, and an outsider."""
    owner, caller, target, outsider = [await api.register() for _ in range(4)]
    org = owner["org"]["id"]
    token = owner["access_token"]
    for who, r in ((caller, role), (target, "viewer")):
        response = await api.post(
            f"/v1/orgs/{org}/members", token=token, json={"email": who["email"], "role": r}
        )
        assert response.status == 201
    instance = await api.post(
        f"/v1/orgs/{org}/instances", token=token, json={"name": "main", "memory_mb": 1}
    )
    assert instance.status == 201 and instance.body["status"] == "running", instance.body
    instance_path = f"/v1/orgs/{org}/instances/{instance.body['id']}"
    key = await api.post(f"{instance_path}/keys", token=token, json={"name": "k"})
    assert key.status == 201, key.body
    setup = {
        "org": org,
        "target": target["user"]["id"],
        "outsider_email": outsider["email"],
        "instance": instance_path,
        "key": f"{instance_path}/keys/{key.body['id']}",
    }
    return caller["access_token"], setup


@pytest.mark.parametrize("role", [r.value for r in roles.ROLES])
@pytest.mark.parametrize("route", ORG_ROUTES, ids=[f"{r.method} {r.path}" for r in ORG_ROUTES])
async def test_role_matrix(api: Api, route: Any, role: str) -> None:
    token, setup = await setup_org(api, role)
    path, body = CALLS[(route.method, route.path)](setup)
    if route.streams:  # a stream never ends by itself: its status and headers are the answer
        raw = await api.client.get(path, headers={"Authorization": f"Bearer {token}"})
        raw.close()
        allowed = TABLE[route.action][role]
        assert raw.status == (route.status if allowed else 403), (role, route.path)
        return
    response = await api.request(route.method, path, token=token, json=body)
    if TABLE[route.action][role]:
        assert response.status == route.status, (role, route.path, response.body)
    else:
        assert response.status == 403, (role, route.path, response.body)
        assert response.error["code"] == "insufficient_role"
        assert response.error["details"]["role"] == role
