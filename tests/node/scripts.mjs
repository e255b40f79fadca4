// Lua scripts with a key whose scope allows scripting: redis.eval, and createScript, whose
// exec() tries EVALSHA and falls back to EVAL on NOSCRIPT; also scripts with Upstash's
// `#!lua flags=allow-key-locking` shebang, which the gateway takes out (Redis refuses it) while
// SCRIPT LOAD and EVALSHA keep working with the SHA-1 the client computed. NODE_SDK_NONCE
// makes the scripts new to Redis. Prints one JSON object.
import { client, emit, outcome } from "./common.mjs";

const redis = client();
const nonce = process.env.NODE_SDK_NONCE;
const r = {};

r.eval = await redis.eval("return {KEYS[1], ARGV[1], tonumber(ARGV[2]) + 1}", ["sc:k"], ["a", 41]);
r.evalWrites = await redis.eval(
  "redis.call('SET', KEYS[1], ARGV[1]); return redis.call('GET', KEYS[1])",
  ["sc:w"],
  ["v"],
);
r.evalNested = await redis.eval(
  "return {1, 'a', {redis.call('SET', KEYS[1], '1'), false}, redis.pcall('INCR', KEYS[2])}",
  ["sc:z", "sc:w"],
  [],
);
r.evalError = await outcome(redis.eval("return redis.call('INCR', KEYS[1])", ["sc:w"], []));
r.evalFlagged = await redis.eval("#!lua flags=allow-key-locking\nreturn ARGV[1]", [], ["flagged"]);

const plain = redis.createScript(`-- ${nonce}\nreturn ARGV[1] .. KEYS[1]`);
r.plain = [await plain.exec(["k"], ["x"]), await plain.exec(["k"], ["y"])];
const flaggedSource = `#!lua flags=allow-key-locking,no-writes\n-- ${nonce}\nreturn redis.call('GET', KEYS[1])`;
const flagged = redis.createScript(flaggedSource);
await redis.set("sc:cnt", 7);
r.flagged = [];
for (let i = 0; i < 3; i++) r.flagged.push(await flagged.exec(["sc:cnt"], []));
r.flaggedSource = flaggedSource;
r.flaggedSha = flagged.sha1;
r.scriptLoad = await redis.scriptLoad(flaggedSource);
r.scriptExists = await redis.scriptExists(flagged.sha1, plain.sha1, "0".repeat(40));
r.evalshaUnknown = await outcome(redis.evalsha("0".repeat(40), [], []));

emit(r);
