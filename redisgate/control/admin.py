"""`redisgate admin create-user`: accounts made from the command line (platform admins)."""

from __future__ import annotations

from redisgate.config import Settings
from redisgate.control.emails import EmailProblem, normalize_email
from redisgate.control.passwords import Passwords, password_problem
from redisgate.control.spec import EMAIL, obj
from redisgate.control.validation import check
from redisgate.errors import ConfigError, ValidationFailed
from redisgate.store import audit, db, orgs, users
from redisgate.store.org_quotas import default_quota
from redisgate.store.users import User


async def create_user(
    settings: Settings, email: str, password: str, *, name: str = "", admin: bool = False
) -> User:
    """Create a user (and their personal organization) with the same rules as registration."""
    if not settings.database_url:
        raise ConfigError(
            "database_url is not set: point REDISGATE_DATABASE_URL (or --database-url) at the "
            "control database"
        )
    check(obj({"email": EMAIL}), {"email": email})
    try:
        email = normalize_email(email)
    except EmailProblem as exc:
        raise ValidationFailed(f"email {exc}") from None
    problem = password_problem(password, email)
    if problem:
        raise ValidationFailed(f"password {problem}")
    password_hash = await Passwords(settings).hash(password)
    async with db.connection(settings.database_url) as conn, conn.transaction():
        user = await users.create_user(conn, email, name, password_hash, is_platform_admin=admin)
        actor = audit.Actor(None, "cli", "")
        await audit.record(
            conn,
            actor,
            "user.create",
            org_id=None,
            target_type="user",
            target_id=user.id,
            after={"email": email, "is_platform_admin": admin},
        )
        org_name = f"{name or email.split('@')[0]}'s organization"[:100]
        org = await orgs.create_org(conn, org_name, user.id, default_quota(settings), personal=True)
        await audit.record(
            conn,
            actor,
            "org.create",
            org_id=org.id,
            target_type="org",
            target_id=org.id,
            after=org.public(),
        )
    return user
