"""The HTTP command API's language, sans-IO: request bodies and paths to arguments, RESP to the
JSON the Upstash SDKs read, pub/sub frames to server-sent events, and the script dialect."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest

from redisgate.proxy.http_api.replies import ReplyError, dumps, entry, parse, sse_event
from redisgate.proxy.http_api.requests import (
    ArgError,
    BadRequest,
    batch,
    command,
    path_command,
    path_segments,
)
from redisgate.proxy.http_api.scripts import Dialect, without_flag

# --- Requests ---------------------------------------------------------------------------------


def test_a_command_keeps_numbers_as_written_and_spells_booleans() -> None:
    body = b'["set","k",1.50,"EX",100,true,false,1e21,-0]'
    assert command(body) == [
        b"set",
        b"k",
        b"1.50",
        b"EX",
        b"100",
        b"true",
        b"false",
        b"1e21",
        b"-0",
    ]


def test_unicode_arguments_are_utf8() -> None:
    assert command('["SET","k","é☃"]'.encode()) == [b"SET", b"k", "é☃".encode()]


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"", "empty"),
        (b"  ", "empty"),
        (b"{bad", "not valid JSON"),
        (b'{"a":1}', "JSON array"),
        (b"[]", "empty command"),
        (b'["GET",null]', "unsupported arg type: null"),
        (b'["GET",["a"]]', "unsupported arg type: an array"),
        (b'["GET",{"a":1}]', "unsupported arg type: an object"),
        (b'["GET","\\ud800"]', "lone surrogate"),
        (b'["GET",NaN]', "not valid JSON"),
        (b'["GET",Infinity]', "not valid JSON"),
        (b'["GET","\xff"]', "not valid UTF-8"),
    ],
)
def test_a_bad_command_body_is_a_400_that_says_why(body: bytes, words: str) -> None:
    with pytest.raises(BadRequest, match=words) as info:
        command(body)
    assert info.value.status == 400 and str(info.value).startswith("ERR ")


def test_a_batch_refuses_one_bad_command_in_place() -> None:
    found = batch(b'[["SET","a",1],["GET",null],["GET","a"]]', 10)
    assert found[0] == [b"SET", b"a", b"1"] and found[2] == [b"GET", b"a"]
    assert isinstance(found[1], ArgError) and "null" in str(found[1])
    assert batch(b"[]", 10) == []  # the Python SDK's empty pipeline


@pytest.mark.parametrize("body", [b'["GET","a"]', b'[["GET","a"],"x"]', b'{"a":[]}'])
def test_a_batch_of_the_wrong_shape_is_refused_whole(body: bytes) -> None:
    with pytest.raises(BadRequest, match="array of commands"):
        batch(body, 10)


def test_a_batch_over_the_cap_is_413() -> None:
    with pytest.raises(BadRequest, match=r"too many commands.*3.*at most 2") as info:
        batch(b'[["PING"],["PING"],["PING"]]', 2)
    assert info.value.status == 413


def test_path_segments_split_before_decoding_and_collapse_slashes() -> None:
    assert path_segments("//pipeline") == [b"pipeline"]
    assert path_segments("/set/a%2Fb/%C3%A9?x=1") == [b"set", b"a/b", "é".encode()]
    assert path_segments("/get/x%y") == [b"get", b"x%y"]  # lenient, as fetch sends it
    assert path_segments("/") == []


def test_path_commands_append_body_then_query_without_the_token() -> None:
    query = [("EX", "100"), ("_token", "secret"), ("NX", "")]
    assert path_command([b"set", b"k"], b"\x00\xffraw", query) == [
        b"set", b"k", b"\x00\xffraw", b"EX", b"100", b"NX"
    ]  # fmt: skip
    assert path_command([b"get", b"k"], None, []) == [b"get", b"k"]


# --- Replies ----------------------------------------------------------------------------------


def b64(text: bytes) -> str:
    return base64.b64encode(text).decode()


def test_resp2_replies_as_json() -> None:
    assert parse(b"+OK\r\n") == "OK"
    assert parse(b":-7\r\n") == -7
    assert parse(b"$-1\r\n") is None and parse(b"*-1\r\n") is None
    assert parse(b"$3\r\n\xffab\r\n") == "\ufffdab"  # not UTF-8: replaced
    assert parse(b"*3\r\n$1\r\na\r\n:1\r\n*1\r\n$0\r\n\r\n") == ["a", 1, [""]]
    error = parse(b"-WRONGTYPE Operation\r\n")
    assert isinstance(error, ReplyError) and error == "WRONGTYPE Operation"


def test_base64_encodes_every_string_at_every_depth_but_a_top_level_ok() -> None:
    assert parse(b"+OK\r\n", base64=True) == "OK"
    assert parse(b"+PONG\r\n", base64=True) == b64(b"PONG")
    assert parse(b"$4\r\n\x00\xff\r\n\r\n", base64=True) == b64(b"\x00\xff\r\n")
    assert parse(b"*2\r\n+OK\r\n:5\r\n", base64=True) == [b64(b"OK"), 5]  # nested OK too
    assert parse(b"-ERR no\r\n", base64=True) == "ERR no"  # errors never


def test_nested_errors_are_text_unless_they_are_execs_replies() -> None:
    reply = b"*2\r\n-ERR inner\r\n:1\r\n"
    assert parse(reply) == ["ERR inner", 1]
    assert parse(reply, base64=True) == [b64(b"ERR inner"), 1]
    found = parse(reply, error_depth=2)
    assert isinstance(found[0], ReplyError)
    assert [entry(v) for v in found] == [{"error": "ERR inner"}, {"result": 1}]


def test_resp3_replies_are_flattened_to_resp2_shapes() -> None:
    assert parse(b"%1\r\n$1\r\nk\r\n:1\r\n") == ["k", 1]
    assert parse(b"~2\r\n:1\r\n:2\r\n") == [1, 2]
    assert parse(b",1.5\r\n") == "1.5"
    assert parse(b"#t\r\n") == 1 and parse(b"#f\r\n") == 0
    assert parse(b"_\r\n") is None
    assert parse(b"=7\r\ntxt:abc\r\n") == "abc"
    assert parse(b"|1\r\n+a\r\n+b\r\n:3\r\n") == 3  # an attribute is skipped


def test_json_is_compact_utf8() -> None:
    assert dumps({"result": "é"}) == '{"result":"é"}'.encode()
    assert json.loads(dumps([entry(ReplyError(""))])) == [{"error": "ERR"}]  # never empty


def test_pubsub_frames_become_the_sdks_event_lines() -> None:
    message = parse(b"*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$11\r\nhello,world\r\n")
    assert sse_event(message) == b"data: message,ch,hello,world\n\n"
    pattern = parse(b"*4\r\n$8\r\npmessage\r\n$2\r\nc*\r\n$2\r\nch\r\n$4\r\na\nb\r\r\n")
    assert sse_event(pattern) == b"data: pmessage,c*,ch,a\\nb\\r\n\n"  # one line, always
    assert sse_event(parse(b"*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n")) == (
        b"data: subscribe,ch,1\n\n"
    )
    assert sse_event(parse(b"+OK\r\n")) is None


# --- The script dialect -----------------------------------------------------------------------

LOCKING = b"#!lua flags=allow-key-locking\nreturn redis.call('GET', KEYS[1])"


def sha(script: bytes) -> bytes:
    return hashlib.sha1(script).hexdigest().encode()


def test_the_flag_goes_and_the_rest_stays_byte_for_byte() -> None:
    assert without_flag(LOCKING) == b"#!lua\nreturn redis.call('GET', KEYS[1])"
    both = b"#!lua name=x flags=no-writes,allow-key-locking\nreturn 1"
    assert without_flag(both) == b"#!lua name=x flags=no-writes\nreturn 1"
    plain = b"return 'allow-key-locking'"
    assert without_flag(plain) is plain
    in_body = b"#!lua\nreturn 'allow-key-locking'"
    assert without_flag(in_body) is in_body
    assert without_flag(b" #!lua flags=allow-key-locking\n") == b" #!lua flags=allow-key-locking\n"


def test_evalsha_and_script_load_keep_the_clients_sha() -> None:
    dialect = Dialect()
    sent, answer = dialect.rewrite([b"EVAL", LOCKING, b"1", b"k"])
    assert sent == [b"EVAL", without_flag(LOCKING), b"1", b"k"] and answer is None
    sent, _ = dialect.rewrite([b"evalsha", sha(LOCKING), b"1", b"k"])
    assert sent == [b"evalsha", sha(without_flag(LOCKING)), b"1", b"k"]
    sent, answer = dialect.rewrite([b"SCRIPT", b"LOAD", LOCKING])
    assert sent == [b"SCRIPT", b"LOAD", without_flag(LOCKING)] and answer == sha(LOCKING)
    sent, _ = dialect.rewrite([b"script", b"exists", sha(LOCKING), b"f" * 40])
    assert sent == [b"script", b"exists", sha(without_flag(LOCKING)), b"f" * 40]


def test_unknown_shas_and_plain_scripts_go_through_as_sent() -> None:
    dialect = Dialect()
    args = [b"EVALSHA", b"a" * 40, b"0"]
    assert dialect.rewrite(args) == (args, None)
    plain = [b"EVAL", b"return 1", b"0"]
    assert dialect.rewrite(plain) == (plain, None)
    assert dialect.rewrite([b"SCRIPT", b"LOAD", b"return 1"])[1] is None
    assert len(dialect) == 0


def test_the_map_is_bounded() -> None:
    dialect = Dialect(max_scripts=2)
    for i in range(5):
        dialect.rewrite([b"EVAL", LOCKING + b" -- %d" % i, b"0"])
    assert len(dialect) == 2
