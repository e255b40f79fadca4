// What every script of tests/integration/proxy/test_http_node_sdk.py shares: a client of the
// gateway from the environment, results printed as one JSON line each, and, for the scripts
// the test steers, lines read from stdin.
//
// Environment: UPSTASH_REDIS_REST_URL and UPSTASH_REDIS_REST_TOKEN (as Redis.fromEnv() reads
// them); NODE_SDK_ENCODING=off turns the SDK's `Upstash-Encoding: base64` off and
// NODE_SDK_AUTO_PIPELINE=off its auto-pipelining (both on by default, as in the SDK).
import { createInterface } from "node:readline";
import { Redis } from "@upstash/redis";

const on = (name) => process.env[name] !== "off";

/** A client of the gateway with the SDK's defaults, but for what the environment turns off
 * and retries: the SDK retries a request whose connection failed, which would hide a gateway
 * that drops connections. */
export function client(options = {}) {
  return new Redis({
    url: process.env.UPSTASH_REDIS_REST_URL,
    token: process.env.UPSTASH_REDIS_REST_TOKEN,
    responseEncoding: on("NODE_SDK_ENCODING") ? "base64" : false,
    enableAutoPipelining: on("NODE_SDK_AUTO_PIPELINE"),
    retry: { retries: 0 },
    ...options,
  });
}

/** Print one result line for the test to read. */
export function emit(value) {
  process.stdout.write(JSON.stringify(value) + "\n");
}

/** What an error looks like to the test: its class name and message. */
export function described(error) {
  return { error: error?.name ?? typeof error, message: String(error?.message ?? error) };
}

/** A promise's outcome, never rejected: { value } or the error `described`. */
export async function outcome(promise) {
  try {
    return { value: await promise };
  } catch (error) {
    return described(error);
  }
}

/** The next lines of stdin, one at a time (the test steers the script through them). */
export function stdinLines() {
  const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
  return async () => {
    const { value, done } = await lines.next();
    return done ? null : value;
  };
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
