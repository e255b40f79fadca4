// Commands on an instance from the browser, through the gateway's HTTP command API
// (docs/http.md) with a short-lived console key the control plane mints for the signed-in
// user (POST …/console-key: read-only for viewers, minutes long, audited).

import { post } from "./api.js"

const keys = new Map() // instance path -> {token, rest_url, expires}
const MARGIN_MS = 30_000

export class CommandError extends Error {}

async function consoleKey(instancePath, fresh = false) {
  const held = keys.get(instancePath)
  if (!fresh && held && held.expires - Date.now() > MARGIN_MS) return held
  const made = await post(`${instancePath}/console-key`)
  const key = { token: made.token, restUrl: made.rest_url, scopes: made.scopes, expires: new Date(made.expires_at).getTime() }
  keys.set(instancePath, key)
  return key
}

// Run one command (an array of strings); its result, or CommandError with Redis's error line.
export async function command(instancePath, args, retried = false) {
  const key = await consoleKey(instancePath, retried)
  let response
  try {
    response = await fetch(key.restUrl, {
      method: "POST",
      headers: { Authorization: `Bearer ${key.token}`, "Content-Type": "application/json" },
      body: JSON.stringify(args),
    })
  } catch {
    throw new CommandError("The gateway's HTTP command API cannot be reached from this browser.")
  }
  const data = await response.json().catch(() => null)
  if (response.status === 401 && !retried) return command(instancePath, args, true)
  if (data && "result" in data) return data.result
  throw new CommandError((data && data.error) || `the gateway answered ${response.status}`)
}

export function forget(instancePath) {
  keys.delete(instancePath)
}

// "SET 'a b' c" -> ["SET", "a b", "c"]: quotes and backslash escapes as redis-cli reads them.
export function splitArgs(line) {
  const args = []
  let current = null
  let quote = null
  for (let i = 0; i < line.length; i += 1) {
    const c = line[i]
    if (quote) {
      if (c === "\\" && quote === '"' && i + 1 < line.length) {
        const n = line[++i]
        current += { n: "\n", t: "\t", r: "\r" }[n] || n
      } else if (c === quote) {
        quote = null
      } else {
        current += c
      }
    } else if (c === '"' || c === "'") {
      quote = c
      if (current === null) current = ""
    } else if (/\s/.test(c)) {
      if (current !== null) { args.push(current); current = null }
    } else {
      current = (current || "") + c
    }
  }
  if (quote) throw new CommandError("Unbalanced quotes.")
  if (current !== null) args.push(current)
  return args
}

// A reply as redis-cli prints it.
export function formatReply(value, indent = "") {
  if (value === null) return "(nil)"
  if (typeof value === "number") return `(integer) ${value}`
  if (Array.isArray(value)) {
    if (!value.length) return "(empty array)"
    const width = String(value.length).length
    return value.map((v, i) => {
      const head = `${String(i + 1).padStart(width)}) `
      const body = formatReply(v, indent + " ".repeat(head.length))
      return (i === 0 ? "" : indent) + head + body
    }).join("\n")
  }
  if (value === "OK" || value === "PONG" || value === "QUEUED") return value
  return JSON.stringify(String(value))
}
