// @upstash/ratelimit through the gateway: fixedWindow, slidingWindow and tokenBucket, each
// allowing 3 of 4 calls. Its scripts start with `#!lua flags=allow-key-locking` and go as
// EVALSHA of hard-coded SHA-1s, then EVAL on NOSCRIPT, all auto-pipelined. The key's scope
// allows scripting on NODE_SDK_PREFIX* only, the limiters' prefix. resetUsedTokens runs SCAN
// inside Lua, which such a key may not (SCAN reaches every key): it is tried with it, then
// with NODE_SDK_RESET_TOKEN, a key with allkeys. Prints one JSON object.
import { Ratelimit } from "@upstash/ratelimit";
import { client, emit, outcome } from "./common.mjs";

const redis = client();
const resetter = client({ token: process.env.NODE_SDK_RESET_TOKEN });
const prefix = process.env.NODE_SDK_PREFIX;
// windows far longer than the script runs: none ends (or refills) between its calls
const limiters = {
  fixedWindow: Ratelimit.fixedWindow(3, "1000 s"),
  slidingWindow: Ratelimit.slidingWindow(3, "1000 s"),
  tokenBucket: Ratelimit.tokenBucket(1, "1000 s", 3),
};
const r = {};
for (const [name, limiter] of Object.entries(limiters)) {
  // no ephemeral cache: every call asks Redis (the cache would block the 4th call itself)
  const ratelimit = new Ratelimit({ redis, limiter, prefix: `${prefix}${name}`, ephemeralCache: false });
  const calls = [];
  for (let i = 0; i < 4; i++) {
    const { success, limit, remaining, reason } = await ratelimit.limit("user");
    calls.push({ success, limit, remaining, reason: reason ?? null });
  }
  const other = await ratelimit.limit("other-user");
  const remaining = await ratelimit.getRemaining("user");
  const resetRefused = await outcome(ratelimit.resetUsedTokens("user"));
  const stillLimited = (await ratelimit.limit("user")).success;
  const options = { redis: resetter, limiter, prefix: `${prefix}${name}`, ephemeralCache: false };
  await new Ratelimit(options).resetUsedTokens("user");
  const afterReset = await ratelimit.limit("user");
  r[name] = {
    calls,
    otherUser: other.success,
    remaining: remaining.remaining,
    resetRefused,
    stillLimited,
    afterReset: { success: afterReset.success, remaining: afterReset.remaining },
  };
}
emit(r);
