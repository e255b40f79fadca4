// Batches: auto-pipelining (the SDK's default: commands issued together go as one POST
// /pipeline), explicit pipelines, multi() transactions (POST /multi-exec) with a runtime error
// inside, and Redis's errors (WRONGTYPE) where each of them surfaces. Prints one JSON object.
import { client, emit, outcome } from "./common.mjs";

const redis = client();
const r = {};

// Auto-pipelining: ten commands at once are one request (reads and writes in one batch each),
// an error among them fails that command only.
await redis.set("b:str", "text");
const before = redis.pipelineCounter;
const together = await Promise.allSettled([
  redis.set("b:1", "one"),
  redis.incr("b:n"),
  redis.incr("b:n"),
  redis.get("b:1"),
  redis.hincrby("b:str", "f", 1), // WRONGTYPE
  redis.sadd("b:set", "x"),
  redis.get("b:missing"),
  redis.exists("b:1", "b:n"),
  redis.echo("hi"),
  redis.ping(),
]);
r.autoRequests = redis.pipelineCounter - before;
r.auto = together.map((s) => (s.status === "fulfilled" ? { value: s.value } : { message: s.reason.message, error: s.reason.name }));

// More than the SDK puts in one request (1000): 2001 commands at once are three requests
const many = 2001;
const bulkBefore = redis.pipelineCounter;
const bulk = await Promise.all(Array.from({ length: many }, (_, i) => redis.set(`bulk:${i}`, i)));
r.bulkRequests = redis.pipelineCounter - bulkBefore;
r.bulkAllOk = bulk.every((reply) => reply === "OK");
const back = await Promise.all(Array.from({ length: many }, (_, i) => redis.get(`bulk:${i}`)));
r.bulkReadBack = back.every((value, i) => value === i);

// A large value, with characters JSON escapes and base64 grows
const large = "x\u00e9\"\\\n\u0000".repeat(128 * 1024);
await redis.set("b:large", large);
r.largeLength = large.length;
r.largeBack = (await redis.get("b:large")) === large;

// An explicit pipeline: results in order; an error entry makes exec() throw, unless kept
const p = redis.pipeline();
p.set("b:p", 1).incr("b:p").get("b:p").lpush("b:list", "a", "b").lrange("b:list", 0, -1);
r.pipeline = await p.exec();
r.pipelineError = await outcome(redis.pipeline().incr("b:p").incr("b:str").get("b:p").exec());
r.pipelineKeepErrors = await redis
  .pipeline()
  .incr("b:p")
  .incr("b:str")
  .get("b:p")
  .exec({ keepErrors: true });
r.afterPipelineError = await redis.get("b:p");

// multi(): MULTI … EXEC; a runtime error does not undo the others (as in Redis)
r.multi = await redis.multi().set("b:m", "1").incr("b:m").get("b:m").hset("b:h", { f: "v" }).exec();
r.multiError = await outcome(redis.multi().set("b:m2", "x").incr("b:m2").set("b:m3", "y").exec());
r.multiErrorApplied = await redis.mget("b:m2", "b:m3");
r.multiKeepErrors = await redis.multi().incr("b:m").incr("b:str").exec({ keepErrors: true });

// Single commands: errors are UpstashErrors with Redis's text
r.wrongType = await outcome(redis.lpush("b:str", "x"));
r.unknownCommand = await outcome(redis.exec(["nosuchcommand", "x"]));
r.wrongArity = await outcome(redis.exec(["get"]));

emit(r);
