"""The command table: Redis's own command metadata as data, plus our route for each command.

Theory of operation
-------------------
Redis 7 describes itself: `COMMAND INFO` gives arity, flags, ACL categories, tips and *key specs*
(where the keys are in the arguments, and how each is accessed) for every command and
subcommand; `COMMAND DOCS` adds summary, group and version. We never write that table by hand:

    raw RESP2 replies --normalize()--> plain JSON-able dict --CommandTable--> CommandSpec objects
                                           |
                                           +--> redisgate/data/redis-7.0.json (snapshot)

The gateway loads the live backend's metadata at start-up through `from_command_info` and falls
back to the packaged snapshot (`from_snapshot`); both go through `normalize`, so they cannot
drift apart. Our own decisions (which commands are forwarded, pinned, intercepted or denied) are
data in `routes.py` and are attached to each spec when the table is built, so the hot path does
one dict lookup (`CommandTable.get`/`resolve`) and reads precomputed fields. Key extraction is in
`keyspecs.py`.

Sans-IO: this module reads a JSON file when asked to, and never touches sockets or clocks.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum, Flag
from importlib import resources
from os import PathLike
from typing import Any

from redisgate.proxy.commands.routing import (
    ARG_RULES,
    PUBSUB,
    SCRIPTING,
    Decision,
    Route,
    classify,
)

__all__ = [
    "SNAPSHOT_FORMAT",
    "BeginSearch",
    "CommandSpec",
    "CommandTable",
    "Decision",
    "FindKeys",
    "KeyAccess",
    "KeySpec",
    "Route",
    "SearchKind",
    "arity_ok",
    "decide",
    "normalize",
    "route",
    "snapshot_document",
]

SNAPSHOT_FORMAT = 1
SNAPSHOT_RESOURCE = ("data", "redis-7.0.json")


class KeyAccess(Flag):
    """Key-spec flags, in Redis's order (`COMMAND GETKEYSANDFLAGS` prints them that way).

    RO/RW/OW/RM say what happens to the key's data; ACCESS/INSERT/UPDATE/DELETE refine it.
    NOT_KEY, INCOMPLETE and VARIABLE_FLAGS describe the spec itself rather than the key.
    """

    RO = 1
    RW = 2
    OW = 4
    RM = 8
    ACCESS = 16
    UPDATE = 32
    INSERT = 64
    DELETE = 128
    NOT_KEY = 256
    INCOMPLETE = 512
    VARIABLE_FLAGS = 1024

    @property
    def reads(self) -> bool:
        """The key's value reaches the client: Redis ACL needs read permission (`%R~`)."""
        return bool(self._value_ & _READ_BITS)

    @property
    def writes(self) -> bool:
        """The key is created, changed or deleted: Redis ACL needs write permission (`%W~`)."""
        return bool(self._value_ & _WRITE_BITS)

    @classmethod
    def from_names(cls, names: Sequence[str]) -> KeyAccess:
        """Parse Redis's flag names; names a newer Redis adds are ignored."""
        value = cls(0)
        for name in names:
            member = _KEY_FLAG_BY_NAME.get(name)
            if member is not None:
                value |= member
        return value

    def names(self) -> list[str]:
        """Redis's names for these flags, in Redis's order."""
        return [_KEY_FLAG_NAMES[m] for m in KeyAccess if m in self]


# Redis spells the data flags in capitals and the others in lowercase.
_KEY_FLAG_NAMES: dict[KeyAccess, str] = {
    member: name if len(name) == 2 else name.lower()
    for member in KeyAccess
    for name in [member.name or ""]
}
_KEY_FLAG_BY_NAME = {name: m for m, name in _KEY_FLAG_NAMES.items()}
# Plain ints, so the per-key checks on the hot path do no Flag arithmetic.
_READ_BITS = KeyAccess.ACCESS.value
_WRITE_BITS = (KeyAccess.INSERT | KeyAccess.UPDATE | KeyAccess.DELETE).value


class SearchKind(Enum):
    """Types of `begin_search` and `find_keys` steps; UNKNOWN means Redis cannot say."""

    INDEX = "index"
    KEYWORD = "keyword"
    RANGE = "range"
    KEYNUM = "keynum"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class BeginSearch:
    """Where a key spec starts: a fixed `index`, or after `keyword` searched from `startfrom`.

    A negative `startfrom` searches backwards from the end. `keyword` is lowercase.
    """

    kind: SearchKind
    index: int = 0
    keyword: bytes = b""
    startfrom: int = 0


@dataclass(frozen=True, slots=True)
class FindKeys:
    """How many keys follow: a `range` up to `lastkey` (negative: from the end; with `limit`, a
    fraction of the rest) every `keystep`; or `keynum`, a count at `keynumidx` then the keys."""

    kind: SearchKind
    lastkey: int = 0
    keystep: int = 1
    limit: int = 0
    keynumidx: int = 0
    firstkey: int = 0


@dataclass(frozen=True, slots=True)
class KeySpec:
    """One Redis 7 key spec: access flags plus the two search steps."""

    access: KeyAccess
    begin: BeginSearch
    find: FindKeys
    notes: str = ""
    is_key: bool = field(default=True, compare=False)  # False for NOT_KEY, precomputed

    @property
    def interpretable(self) -> bool:
        """True when key positions follow from the arguments alone, as Redis requires."""
        if self.access & (KeyAccess.INCOMPLETE | KeyAccess.VARIABLE_FLAGS):
            return False
        return SearchKind.UNKNOWN not in (self.begin.kind, self.find.kind)


@dataclass(frozen=True, slots=True)
class CommandSpec:
    """A command or subcommand as Redis describes it, with the gateway's decision attached.

    `name` is Redis's lowercase full name (`get`, `config|get`). `arity` counts the command name
    (and the container name for subcommands); negative means "at least". `subcommands` maps the
    lowercase subcommand name (`get`) to its spec; it takes no part in equality and hashing, so
    specs can key dicts and sets.
    """

    name: str
    arity: int
    flags: frozenset[str]
    acl_categories: frozenset[str]
    key_specs: tuple[KeySpec, ...]
    subcommands: Mapping[str, CommandSpec] = field(compare=False)
    group: str
    summary: str
    decision: Decision
    first_key: int = 0
    last_key: int = 0
    step: int = 0
    tips: tuple[str, ...] = ()
    since: str = ""
    container: str = ""
    # Precomputed for the hot path.
    keys_interpretable: bool = field(default=True, compare=False)
    has_arg_rule: bool = field(default=False, compare=False)
    subcommand_index: Mapping[bytes, CommandSpec] = field(
        default_factory=dict, repr=False, compare=False
    )

    @property
    def route(self) -> Route:
        """The static route; use `route(spec, args)` for argument-dependent ones."""
        return self.decision.route

    @property
    def display_name(self) -> str:
        """`CONFIG GET` for `config|get`: how users write it."""
        return self.name.replace("|", " ").upper()


def arity_ok(spec: CommandSpec, argc: int) -> bool:
    """Whether `argc` arguments (command name included) satisfy Redis's arity check."""
    return argc == spec.arity if spec.arity >= 0 else argc >= -spec.arity


class CommandTable:
    """Every command the backend knows, looked up by name in any letter case."""

    __slots__ = ("_by_name", "_specs", "redis_version")

    def __init__(self, commands: Mapping[str, Mapping[str, Any]], redis_version: str = "") -> None:
        """Build from the normalised form (`normalize`'s output, or a snapshot's `commands`)."""
        self.redis_version = redis_version
        self._specs: dict[str, CommandSpec] = {
            name.lower(): _build(name.lower(), data, "") for name, data in sorted(commands.items())
        }
        self._by_name = _index(self._specs)

    def names(self) -> list[str]:
        """Every top-level command name, lower case."""
        return list(self._specs)

    @classmethod
    def from_command_info(
        cls,
        info_reply: Sequence[Any],
        docs_reply: Sequence[Any] | Mapping[Any, Any] | None = None,
        redis_version: str = "",
    ) -> CommandTable:
        """From the plain RESP2 replies of `COMMAND INFO` and `COMMAND DOCS` (bytes and ints)."""
        return cls(normalize(info_reply, docs_reply), redis_version)

    @classmethod
    def from_snapshot(cls, path: str | PathLike[str] | None = None) -> CommandTable:
        """From a JSON snapshot; by default the one packaged for Redis 7.0."""
        if path is None:
            text = resources.files("redisgate").joinpath(*SNAPSHOT_RESOURCE).read_text()
        else:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        doc = json.loads(text)
        if doc.get("format") != SNAPSHOT_FORMAT:
            raise ValueError(f"unsupported command snapshot format: {doc.get('format')!r}")
        return cls(doc["commands"], doc.get("source", {}).get("redis_version", ""))

    # Lookups (hot path)

    def get(self, name: bytes) -> CommandSpec | None:
        """The top-level command `name` in any letter case, or None if the backend lacks it."""
        spec = self._by_name.get(name)
        if spec is None:
            spec = self._by_name.get(name.lower())
        return spec

    def resolve(self, args: Sequence[bytes]) -> CommandSpec | None:
        """The spec that governs `args`: the subcommand's for containers (CONFIG GET ...).

        A container with a missing or unknown subcommand resolves to the container itself,
        whose route says what to do (most are DENIED; Redis would reply with an error anyway).
        """
        if not args:
            return None
        spec = self.get(args[0])
        if spec is None or len(args) < 2 or not spec.subcommand_index:
            return spec
        sub = spec.subcommand_index.get(args[1])
        if sub is None:
            sub = spec.subcommand_index.get(args[1].lower())
        return spec if sub is None else sub

    # Introspection

    def __len__(self) -> int:
        return len(self._specs)

    def __iter__(self) -> Iterator[CommandSpec]:
        return iter(self._specs.values())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._specs

    def __getitem__(self, name: str) -> CommandSpec:
        """Look up by full name, `get` or `config|get`, for tests and tools."""
        top, _, sub = name.lower().partition("|")
        spec = self._specs[top]
        return spec.subcommands[sub] if sub else spec

    def walk(self) -> Iterator[CommandSpec]:
        """Every command, each followed by its subcommands."""
        for spec in self._specs.values():
            yield spec
            yield from spec.subcommands.values()

    def __repr__(self) -> str:
        version = f" redis {self.redis_version}" if self.redis_version else ""
        return f"<CommandTable [{len(self._specs)} commands{version}]>"


def _index(specs: Mapping[str, CommandSpec]) -> dict[bytes, CommandSpec]:
    """Lower- and upper-case byte keys, so the usual spellings hit on the first lookup."""
    index: dict[bytes, CommandSpec] = {}
    for name, spec in specs.items():
        raw = name.encode()
        index[raw] = index[raw.upper()] = spec
    return index


def _build(name: str, data: Mapping[str, Any], container: str) -> CommandSpec:
    """A `CommandSpec` from one normalised entry; subcommands recursively."""
    flags = frozenset(data.get("flags", ()))
    group = data.get("group", "")
    subs = {
        sub_name.lower().partition("|")[2] or sub_name.lower(): _build(sub_name.lower(), sub, name)
        for sub_name, sub in sorted(data.get("subcommands", {}).items())
    }
    key_specs = tuple(_key_spec(k) for k in data.get("key_specs", ()))
    return CommandSpec(
        name=name,
        arity=int(data.get("arity", 0)),
        flags=flags,
        acl_categories=frozenset(c.lstrip("@") for c in data.get("acl_categories", ())),
        key_specs=key_specs,
        subcommands=subs,
        group=group,
        summary=data.get("summary", ""),
        decision=classify(name, flags, group),
        first_key=int(data.get("first_key", 0)),
        last_key=int(data.get("last_key", 0)),
        step=int(data.get("step", 0)),
        tips=tuple(data.get("tips", ())),
        since=data.get("since", ""),
        container=container,
        keys_interpretable=all(k.interpretable for k in key_specs),
        has_arg_rule=name in ARG_RULES,
        subcommand_index=_index(subs),
    )


def _key_spec(data: Mapping[str, Any]) -> KeySpec:
    bs, fk = data.get("begin_search", {}), data.get("find_keys", {})
    return KeySpec(
        access=KeyAccess.from_names(data.get("flags", ())),
        begin=BeginSearch(
            kind=_kind(bs.get("type"), (SearchKind.INDEX, SearchKind.KEYWORD)),
            index=int(bs.get("index", 0)),
            keyword=str(bs.get("keyword", "")).encode().lower(),
            startfrom=int(bs.get("startfrom", 0)),
        ),
        find=FindKeys(
            kind=_kind(fk.get("type"), (SearchKind.RANGE, SearchKind.KEYNUM)),
            lastkey=int(fk.get("lastkey", 0)),
            keystep=int(fk.get("keystep", 1)),
            limit=int(fk.get("limit", 0)),
            keynumidx=int(fk.get("keynumidx", 0)),
            firstkey=int(fk.get("firstkey", 0)),
        ),
        notes=data.get("notes", ""),
        is_key="not_key" not in data.get("flags", ()),
    )


def _kind(value: object, allowed: tuple[SearchKind, ...]) -> SearchKind:
    """A search type Redis may add later is UNKNOWN to us, which is what Redis means by it."""
    return next((k for k in allowed if k.value == value), SearchKind.UNKNOWN)


# --- Normalisation of raw replies ---------------------------------------------------------------


def normalize(
    info_reply: Sequence[Any], docs_reply: Sequence[Any] | Mapping[Any, Any] | None = None
) -> dict[str, dict[str, Any]]:
    """`COMMAND INFO` + `COMMAND DOCS` replies -> {name: entry}, the snapshot's `commands`.

    Takes the replies as RESP2 parses them without post-processing (nested lists of bytes and
    ints; RESP3 maps as dicts are accepted too). Unknown fields from newer servers are dropped.
    """
    docs = _docs_map(docs_reply) if docs_reply is not None else {}
    out: dict[str, dict[str, Any]] = {}
    for item in info_reply:
        if item is None:  # COMMAND INFO of a name the server does not know
            continue
        entry = _info_entry(_list(item), docs)
        out[entry.pop("name")] = entry
    return dict(sorted(out.items()))


def snapshot_document(
    commands: Mapping[str, Any], redis_version: str, generator: str
) -> dict[str, Any]:
    """The JSON document stored in `data/`: a format number, its source and the commands."""
    return {
        "format": SNAPSHOT_FORMAT,
        "source": {"redis_version": redis_version, "generator": generator},
        "commands": dict(commands),
    }


def _info_entry(item: list[Any], docs: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    name = _str(item[0]).lower()
    entry: dict[str, Any] = {
        "name": name,
        "arity": int(item[1]),
        "flags": [_str(f) for f in _list(item[2])],
        "first_key": int(item[3]),
        "last_key": int(item[4]),
        "step": int(item[5]),
        "acl_categories": [_str(c).lstrip("@") for c in _list(_at(item, 6, []))],
        "tips": [_str(t) for t in _list(_at(item, 7, []))],
        "key_specs": [_key_spec_entry(k) for k in _list(_at(item, 8, []))],
    }
    entry.update(docs.get(name, {}))
    subs = [_info_entry(_list(s), docs) for s in _list(_at(item, 9, []))]
    if subs:
        entry["subcommands"] = {s.pop("name"): s for s in sorted(subs, key=lambda s: s["name"])}
    return entry


def _key_spec_entry(raw: Any) -> dict[str, Any]:
    spec = _pairs(raw)
    entry: dict[str, Any] = {}
    if "notes" in spec:
        entry["notes"] = _str(spec["notes"])
    entry["flags"] = [_str(f) for f in _list(spec.get("flags", []))]
    for step in ("begin_search", "find_keys"):
        fields = _pairs(spec.get(step, []))
        norm: dict[str, Any] = {"type": _str(fields.get("type", b"unknown"))}
        for key, value in _pairs(fields.get("spec", [])).items():
            norm[key] = value if isinstance(value, int) else _str(value)
        entry[step] = norm
    return entry


_DOC_FIELDS = ("summary", "since", "group", "deprecated_since", "replaced_by")


def _docs_map(reply: Sequence[Any] | Mapping[Any, Any]) -> dict[str, dict[str, Any]]:
    """{full name: {summary, since, group, ...}} for commands and subcommands alike."""
    out: dict[str, dict[str, Any]] = {}
    for raw_name, raw_doc in _pairs(reply).items():
        doc = _pairs(raw_doc)
        entry: dict[str, Any] = {f: _str(doc[f]) for f in _DOC_FIELDS if f in doc}
        if doc.get("doc_flags"):
            entry["doc_flags"] = [_str(f) for f in _list(doc["doc_flags"])]
        out[raw_name.lower()] = entry
        out.update(_docs_map(doc.get("subcommands") or []))
    return out


def _pairs(raw: Any) -> dict[str, Any]:
    """A RESP2 flat [k1, v1, k2, v2...] list (or a RESP3 map) as a dict with str keys."""
    if isinstance(raw, Mapping):
        return {_str(k): v for k, v in raw.items()}
    items = _list(raw)
    return {_str(items[i]): items[i + 1] for i in range(0, len(items) - 1, 2)}


def _list(raw: Any) -> list[Any]:
    if isinstance(raw, list | tuple):
        return list(raw)
    raise ValueError(f"expected an array in the COMMAND reply, got {type(raw).__name__}")


def _str(raw: Any) -> str:
    if isinstance(raw, bytes):
        return raw.decode("utf-8", "replace")
    if isinstance(raw, str):
        return raw
    raise ValueError(f"expected a string in the COMMAND reply, got {type(raw).__name__}")


def _at(items: list[Any], i: int, default: Any) -> Any:
    """Redis 6 replies stop after 7 fields; missing ones take `default`."""
    return items[i] if i < len(items) else default


# --- Routes of invocations (the table's data applied to arguments) ------------------------


def decide(spec: CommandSpec, args: Sequence[bytes]) -> Decision:
    """The route and reason for this exact invocation of `spec`."""
    if spec.has_arg_rule:
        decision = ARG_RULES[spec.name](args)
        if decision is not None:
            return decision
    return spec.decision


def route(spec: CommandSpec, args: Sequence[bytes]) -> Route:
    """The route for this invocation: the precomputed one unless an argument rule applies."""
    if spec.has_arg_rule:
        decision = ARG_RULES[spec.name](args)
        if decision is not None:
            return decision.route
    return spec.decision.route


@functools.lru_cache(maxsize=16)  # one entry per command table: computed once, not per client
def fast_forward(table: CommandTable) -> frozenset[bytes]:
    """Names (as clients send them) of commands that always go to a shared connection.

    The common case, checked with one set lookup: no subcommands, no argument-dependent route.
    """
    names: set[bytes] = set()
    for spec in table:
        if spec.subcommands or spec.has_arg_rule or spec.route is not Route.FORWARD:
            continue
        if not spec.decision.classified or spec.name.encode() in SCRIPTING | PUBSUB:
            continue
        raw = spec.name.encode()
        names.update({raw, raw.upper()})
    return frozenset(names)
