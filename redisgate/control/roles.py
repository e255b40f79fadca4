"""Roles in an organization and what each may do: one table, read by every org route.

`PERMISSIONS` is the only place that says who may do what. The route table names the action
each org route needs and the dispatcher checks it before the handler runs; `docs/roles.md`
carries this same table (a test compares them, and drives every role through every route).
"""

from __future__ import annotations

import enum

from redisgate.errors import Forbidden


class Role(enum.StrEnum):
    OWNER = "owner"
    ADMIN = "admin"
    MEMBER = "member"
    VIEWER = "viewer"


ROLES: tuple[Role, ...] = tuple(Role)

_ALL = frozenset(ROLES)
_MANAGERS = frozenset({Role.OWNER, Role.ADMIN})
_WRITERS = frozenset({Role.OWNER, Role.ADMIN, Role.MEMBER})

# action -> (roles allowed, what it covers).
PERMISSIONS: dict[str, tuple[frozenset[Role], str]] = {
    "org.read": (_ALL, "see the organization"),
    "org.update": (_MANAGERS, "rename the organization"),
    "org.delete": (frozenset({Role.OWNER}), "delete the organization with its instances"),
    "org.leave": (_ALL, "leave the organization (the last owner cannot)"),
    "members.read": (_ALL, "list members and their roles"),
    "members.manage": (_MANAGERS, "add members, change roles below owner, remove members"),
    "members.manage_owners": (
        frozenset({Role.OWNER}),
        "make someone an owner, change or remove an owner",
    ),
    "quota.read": (_ALL, "see the quota and current use, and the default limits"),
    "audit.read": (_MANAGERS, "read the audit log"),
    "instances.read": (_ALL, "list instances, see their status and stats"),
    "instances.manage": (_WRITERS, "create, resize, delete instances"),
    "instances.browse": (
        _ALL,
        "get a short-lived key for the console's data browser (read-only for viewers)",
    ),
    "usage.read": (_ALL, "see usage per day (commands, bytes, denials, rejections)"),
    "keys.read": (_WRITERS, "list API keys (public ids and scopes, never secrets)"),
    "keys.manage": (_WRITERS, "create, re-scope and revoke API keys"),
}


def allows(role: Role | str, action: str) -> bool:
    return Role(role) in PERMISSIONS[action][0]


def require(role: Role | str, action: str) -> None:
    """Raise Forbidden unless `role` may do `action`."""
    if not allows(role, action):
        allowed = [r.value for r in ROLES if r in PERMISSIONS[action][0]]
        raise Forbidden(
            f"your role ({Role(role).value}) may not {PERMISSIONS[action][1]}; "
            f"ask one of: {', '.join(allowed)}",
            code="insufficient_role",
            details={"action": action, "role": Role(role).value, "allowed_roles": allowed},
        )


def markdown_table() -> str:
    """The table of docs/roles.md: one row per action, one column per role."""
    head = "| Action | " + " | ".join(r.value for r in ROLES) + " | What it covers |"
    rows = [head, "|---|" + "---|" * len(ROLES) + "---|"]
    for action, (allowed, what) in PERMISSIONS.items():
        marks = " | ".join("yes" if r in allowed else "no" for r in ROLES)
        rows.append(f"| `{action}` | {marks} | {what} |")
    return "\n".join(rows) + "\n"
