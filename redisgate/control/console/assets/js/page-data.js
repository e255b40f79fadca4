// An instance's data: browse keys with SCAN and a pattern, view and edit strings, hashes,
// lists, sets, sorted sets and streams with their TTL, and a command line with history.
// Every command goes through the gateway's HTTP command API with a console key.

import { confirmDialog } from "./dialog.js"
import { h, append, clear, skeleton } from "./dom.js"
import { describe } from "./errors.js"
import { field } from "./forms.js"
import { instanceHead, instancePath, loadInstance } from "./page-instance.js"
import { CommandError, command, formatReply, splitArgs } from "./rest.js"
import { toast } from "./toast.js"

const PAGE = 100
const SHOW = 200 // elements of a list, set, hash … shown at once
const history = []

function problem(err) {
  return err instanceof CommandError ? err.message : describe(err)
}

export async function data(ctx) {
  ctx.title("Data")
  const instance = await loadInstance(ctx)
  ctx.title(`${instance.name}: data`)
  append(ctx.main, instanceHead(ctx, instance, "data"))
  if (instance.status !== "running") {
    append(ctx.main, h("p", { class: "note" }, "The data browser opens once the instance is running."))
    return
  }
  const path = instancePath(ctx)
  const writer = ctx.can("keys.manage")
  const run = (...args) => command(path, args.map(String))
  const view = h("section", { class: "card", "aria-labelledby": "value-title", "aria-live": "polite" },
    h("h2", { id: "value-title" }, "Selected key"), h("p", { class: "hint" }, "Choose a key to see its value."))
  append(ctx.main, h("p", { class: "hint" }, writer
    ? "Commands run as you, through the gateway, with a key that lasts a few minutes (no scripts or admin commands)."
    : "Your role can read the data, not change it."),
  h("div", { class: "data-grid" }, browser(ctx, run, view, writer), view), cli(path))
}

function browser(ctx, run, view, writer) {
  const pattern = field({ name: "pattern", label: "Keys matching", value: "*", hint: "A glob pattern, as SCAN MATCH takes it: user:*, cache:?, *" })
  const list = h("ul", { class: "keylist", "aria-label": "Keys" })
  const status = h("p", { class: "hint", role: "status" })
  const more = h("button", { type: "button", hidden: true }, "More keys")
  let cursor = "0"
  let found = 0
  let scans = 0 // a fresh scan makes the answers of any earlier one stale
  const scan = async (fresh) => {
    if (fresh) { cursor = "0"; found = 0; list.replaceChildren(); scans += 1 }
    const mine = scans
    try {
      let rounds = 0
      do {
        const [next, keys] = await run("SCAN", cursor, "MATCH", pattern.input.value || "*", "COUNT", PAGE)
        if (mine !== scans) return
        cursor = next
        for (const key of keys) {
          found += 1
          list.append(h("li", {}, h("button", { type: "button", class: "linkish", onclick: () => show(run, view, key, writer, () => scan(true)) }, key)))
        }
        rounds += 1
      } while (cursor !== "0" && found < PAGE && rounds < 20)
      more.hidden = cursor === "0"
      status.textContent = found ? `${found} key${found === 1 ? "" : "s"}${cursor !== "0" ? " so far" : ""}.` : "No keys match."
    } catch (err) {
      if (mine === scans) status.textContent = problem(err)
    }
  }
  const form = h("form", { class: "stack", role: "search", "aria-label": "Find keys" }, pattern.wrap,
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Scan"),
      writer ? h("button", { type: "button", onclick: () => newKey(run, view, writer, () => scan(true)) }, "New string key") : null))
  form.addEventListener("submit", (event) => { event.preventDefault(); scan(true) })
  more.addEventListener("click", () => scan(false))
  scan(true)
  return h("section", { class: "card", "aria-labelledby": "browse-title" }, h("h2", { id: "browse-title" }, "Browse"), form, status, list, more)
}

async function show(run, view, key, writer, rescan) {
  const title = view.querySelector("h2")
  clear(view, title, skeleton(3))
  try {
    const [type, ttl] = await Promise.all([run("TYPE", key), run("TTL", key)])
    if (type === "none") {
      clear(view, title, h("p", { class: "note" }, `${key} no longer exists.`))
      return
    }
    const body = await valueOf(run, key, type)
    const head = h("dl", { class: "details" },
      h("dt", {}, "Key"), h("dd", {}, h("code", { "data-key-name": "" }, key)),
      h("dt", {}, "Type"), h("dd", {}, type),
      h("dt", {}, "TTL"), h("dd", {}, ttl < 0 ? "none (persists)" : `${ttl} s`))
    const actions = writer ? keyActions(run, view, key, type, ttl, writer, rescan) : null
    clear(view, title, head, body(writer, () => show(run, view, key, writer, rescan)), actions)
  } catch (err) {
    clear(view, title, h("p", { class: "alert", role: "alert" }, problem(err)))
  }
}

// What a type looks like, and (for writers) how to change it.
async function valueOf(run, key, type) {
  const rows = (pairs, headings) => h("table", { class: "list" },
    h("thead", {}, h("tr", {}, headings.map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, pairs.map((cells) => h("tr", {}, cells.map((c, i) => h("td", { "data-label": headings[i], class: "wrap" }, c))))))
  const pairsOf = (flat) => Array.from({ length: flat.length / 2 }, (_, i) => [flat[2 * i], flat[2 * i + 1]])
  const adder = (labels, args, reload) => {
    const inputs = labels.map((l) => field({ name: l.toLowerCase(), label: l }))
    const form = h("form", { class: "actions" }, inputs.map((f) => f.wrap), h("button", { type: "submit" }, "Add"))
    form.addEventListener("submit", async (event) => {
      event.preventDefault()
      try {
        await run(...args(inputs.map((f) => f.input.value)))
        toast("Added.")
        reload()
      } catch (err) {
        toast(problem(err), "error")
      }
    })
    return form
  }
  if (type === "string") {
    const value = await run("GET", key)
    return (writer, reload) => {
      const area = field({ name: "value", label: "Value", control: "textarea", readonly: !writer })
      area.input.value = value
      if (!writer) return area.wrap
      const save = h("button", { type: "button", class: "primary" }, "Save value")
      save.addEventListener("click", async () => {
        try {
          await run("SET", key, area.input.value, "KEEPTTL")
          toast(`Saved ${key}.`)
          reload()
        } catch (err) {
          toast(problem(err), "error")
        }
      })
      return h("div", { class: "stack" }, area.wrap, h("div", { class: "actions" }, save))
    }
  }
  if (type === "hash") {
    const [, flat] = await run("HSCAN", key, "0", "COUNT", SHOW)
    return (writer, reload) => h("div", {}, rows(pairsOf(flat), ["Field", "Value"]),
      writer ? adder(["Field", "Value"], ([f, v]) => ["HSET", key, f, v], reload) : null)
  }
  if (type === "list") {
    const items = await run("LRANGE", key, 0, SHOW - 1)
    return (writer, reload) => h("div", {}, rows(items.map((v, i) => [String(i), v]), ["Index", "Value"]),
      writer ? adder(["Value"], ([v]) => ["RPUSH", key, v], reload) : null)
  }
  if (type === "set") {
    const [, members] = await run("SSCAN", key, "0", "COUNT", SHOW)
    return (writer, reload) => h("div", {}, rows(members.map((m) => [m]), ["Member"]),
      writer ? adder(["Member"], ([m]) => ["SADD", key, m], reload) : null)
  }
  if (type === "zset") {
    const flat = await run("ZRANGE", key, 0, SHOW - 1, "WITHSCORES")
    return (writer, reload) => h("div", {}, rows(pairsOf(flat), ["Member", "Score"]),
      writer ? adder(["Member", "Score"], ([m, s]) => ["ZADD", key, s, m], reload) : null)
  }
  if (type === "stream") {
    const entries = await run("XREVRANGE", key, "+", "-", "COUNT", 50)
    return () => rows(entries.map(([id, fields]) => [id, pairsOf(fields).map(([f, v]) => `${f}=${v}`).join(" ")]), ["Id", "Fields"])
  }
  return () => h("p", { class: "hint" }, `The console cannot show ${type} values; use the command line below.`)
}

function keyActions(run, view, key, type, ttl, writer, rescan) {
  const seconds = field({ name: "ttl", label: "Expire after (seconds)", type: "number", min: 1, value: ttl > 0 ? String(ttl) : "" })
  const setTtl = h("button", { type: "button" }, "Set TTL")
  setTtl.addEventListener("click", async () => {
    try {
      await run("EXPIRE", key, Number(seconds.input.value))
      toast(`${key} expires in ${seconds.input.value} s.`)
      show(run, view, key, writer, rescan)
    } catch (err) {
      toast(problem(err), "error")
    }
  })
  const persist = h("button", { type: "button" }, "Remove TTL")
  persist.addEventListener("click", async () => {
    await run("PERSIST", key).catch((err) => toast(problem(err), "error"))
    show(run, view, key, writer, rescan)
  })
  const remove = h("button", { type: "button", class: "danger" }, "Delete key")
  remove.addEventListener("click", async () => {
    if (!await confirmDialog({ title: `Delete ${key}?`, text: `The ${type} and its value are gone for good.`, confirm: "Delete key", danger: true })) return
    try {
      await run("DEL", key)
      toast(`Deleted ${key}.`)
      clear(view, view.querySelector("h2"), h("p", { class: "hint" }, "Choose a key to see its value."))
      rescan()
    } catch (err) {
      toast(problem(err), "error")
    }
  })
  return h("div", { class: "stack" }, h("h3", {}, "Key"), seconds.wrap, h("div", { class: "actions" }, setTtl, persist, remove))
}

function newKey(run, view, writer, rescan) {
  const title = view.querySelector("h2")
  const name = field({ name: "key", label: "Key name", required: true })
  const value = field({ name: "value", label: "Value", control: "textarea" })
  const form = h("form", { class: "stack" }, name.wrap, value.wrap, h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Create key")))
  form.addEventListener("submit", async (event) => {
    event.preventDefault()
    if (!name.input.value) return
    try {
      await run("SET", name.input.value, value.input.value)
      toast(`Created ${name.input.value}.`)
      rescan()
      show(run, view, name.input.value, writer, rescan)
    } catch (err) {
      toast(problem(err), "error")
    }
  })
  clear(view, title, form)
  name.input.focus()
}

function cli(path) {
  const output = h("pre", { class: "code cli-output", tabindex: "0", role: "log", "aria-label": "Command output" })
  const input = h("input", { id: "cli-input", autocomplete: "off", spellcheck: "false", placeholder: "GET greeting", class: "mono" })
  let at = history.length
  input.addEventListener("keydown", (event) => {
    if (event.key === "ArrowUp" && at > 0) { at -= 1; input.value = history[at]; event.preventDefault() }
    if (event.key === "ArrowDown" && at < history.length) { at += 1; input.value = history[at] || ""; event.preventDefault() }
  })
  const form = h("form", { class: "copy", "aria-label": "Run a command" }, input, h("button", { type: "submit", class: "primary" }, "Run"))
  form.addEventListener("submit", async (event) => {
    event.preventDefault()
    const line = input.value.trim()
    if (!line) return
    history.push(line)
    at = history.length
    input.value = ""
    let text
    try {
      text = formatReply(await command(path, splitArgs(line)))
    } catch (err) {
      text = `(error) ${problem(err)}`
    }
    output.textContent = `${output.textContent}> ${line}\n${text}\n`.split("\n").slice(-400).join("\n")
    output.scrollTop = output.scrollHeight
  })
  return h("section", { class: "card", "aria-labelledby": "cli-title" }, h("h2", { id: "cli-title" }, "Command line"),
    h("label", { for: "cli-input", class: "hint" }, "A Redis command, as in redis-cli (↑ and ↓ walk the history)"), form, output)
}

