// redis.subscribe() and redis.psubscribe() (server-sent events), steered by the test through
// stdin: once both are confirmed it prints {"ready": …}; the test publishes over RESP; once
// NODE_SDK_EXPECT messages came (or 5 s passed) it prints them and unsubscribes, which aborts
// the streams' requests, the only ending the SDK has; then it waits, alive, for "exit" while
// the test checks that the gateway let go of the subscriptions.
import { client, emit, sleep, stdinLines } from "./common.mjs";

const redis = client();
const next = stdinLines();
const expected = Number(process.env.NODE_SDK_EXPECT);
const events = { subscribe: [], psubscribe: [], message: [], pmessage: [], error: [] };

// one stream per channel; the names go into the URL as they are (Node escapes the space and é)
const sub = redis.subscribe(["chat", "caf\u00e9 room", "50%off"]);
const psub = redis.psubscribe(["news.*"]);
for (const [subscriber, kinds] of [[sub, ["subscribe", "message"]], [psub, ["psubscribe", "pmessage"]]]) {
  for (const kind of kinds) subscriber.on(kind, (event) => events[kind].push(event));
  subscriber.on("error", (error) => events.error.push(String(error)));
}

async function until(condition) {
  for (let waited = 0; !condition() && waited < 5000; waited += 10) await sleep(10);
}

await until(() => events.subscribe.length + events.psubscribe.length === 4);
emit({ ready: { subscribe: events.subscribe, psubscribe: events.psubscribe } });
await until(() => events.message.length + events.pmessage.length >= expected);
await sleep(100); // anything more that would come
emit({ message: events.message, pmessage: events.pmessage, error: events.error });
await sub.unsubscribe();
await psub.unsubscribe();
emit({ unsubscribed: true });
while ((await next()) !== "exit");
process.exit(0);
