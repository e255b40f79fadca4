"""Access tokens (JWT, HS256, `kid` header) and refresh tokens (opaque, stored hashed).

The signing key comes from `jwt_secret`, or is generated into `<data_dir>/jwt-secret` (0600)
on first run, so nothing secret is ever in the code. Each key's id is derived from the key
itself; tokens name it in the `kid` header, and keys listed in `jwt_previous_secrets` still
verify their tokens, so a key can be rotated without logging everyone out.
"""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import jwt

from redisgate.config import Settings
from redisgate.errors import ConfigError, Unauthenticated
from redisgate.secret_files import read_or_create

ISSUER = "redisgate"
AUDIENCE = "redisgate-control"
ALGORITHM = "HS256"
REFRESH_PREFIX = "rgr_"
SECRET_FILE = "jwt-secret"


@dataclass(frozen=True, slots=True)
class Claims:
    user_id: uuid.UUID
    session_id: uuid.UUID
    expires_at: int


def key_id(secret: str) -> str:
    """A public, stable name for a key that reveals nothing of it."""
    return hashlib.sha256(b"redisgate-kid:" + secret.encode()).hexdigest()[:16]


def load_secret(settings: Settings) -> str:
    """`jwt_secret`, or the one kept in the data folder (created on first run)."""
    if settings.jwt_secret:
        return settings.jwt_secret
    path = Path(settings.data_dir) / SECRET_FILE
    value = read_or_create(
        path, lambda: secrets.token_urlsafe(48), what="token signing key", setting="jwt_secret"
    )
    if len(value) < 32:
        raise ConfigError(f"{path} holds a key under 32 characters: delete it or fix it")
    return value


class Keyring:
    """Signs with the current key; verifies with any known one, chosen by `kid`."""

    def __init__(self, current: str, previous: list[str], access_ttl_s: int) -> None:
        self.kid = key_id(current)
        self._current = current
        self._keys = {key_id(k): k for k in [*previous, current]}
        self.access_ttl_s = access_ttl_s

    @classmethod
    def from_settings(cls, settings: Settings) -> Keyring:
        previous = [s.strip() for s in (settings.jwt_previous_secrets or "").split(",")]
        return cls(load_secret(settings), [p for p in previous if p], settings.access_token_ttl_s)

    def issue(self, user_id: uuid.UUID, session_id: uuid.UUID, now: float | None = None) -> str:
        issued = int(time.time() if now is None else now)
        payload = {
            "sub": str(user_id),
            "sid": str(session_id),
            "iat": issued,
            "exp": issued + self.access_ttl_s,
            "iss": ISSUER,
            "aud": AUDIENCE,
        }
        return jwt.encode(payload, self._current, algorithm=ALGORITHM, headers={"kid": self.kid})

    def verify(self, token: str) -> Claims:
        """The claims of a valid token; Unauthenticated saying why otherwise."""
        try:
            kid = jwt.get_unverified_header(token).get("kid")
            key = self._keys.get(kid) if isinstance(kid, str) else None
            if key is None:
                raise Unauthenticated(
                    "the access token was signed by an unknown key", code="invalid_token"
                )
            payload = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=AUDIENCE,
                issuer=ISSUER,
                options={"require": ["exp", "iat", "sub", "sid", "iss", "aud"]},
            )
            return Claims(uuid.UUID(payload["sub"]), uuid.UUID(payload["sid"]), payload["exp"])
        except jwt.ExpiredSignatureError:
            raise Unauthenticated(
                "the access token has expired; get a new one from POST /v1/auth/refresh",
                code="token_expired",
            ) from None
        except (jwt.InvalidTokenError, ValueError, TypeError):
            raise Unauthenticated("the access token is not valid", code="invalid_token") from None


def new_refresh_token() -> tuple[str, bytes]:
    """(token to hand out once, digest to store)."""
    token = REFRESH_PREFIX + secrets.token_urlsafe(32)
    return token, refresh_digest(token)


def refresh_digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()
