// A key revoked while in use, steered by the test through stdin: the key works (commands, and
// a subscription held open) and the script prints {"ready": …}; the test removes the key from
// the keys file and, once the gateway has reloaded it, sends "go"; the very next requests, on
// the same kept-alive connections, are refused. Prints {"after": …}.
import { client, emit, outcome, sleep, stdinLines } from "./common.mjs";

const next = stdinLines();
const auto = client();
const single = client({ enableAutoPipelining: false });
const sub = auto.subscribe(["revoked-chat"]);
const subscribed = [];
sub.on("subscribe", (count) => subscribed.push(count));
sub.on("error", (error) => subscribed.push(String(error)));

const before = {
  auto: await outcome(auto.set("r:k", "v")),
  single: await outcome(single.get("r:k")),
};
for (let waited = 0; subscribed.length === 0 && waited < 5000; waited += 10) await sleep(10);
emit({ ready: { before, subscribed } });
while ((await next()) !== "go");
const after = {
  auto: await outcome(auto.get("r:k")),
  single: await outcome(single.get("r:k")),
  pipeline: await outcome(auto.pipeline().get("r:k").incr("r:n").exec()),
  publish: await outcome(auto.exec(["publish", "revoked-chat", "x"])),
};
emit({ after });
await sub.unsubscribe();
process.exit(0);
