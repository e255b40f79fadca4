// Refusals as the SDK reports them, with single commands (POST /, a 4xx answer) and with
// auto-pipelined ones (an error entry of POST /pipeline): NOPERM from a read-only key (also
// for a transaction and a subscription), from a key without scripting and from one without
// transactions (whose commands must not run outside one either), an argument that
// cannot be one, the rate limit of a key with ops_per_second, and a bad token.
// Tokens: NODE_SDK_READER_TOKEN, NODE_SDK_NO_MULTI_TOKEN, NODE_SDK_LIMITED_TOKEN. Prints one JSON object.
import { client, described, emit, outcome } from "./common.mjs";

const r = {};
const single = { enableAutoPipelining: false };

for (const [name, options] of [["auto", {}], ["single", single]]) {
  const reader = client({ token: process.env.NODE_SDK_READER_TOKEN, ...options });
  r[`reader_${name}`] = {
    get: await outcome(reader.get("e:k")),
    set: await outcome(reader.set("e:k", "v")),
  };
  // a transaction with a command the key may not run runs none of them
  r[`readerMulti_${name}`] = await outcome(reader.multi().get("e:k").set("e:k", "v").exec());
  const main = client(options);
  // undefined is JSON null: no Redis argument
  r[`nullArg_${name}`] = await outcome(main.set("e:null", undefined));
  r[`noScripting_${name}`] = await outcome(main.eval("return 1", [], []));
}

// a key that may not run MULTI: its transaction is refused, and none of its commands runs
const noMulti = client({ token: process.env.NODE_SDK_NO_MULTI_TOKEN });
r.noMulti = await outcome(noMulti.multi().set("e:t1", "1").set("e:t2", "2").exec());

// ops_per_second 1, burst 3: of 8 commands at once (one /pipeline request) 3 run; the
// commands sent alone right after are refused too, with 429.
const limited = client({ token: process.env.NODE_SDK_LIMITED_TOKEN });
r.limitedAuto = await Promise.all(Array.from({ length: 8 }, () => outcome(limited.incr("e:n"))));
const limitedSingle = client({ token: process.env.NODE_SDK_LIMITED_TOKEN, ...single });
r.limitedSingle = await Promise.all(
  Array.from({ length: 3 }, () => outcome(limitedSingle.incr("e:n"))),
);

// a subscription the key may not make: the refusal reaches the subscriber's error listener
const readerSub = client({ token: process.env.NODE_SDK_READER_TOKEN }).subscribe(["e:chan"]);
let timer;
r.readerSubscribe = await new Promise((resolve) => {
  readerSub.on("error", (error) => resolve(described(error)));
  readerSub.on("subscribe", (count) => resolve({ subscribed: count }));
  timer = setTimeout(() => resolve("nothing within 5 s"), 5000);
});
clearTimeout(timer);
await readerSub.unsubscribe();

const bad = "rg_nosuchkeyid1_" + "x".repeat(43);
r.badToken = {
  auto: await outcome(client({ token: bad }).get("e:k")),
  single: await outcome(client({ token: bad, ...single }).get("e:k")),
};

emit(r);
