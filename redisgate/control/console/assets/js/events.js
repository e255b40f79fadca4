// Live updates: the org's server-sent event stream (GET /v1/orgs/<org>/events). EventSource
// cannot send the Authorization header and the access token lives in memory only, so the
// stream is read with fetch. An event says what changed (kind, id), never how: pages fetch
// again what they show. The stream ends with the access token; it is opened again with a
// fresh one, and after any gap pages are told to "resync" (events may have been missed). A
// stream refused on reconnection (no longer a member) is reported as "access".

import * as auth from "./auth.js"

let watching = null // {orgId, controller}
const listeners = new Set()

export function onEvent(listener) {
  listeners.add(listener)
  return () => listeners.delete(listener)
}

function emit(kind, data) {
  for (const listener of [...listeners]) {
    try {
      listener(kind, data)
    } catch (err) {
      console.warn("live update listener failed", err)
    }
  }
}

export function watch(orgId) {
  if (watching && watching.orgId === orgId) return
  stop()
  if (!orgId) return
  const state = { orgId, controller: new AbortController() }
  watching = state
  run(state)
}

export function stop() {
  if (watching) watching.controller.abort()
  watching = null
}

const sleep = (ms, signal) => new Promise((resolve) => {
  const timer = setTimeout(resolve, ms)
  signal.addEventListener("abort", () => { clearTimeout(timer); resolve() }, { once: true })
})

async function run(state) {
  const { orgId, controller } = state
  let delay = 1000
  let opened = false
  while (!controller.signal.aborted) {
    const token = auth.token()
    if (!token) return
    try {
      const response = await fetch(`/v1/orgs/${orgId}/events`, {
        headers: { Authorization: `Bearer ${token}`, Accept: "text/event-stream" },
        signal: controller.signal,
      })
      if (response.status === 401 && await auth.refresh()) continue
      if (response.status === 404 || response.status === 403) {
        // The stream ended because access did: say so once, and stop watching this org.
        if (watching === state) watching = null
        emit("access", { kind: "access", id: null, org_id: orgId })
        return
      }
      if (!response.ok) throw new Error(`events: ${response.status}`)
      if (opened) emit("resync", null)
      opened = true
      delay = 1000
      await read(response.body, controller.signal)
    } catch (err) {
      if (controller.signal.aborted) return
    }
    await sleep(delay, controller.signal)
    delay = Math.min(delay * 2, 30_000)
  }
}

async function read(body, signal) {
  const reader = body.getReader()
  const decoder = new TextDecoder()
  let buffer = ""
  while (!signal.aborted) {
    const { value, done } = await reader.read()
    if (done) return
    buffer += decoder.decode(value, { stream: true })
    let end
    while ((end = buffer.indexOf("\n\n")) !== -1) {
      const block = buffer.slice(0, end)
      buffer = buffer.slice(end + 2)
      let kind = "message"
      let data = ""
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) kind = line.slice(6).trim()
        else if (line.startsWith("data:")) data += line.slice(5).trim()
      }
      if (!data) continue // a comment (": ping")
      try {
        emit(kind, JSON.parse(data))
      } catch {
        // not an event of ours
      }
    }
  }
}
