"""KeyRefresher: a changed key is read again and applied to the connections and backend key
users using it, one way (refresher -> connection), through fakes of the Protocols it needs."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, field

from redisgate.backends import Backend
from redisgate.errors import StoreError
from redisgate.proxy.commands.table import CommandTable
from redisgate.proxy.keys.principals import Authenticator, Instance, KeyRecord, Principal
from redisgate.proxy.keys.refresh import KeyRefresher

BACKEND = Backend(host="10.0.0.5", port=6379)
CACHE = Instance(id="cache", name="cache", backend=BACKEND)
QUEUE = Instance(id="queue", name="queue", backend=BACKEND)


def principal(key_id: str, instance: Instance = CACHE, org_id: str = "org-1") -> Principal:
    return Principal(key_id=key_id, key_name=key_id, instance=instance, org_id=org_id)


class Source:
    """The keys as the control database holds them now; `down` makes every read fail."""

    def __init__(self, *principals: Principal) -> None:
        self.records = {p.key_id: KeyRecord(p.key_id, "digest", p) for p in principals}
        self.asked: list[str] = []
        self.down = False

    async def get_key(self, key_id: str) -> KeyRecord | None:
        self.asked.append(key_id)
        if self.down:
            raise StoreError("the database is down")
        return self.records.get(key_id)


@dataclass
class Session:
    principal: Principal | None


class Connection:
    """A client connection: what it runs as, and every principal applied to it."""

    def __init__(self, who: Principal | None) -> None:
        self.session: Session | None = Session(who)
        self.applied: list[Principal | None] = []

    def apply_principal(self, principal: Principal | None) -> None:
        self.applied.append(principal)


@dataclass
class KeyUsers:
    ids: list[str]
    updates: list[tuple[str, str | None]] = field(default_factory=list)

    def key_ids(self) -> list[str]:
        return list(self.ids)

    async def update(self, key_id: str, rules: str | None) -> None:
        self.updates.append((key_id, rules))


@dataclass
class Pool:
    instance: Instance
    key_users: KeyUsers

    @property
    def backend(self) -> Backend:
        return self.instance.backend


@dataclass
class Pools:
    pools: list[Pool]
    discarded: list[str] = field(default_factory=list)

    def __iter__(self) -> Iterator[Pool]:
        return iter(list(self.pools))

    def discard(self, instance_id: str) -> None:
        self.discarded.append(instance_id)


async def no_table(pool: Pool) -> CommandTable:
    raise AssertionError("a revoked key's users need no command table")


def refresher(source: Source, clients: list[Connection], pools: Pools) -> KeyRefresher[Pool]:
    return KeyRefresher(Authenticator(source), clients, pools, no_table)


async def test_a_revoked_key_closes_only_its_own_connections() -> None:
    a, b = principal("a"), principal("b")
    source = Source(b)  # "a" was revoked: the database no longer has it
    first, second, other, anonymous = Connection(a), Connection(a), Connection(b), Connection(None)
    keys = refresher(source, [first, second, other, anonymous], Pools([]))
    await keys.refresh({"a"})
    assert source.asked == ["a"]  # read once, however many connections use it
    assert first.applied == [None] and second.applied == [None]
    assert other.applied == [] and anonymous.applied == []


async def test_a_changed_key_is_applied_to_its_connections() -> None:
    old = principal("a")
    new = Principal(key_id="a", key_name="renamed", instance=CACHE, org_id="org-1")
    client = Connection(old)
    await refresher(Source(new), [client], Pools([])).refresh({"a"})
    assert client.applied == [new]


async def test_an_unreadable_key_fails_closed() -> None:
    source = Source(principal("a"))
    source.down = True
    client = Connection(principal("a"))
    await refresher(source, [client], Pools([])).refresh({"a"})
    assert client.applied == [None]


async def test_a_revoked_key_deletes_its_backend_users() -> None:
    users = KeyUsers(["a"])
    keys = refresher(Source(), [], Pools([Pool(CACHE, users)]))
    await keys.refresh({"a"})
    await asyncio.sleep(0)  # the update runs in the background
    assert users.updates == [("a", None)]


async def test_an_instance_without_keys_left_loses_its_pools() -> None:
    # An instance changed: LivePolicy hands over every key in use on it.
    gone, kept = Connection(principal("a")), Connection(principal("b"))
    pools = Pools([])
    keys = refresher(Source(principal("b")), [gone, kept], pools)
    await keys.refresh(keys.live_keys("cache"), "cache")
    assert pools.discarded == []  # "b" still uses it
    keys = refresher(Source(), [gone, kept], pools)
    await keys.refresh(keys.live_keys("cache"), "cache")
    assert pools.discarded == ["cache"]  # deleted: none of its keys remain


def test_live_keys_by_instance_and_org() -> None:
    clients = [
        Connection(principal("a")),
        Connection(principal("b", QUEUE)),
        Connection(principal("c", org_id="org-2")),
        Connection(None),
    ]
    pools = Pools([Pool(QUEUE, KeyUsers(["script-key"]))])
    keys = refresher(Source(), clients, pools)
    assert keys.live_keys() == {"a", "b", "c", "script-key"}
    assert keys.live_keys("queue") == {"b", "script-key"}
    assert keys.live_keys(org_id="org-2") == {"c"}  # key users are not listed by org
