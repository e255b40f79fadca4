// How to connect, per client library, for one instance (the key left as a placeholder).

export const PLACEHOLDER = "<API_KEY>"

export function redisUrl(instance, token = PLACEHOLDER) {
  return `redis://default:${token}@${instance.endpoint.host}:${instance.endpoint.port}/0`
}

export function snippets(instance, token = PLACEHOLDER) {
  const url = redisUrl(instance, token)
  const rest = instance.rest_url
  const list = [
    ["redis-cli", "shell", `redis-cli -u ${url}\n# then: PING, SET greeting hello, GET greeting`],
    ["redis-py", "python", `import redis  # pip install redis\n\nr = redis.Redis.from_url("${url}")\nr.set("greeting", "hello")\nprint(r.get("greeting"))`],
    ["ioredis", "javascript", `import Redis from "ioredis"; // npm install ioredis\n\nconst redis = new Redis("${url}");\nawait redis.set("greeting", "hello");\nconsole.log(await redis.get("greeting"));`],
    ["go-redis", "go", `// go get github.com/redis/go-redis/v9\nopt, err := redis.ParseURL("${url}")\nif err != nil {\n\tpanic(err)\n}\nrdb := redis.NewClient(opt)\nerr = rdb.Set(ctx, "greeting", "hello", 0).Err()\nval, err := rdb.Get(ctx, "greeting").Result()`],
    ["Jedis", "java", `// redis.clients:jedis\nimport java.net.URI;\nimport redis.clients.jedis.JedisPooled;\n\nJedisPooled jedis = new JedisPooled(URI.create("${url}"));\njedis.set("greeting", "hello");\nSystem.out.println(jedis.get("greeting"));`],
  ]
  if (rest) {
    list.push(
      ["curl (HTTP API)", "shell", `curl -H "Authorization: Bearer ${token}" \\\n  -d '["SET","greeting","hello"]' ${rest}\ncurl -H "Authorization: Bearer ${token}" ${rest}/get/greeting`],
      ["Upstash SDK (Python)", "python", `from upstash_redis import Redis  # pip install upstash-redis\n\nredis = Redis(url="${rest}", token="${token}")\nredis.set("greeting", "hello")\nprint(redis.get("greeting"))`],
      ["Upstash SDK (JavaScript)", "javascript", `import { Redis } from "@upstash/redis"; // npm install @upstash/redis\n\nconst redis = new Redis({ url: "${rest}", token: "${token}" });\nawait redis.set("greeting", "hello");\nconsole.log(await redis.get("greeting"));`],
    )
  }
  return list
}
