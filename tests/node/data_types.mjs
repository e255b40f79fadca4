// Strings, hashes, lists, sets, sorted sets and JSON values through the SDK's own methods,
// with its automatic (de)serialization; then values the test wrote over RESP (NUL bytes,
// bytes that are not UTF-8) read back. Prints one JSON object: each check's result by name.
import { client, emit } from "./common.mjs";

const redis = client();
const r = {};

// Strings
r.set = await redis.set("s:str", "hello");
r.get = await redis.get("s:str");
r.setNx = await redis.set("s:str", "other", { nx: true });
r.setGet = await redis.set("s:str", "world", { get: true });
r.append = await redis.append("s:str", "!");
r.strlen = await redis.strlen("s:str");
r.getrange = await redis.getrange("s:str", 0, 2);
r.setEx = await redis.set("s:ttl", "v", { ex: 100 });
r.ttl = await redis.ttl("s:ttl");
r.incr = await redis.incr("s:n");
r.incrby = await redis.incrby("s:n", 41);
r.incrbyfloat = await redis.incrbyfloat("s:f", 1.5);
r.decr = await redis.decr("s:n");
r.mset = await redis.mset({ "s:m1": "a", "s:m2": "b" });
r.mget = await redis.mget("s:m1", "s:m2", "s:missing");
r.getMissing = await redis.get("s:missing");
r.getdel = await redis.getdel("s:m1");
r.exists = await redis.exists("s:m1", "s:m2", "s:str");
r.del = await redis.del("s:m2", "s:missing");
r.type = await redis.type("s:str");
r.utf8 = await redis.set("s:utf8", "nul\u0000 é 😀");
r.utf8Back = await redis.get("s:utf8");
r.leadingZero = await redis.set("s:zero", "0123");
r.leadingZeroBack = await redis.get("s:zero");
r.empty = (await redis.set("s:empty", ""), await redis.get("s:empty"));
r.okValue = (await redis.set("s:ok", "OK"), await redis.get("s:ok")); // a bulk OK, not +OK
r.expire = await redis.expire("s:str", 50);
r.pttl = (await redis.pttl("s:str")) > 49000;
r.persist = await redis.persist("s:str");
r.ttlPersisted = await redis.ttl("s:str");

// Hashes
r.hset = await redis.hset("h", { name: "ada", age: 36, tags: ["x", "y"] });
r.hget = await redis.hget("h", "name");
r.hgetNumber = await redis.hget("h", "age");
r.hgetJson = await redis.hget("h", "tags");
r.hgetall = await redis.hgetall("h");
r.hmget = await redis.hmget("h", "name", "nope");
r.hincrby = await redis.hincrby("h", "age", 1);
r.hexists = await redis.hexists("h", "name");
r.hlen = await redis.hlen("h");
r.hkeys = (await redis.hkeys("h")).sort();
r.hdel = await redis.hdel("h", "tags", "nope");
r.hgetallMissing = await redis.hgetall("h:missing");

// Lists ("OK" inside an array is base64 like any other string there)
r.rpush = await redis.rpush("l", "b", "c", "OK");
r.lpush = await redis.lpush("l", "a");
r.lrange = await redis.lrange("l", 0, -1);
r.llen = await redis.llen("l");
r.lindex = await redis.lindex("l", -1);
r.lpop = await redis.lpop("l");
r.rpopCount = await redis.rpop("l", 2);
r.lrangeAfter = await redis.lrange("l", 0, -1);

// Sets
r.sadd = await redis.sadd("set", "a", "b", "c");
r.saddAgain = await redis.sadd("set", "c", "d");
r.smembers = (await redis.smembers("set")).sort();
r.sismember = await redis.sismember("set", "a");
r.smismember = await redis.smismember("set", ["a", "z"]);
r.scard = await redis.scard("set");
r.srem = await redis.srem("set", "a", "z");
r.sinter = (await redis.sinter("set", "set")).sort();

// Sorted sets
r.zadd = await redis.zadd("z", { score: 1, member: "one" }, { score: 2.5, member: "two" });
r.zaddMore = await redis.zadd("z", { score: 3, member: "three" });
r.zrange = await redis.zrange("z", 0, -1);
r.zrangeWithScores = await redis.zrange("z", 0, -1, { withScores: true });
r.zrangeRev = await redis.zrange("z", 0, 1, { rev: true });
r.zscore = await redis.zscore("z", "two");
r.zincrby = await redis.zincrby("z", 10, "one");
r.zrank = await redis.zrank("z", "one");
r.zcard = await redis.zcard("z");
r.zrem = await redis.zrem("z", "three");
r.zrangeByScore = await redis.zrange("z", 0, 100, { byScore: true });

// Streams (entries as the SDK shapes them)
const id1 = await redis.xadd("x", "1-1", { a: "1", b: "two" });
const id2 = await redis.xadd("x", "*", { c: { d: true } });
r.xadd = [id1, typeof id2];
r.xlen = await redis.xlen("x");
r.xrange = await redis.xrange("x", "-", "1-1");

// The keyspace: SCAN and KEYS
const [cursor, scanned] = await redis.scan(0, { match: "s:[ez]*", count: 1000 });
r.scan = [cursor, scanned.sort()];
r.keys = (await redis.keys("s:[mz]*")).sort();
r.hscan = await redis.hscan("h", 0, { match: "na*" });

// JSON values: objects, arrays, numbers and booleans are serialized by the SDK, and parsed
// again when read
const doc = { name: "ada", langs: ["en", "fr"], nested: { n: 1, ok: true, none: null } };
r.jsonSet = await redis.set("j:doc", doc);
r.jsonGet = await redis.get("j:doc");
r.jsonArray = (await redis.set("j:arr", [1, "two", false]), await redis.get("j:arr"));
r.jsonNumber = (await redis.set("j:num", 42), await redis.get("j:num"));
r.jsonFloat = (await redis.set("j:float", 1.25), await redis.get("j:float"));
r.jsonBool = (await redis.set("j:bool", true), await redis.get("j:bool"));
r.jsonMget = await redis.mget("j:doc", "j:num", "j:missing");
r.jsonNumberType = typeof r.jsonNumber;

// Written by the test over RESP (redis-py): bytes the JSON text cannot hold as they are
const raw = await redis.mget("bin:nul", "bin:invalid", "bin:utf8", "bin:b64");
r.binary = {
  get: await Promise.all(["bin:nul", "bin:invalid", "bin:utf8", "bin:b64"].map((k) => redis.get(k))),
  mget: raw,
  hgetall: await redis.hgetall("bin:hash"),
  lrange: await redis.lrange("bin:list", 0, -1),
};

emit(r);
