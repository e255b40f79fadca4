"""The one backend address type: its defaults, and a password that never shows."""

from __future__ import annotations

from redisgate.backends import Backend
from redisgate.proxy.keys.principals import Instance


def test_endpoint_repr_hides_the_password() -> None:
    endpoint = Backend("127.0.0.1", 7000, password="s3cret-pw")
    assert "s3cret-pw" not in repr(endpoint)
    assert (endpoint.db, endpoint.username, endpoint.tls, endpoint.shared) == (
        0,
        None,
        False,
        False,
    )


def test_backend_repr_hides_the_password() -> None:
    backend = Backend(host="10.0.0.5", port=6379, password="hunter2-backend")
    assert "hunter2" not in repr(backend)
    assert "hunter2" not in repr(Instance(id="i", name="i", backend=backend))
