"""The scope language: parsing, errors with positions, rule order, canonical form, presets."""

from __future__ import annotations

import pytest

from redisgate.scopes import (
    CATEGORIES,
    KEYSPACE_WIDE,
    PRESETS,
    READ,
    WHOLE_INSTANCE,
    WRITE,
    Scope,
    ScopeError,
    compile_scope,
    known_commands,
    parse_scope,
    prefix_scope,
    preset_scope,
)


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("", "-@all resetkeys resetchannels"),
        ("+@read ~app:*", "+@read ~app:* resetchannels"),
        ("+@READ ~App:*", "+@read ~App:* resetchannels"),  # names fold, patterns do not
        ("allcommands allkeys allchannels", "+@all ~* &*"),
        ("+@all ~* &*", "+@all ~* &*"),
        ("nocommands", "-@all resetkeys resetchannels"),
        ("+get -@all +set", "+set resetkeys resetchannels"),  # -@all overrides what came before
        ("-debug +@all", "+@all resetkeys resetchannels"),
        ("+@all -debug", "+@all -debug resetkeys resetchannels"),
        ("+get +get -get +get", "+get resetkeys resetchannels"),
        ("+config|get -config", "-config resetkeys resetchannels"),
        ("-config +config|get", "-config +config|get resetkeys resetchannels"),
        ("%R~a:* %W~a:*", "-@all ~a:* resetchannels"),  # same pattern: permissions merge
        ("%R~a:* %W~b:* %RW~c", "-@all %R~a:* %W~b:* ~c resetchannels"),
        ("%wr~x", "-@all ~x resetchannels"),
        ("~a resetkeys ~b", "-@all ~b resetchannels"),
        ("~a allkeys", "-@all ~* resetchannels"),
        ("allkeys resetkeys %R~*", "-@all %R~* resetchannels"),  # %R~* is a pattern, not allkeys
        ("%RW~*", "-@all %RW~* resetchannels"),  # a pattern too (the empty key does not match)
        ("%R~* %W~*", "-@all %RW~* resetchannels"),
        ("&a allchannels", "-@all resetkeys &*"),
        ("&news.* &b resetchannels &c", "-@all resetkeys &c"),
        ("  +get\t~k  ", "+get ~k resetchannels"),
    ],
)
def test_canonical_form(text: str, canonical: str) -> None:
    scope = parse_scope(text)
    assert scope.canonical == canonical == str(scope)
    assert parse_scope(canonical) == scope  # the canonical form parses back to the same scope


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("+@nonsense", "unknown category '@nonsense' at 1"),
        ("+get +@nonsense", "unknown category '@nonsense' at 6"),
        ("+@read +nosuch", "unknown command 'nosuch' in '+nosuch' at 8"),
        ("+get|x", "'get' has no subcommands (in '+get|x') at 1"),
        ("-config|nope", "unknown subcommand 'config|nope' at 1"),
        ("~a  %X~b", "invalid key permission '%X~' in '%X~b': use %R~, %W~ or %RW~ at 5"),
        ("%R", "invalid key rule '%R': use ~, %R~, %W~ or %RW~ at 1"),
        ("%~a", "invalid key rule '%~a': use ~, %R~, %W~ or %RW~ at 1"),
        ("allkeys ~x", "'~x' after allkeys (or ~*) has no effect: put resetkeys before it at 9"),
        ("~* %R~x", "'%R~x' after allkeys (or ~*) has no effect: put resetkeys before it at 4"),
        (
            "&* &x",
            "'&x' after allchannels (or &*) has no effect: put resetchannels before it at 4",
        ),
        ("on", "'on' sets up a Redis user, it is not a scope rule at 1"),
        ("+@all >secret", "'>secret' sets up a Redis user, it is not a scope rule at 7"),
        ("(+get ~x)", "'(+get' sets up a Redis user, it is not a scope rule at 1"),
        ("bogus", "unknown rule 'bogus' at 1"),
    ],
)
def test_invalid_scopes_name_the_rule_and_its_column(text: str, message: str) -> None:
    with pytest.raises(ScopeError) as info:
        parse_scope(text)
    assert str(info.value) == message
    assert info.value.position == int(message.rsplit(" ", 1)[1])


def test_limits() -> None:
    with pytest.raises(ScopeError, match="longer than"):
        parse_scope("+get " * 2000)
    with pytest.raises(ScopeError, match="more than 256 patterns"):
        parse_scope(" ".join(f"~k{i}" for i in range(257)))


def allowed(text: str, name: str, container: str = "", *categories: str) -> bool:
    return parse_scope(text).command_allowed(name, container, categories)


@pytest.mark.parametrize(
    ("text", "command", "expected"),
    [
        ("", ("get", "", "read", "string"), False),
        ("+@all", ("debug", "", "admin"), True),
        ("+@all -debug", ("debug", "", "admin"), False),
        ("-debug +@all", ("debug", "", "admin"), True),
        ("+@read", ("get", "", "read", "string", "fast"), True),
        ("+@read", ("set", "", "write", "string"), False),
        ("+@read -get", ("get", "", "read"), False),
        ("-get +@read", ("get", "", "read"), True),
        ("+@all -@dangerous +keys", ("keys", "", "keyspace", "read", "dangerous"), True),
        ("+@all -@dangerous", ("keys", "", "keyspace", "read", "dangerous"), False),
        ("+config", ("config|get", "config", "admin"), True),  # a container grants its subs
        ("+config|get", ("config|get", "config", "admin"), True),
        ("+config|get", ("config|set", "config", "admin"), False),
        ("+@all -config|set", ("config|get", "config", "admin"), True),
        ("+@all -config|set", ("config|set", "config", "admin"), False),
        ("+@admin -config", ("config|set", "config", "admin"), False),
        ("-config +@admin", ("config|set", "config", "admin"), True),
    ],
)
def test_rule_order(text: str, command: tuple[str, ...], expected: bool) -> None:
    assert allowed(text, *command) is expected


@pytest.mark.parametrize(
    ("text", "key", "perms", "expected"),
    [
        ("~app:*", b"app:1", READ, True),
        ("~app:*", b"app:1", READ | WRITE, True),
        ("~app:*", b"other:1", READ, False),
        ("%R~app:*", b"app:1", READ, True),
        ("%R~app:*", b"app:1", WRITE, False),
        ("%R~app:*", b"app:1", READ | WRITE, False),
        ("%R~app:* %W~app:*", b"app:1", READ | WRITE, True),  # merged into one RW pattern
        ("%R~a* %W~ab*", b"abc", READ | WRITE, False),  # no single pattern grants both
        ("%W~app:*", b"app:1", 0, True),  # a key spec asking neither: any match will do
        ("resetkeys", b"x", 0, False),
        ("allkeys", b"anything", READ | WRITE, True),
        ("~user:?", b"user:1", READ, True),
        ("~user:?", b"user:10", READ, False),
        ("~[ab]:*", b"b:1", READ, True),
        ("~a\\*", b"a*", READ, True),
        ("~a\\*", b"ab", READ, False),
    ],
)
def test_keys(text: str, key: bytes, perms: int, expected: bool) -> None:
    assert parse_scope(text).key_allowed(key, perms) is expected


def test_channels() -> None:
    scope = parse_scope("&news.* &sport")
    assert scope.channel_allowed(b"news.uk") and scope.channel_allowed(b"sport")
    assert not scope.channel_allowed(b"weather")
    # PSUBSCRIBE: the pattern must be literally allowed, as in Redis
    assert scope.channel_pattern_allowed(b"news.*")
    assert not scope.channel_pattern_allowed(b"news.u*")
    assert not scope.channel_pattern_allowed(b"*")
    everything = parse_scope("allchannels")
    assert everything.channel_allowed(b"x") and everything.channel_pattern_allowed(b"*")
    nothing = parse_scope("")
    assert not nothing.channel_allowed(b"x") and not nothing.channel_pattern_allowed(b"x")


def test_describe_is_getuser_like() -> None:
    assert parse_scope("+@read %R~a:* &n.*").describe() == {
        "commands": "+@read",
        "keys": "%R~a:*",
        "channels": "&n.*",
    }


def test_compile_scope_shares_one_object_per_text() -> None:
    assert compile_scope("+@read ~x") is compile_scope("+@read ~x")
    assert hash(compile_scope("+@read ~x")) == hash(parse_scope("+@read ~x"))
    assert isinstance(compile_scope("+@read ~x"), Scope)


def test_custom_command_table_for_validation() -> None:
    commands = {"get": frozenset(), "newcmd": frozenset({"sub"})}
    assert parse_scope("+newcmd|sub", commands=commands).canonical.startswith("+newcmd|sub")
    with pytest.raises(ScopeError, match="unknown command 'set'"):
        parse_scope("+set", commands=commands)


def test_known_commands_come_from_the_snapshot() -> None:
    known = known_commands()
    assert "get" in known and "getkeys" in known["command"]
    assert known["get"] == frozenset()


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_parse_and_are_canonical_stable(name: str) -> None:
    scope = parse_scope(preset_scope(name))
    assert parse_scope(scope.canonical) == scope


def test_full_preset() -> None:
    full = parse_scope(PRESETS["full"])
    assert full.allkeys and full.allchannels
    assert full.command_allowed("get", "", ["read", "string", "fast"])
    assert not full.command_allowed("eval", "", ["scripting", "slow"])  # opt-in
    assert full.command_allowed("flushdb", "", ["keyspace", "write", "slow", "dangerous"])
    assert not full.command_allowed("config|set", "config", ["admin", "slow", "dangerous"])
    assert not full.command_allowed("debug", "", ["admin", "slow", "dangerous"])


def test_write_only_preset_needs_no_read_permission() -> None:
    scope = parse_scope(PRESETS["write-only"])
    assert scope.key_allowed(b"k", WRITE) and not scope.key_allowed(b"k", READ)


def test_unknown_preset() -> None:
    with pytest.raises(ValueError, match="choose one of full, pubsub-only, read-only"):
        preset_scope("admin")


def test_prefix_helper() -> None:
    scope = parse_scope(prefix_scope("app:"))
    assert not scope.allkeys and scope.key_allowed(b"app:1", READ | WRITE)
    assert not scope.key_allowed(b"other", READ)
    assert scope.allchannels  # the prefix limits keys; channels are the preset's
    # glob characters in the prefix are literal
    odd = parse_scope(prefix_scope("a*[b]"))
    assert odd.key_allowed(b"a*[b]x", READ) and not odd.key_allowed(b"aZbx", READ)
    # write-only stays write-only under a prefix
    wo = parse_scope(prefix_scope("app:", "write-only"))
    assert wo.key_allowed(b"app:1", WRITE) and not wo.key_allowed(b"app:1", READ)
    with pytest.raises(ValueError, match="no key access"):
        prefix_scope("app:", "pubsub-only")
    with pytest.raises(ValueError, match="without spaces"):
        prefix_scope("a b")


def test_categories_match_the_command_table() -> None:
    """Every category the packaged Redis table uses is one we accept, and nothing more."""
    from redisgate.proxy.commands.table import CommandTable

    used = {c for spec in CommandTable.from_snapshot().walk() for c in spec.acl_categories}
    assert used == CATEGORIES


def test_keyspace_wide_and_whole_instance_commands_exist() -> None:
    names = {f"{c}|{sub}" for c, subs in known_commands().items() for sub in subs}
    names |= set(known_commands())
    assert names >= KEYSPACE_WIDE
    assert names >= set(WHOLE_INSTANCE)
