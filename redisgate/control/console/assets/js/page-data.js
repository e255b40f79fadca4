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
  const kind = COLLECTIONS[type]
  if (kind) return (writer, reload) => collection(run, key, kind, writer, reload)
  return () => h("p", { class: "hint" }, `The console cannot show ${type} values; use the command line below.`)
}

const pairsOf = (flat) => Array.from({ length: flat.length / 2 }, (_, i) => [flat[2 * i], flat[2 * i + 1]])

// A page of a collection starts at a position: a SCAN cursor (hash, set), an offset (list,
// sorted set) or an exclusive end id (stream, newest first). `page` answers the rows from
// there and the next page's position (null at the end). Each row is {name, cells}: the name
// is what `remove` takes.
const COLLECTIONS = {
  hash: {
    noun: "field", nouns: "fields", size: "HLEN", first: "0", columns: ["Field", "Value"],
    async page(run, key, at) {
      let cursor = at
      let flat = []
      do { // a SCAN round may come back empty with the cursor not yet at the end
        const [next, got] = await run("HSCAN", key, cursor, "COUNT", SHOW)
        cursor = next
        flat = flat.concat(got)
      } while (!flat.length && cursor !== "0")
      return { rows: pairsOf(flat).map((cells) => ({ name: cells[0], cells })), next: cursor === "0" ? null : cursor }
    },
    remove: (key, field) => ["HDEL", key, field],
    add: { labels: ["Field", "Value"], args: (key, [f, v]) => ["HSET", key, f, v] },
  },
  set: {
    noun: "member", nouns: "members", size: "SCARD", first: "0", columns: ["Member"],
    async page(run, key, at) {
      let cursor = at
      let members = []
      do {
        const [next, got] = await run("SSCAN", key, cursor, "COUNT", SHOW)
        cursor = next
        members = members.concat(got)
      } while (!members.length && cursor !== "0")
      return { rows: members.map((m) => ({ name: m, cells: [m] })), next: cursor === "0" ? null : cursor }
    },
    remove: (key, member) => ["SREM", key, member],
    add: { labels: ["Member"], args: (key, [m]) => ["SADD", key, m] },
  },
  list: {
    noun: "element", nouns: "elements", size: "LLEN", first: 0, columns: ["Index", "Value"],
    async page(run, key, at, total) {
      const items = await run("LRANGE", key, at, at + SHOW - 1)
      return { rows: items.map((v, i) => ({ name: v, cells: [String(at + i), v] })), next: at + SHOW < total ? at + SHOW : null }
    },
    // LREM count 1: the first element from the head equal to this value, which is the one
    // shown unless an equal value comes before it.
    remove: (key, value) => ["LREM", key, 1, value],
    removeNote: "The first element from the head with this value is removed (LREM count 1).",
    add: { labels: ["Value"], args: (key, [v]) => ["RPUSH", key, v] },
  },
  zset: {
    noun: "member", nouns: "members", size: "ZCARD", first: 0, columns: ["Member", "Score"],
    async page(run, key, at, total) {
      const flat = await run("ZRANGE", key, at, at + SHOW - 1, "WITHSCORES")
      return { rows: pairsOf(flat).map((cells) => ({ name: cells[0], cells })), next: at + SHOW < total ? at + SHOW : null }
    },
    remove: (key, member) => ["ZREM", key, member],
    add: { labels: ["Member", "Score"], args: (key, [m, s]) => ["ZADD", key, s, m] },
  },
  stream: {
    noun: "entry", nouns: "entries", size: "XLEN", first: "+", columns: ["Id", "Fields"],
    async page(run, key, at) {
      const entries = await run("XREVRANGE", key, at, "-", "COUNT", SHOW + 1)
      const shown = entries.slice(0, SHOW)
      const rows = shown.map(([id, fields]) => ({ name: id, cells: [id, pairsOf(fields).map(([f, v]) => `${f}=${v}`).join(" ")] }))
      return { rows, next: entries.length > SHOW ? `(${shown[shown.length - 1][0]}` : null }
    },
    remove: (key, id) => ["XDEL", key, id],
  },
}

// One collection, a page at a time ("201–400 of 450"), with removal and adding for writers.
function collection(run, key, kind, writer, reload) {
  const columns = kind.remove && writer ? [...kind.columns, "Remove"] : kind.columns
  const count = h("p", { class: "hint", tabindex: "-1", "data-count": "" })
  const back = h("button", { type: "button", disabled: true }, "Previous page")
  const forward = h("button", { type: "button", disabled: true }, "Next page")
  const pager = h("div", { class: "actions pager", role: "group", "aria-label": `Pages of ${kind.nouns}`, hidden: true }, back, forward)
  const table = h("div", {}, skeleton(3))
  const stack = [{ at: kind.first, offset: 0 }] // the pages walked to, the shown one last
  let next = null

  const render = async ({ focus = false } = {}) => {
    const here = stack[stack.length - 1]
    try {
      const total = await run(kind.size, key)
      if (!total) { reload(); return } // the last element went, and the key with it
      const got = await kind.page(run, key, here.at, total)
      if (!got.rows.length && stack.length > 1) { stack.pop(); render({ focus }); return }
      next = got.next
      here.size = got.rows.length
      const from = got.rows.length ? here.offset + 1 : 0
      count.textContent = `${kind.nouns[0].toUpperCase()}${kind.nouns.slice(1)} ${from}–${here.offset + got.rows.length} of ${total}`
      table.replaceChildren(rows(got.rows, columns, writer && kind.remove ? removeButton : null))
      back.disabled = stack.length === 1
      forward.disabled = next === null
      pager.hidden = stack.length === 1 && next === null
      if (focus) count.focus()
    } catch (err) {
      table.replaceChildren(h("p", { class: "alert", role: "alert" }, problem(err)))
    }
  }
  back.addEventListener("click", () => { if (stack.length > 1) { stack.pop(); render() } })
  forward.addEventListener("click", () => {
    const here = stack[stack.length - 1]
    if (next !== null) { stack.push({ at: next, offset: here.offset + here.size }); render() }
  })

  const removeButton = (name) => {
    const label = `Remove ${kind.noun} ${name}`
    const button = h("button", { type: "button", class: "danger small", "aria-label": label }, "Remove")
    button.addEventListener("click", async () => {
      const sure = await confirmDialog({ title: `${label}?`, text: kind.removeNote || `The ${kind.noun} is removed from ${key}.`, confirm: "Remove", danger: true })
      if (!sure) return
      try {
        await run(...kind.remove(key, name))
        toast(`Removed ${name}.`)
      } catch (err) {
        toast(problem(err), "error")
      }
      render({ focus: true })
    })
    return button
  }

  render()
  const adding = !writer ? null
    : kind.add ? adder(run, kind.add.labels, (values) => kind.add.args(key, values), () => render({ focus: true }))
      : streamAdder(run, key, () => { stack.splice(1); render({ focus: true }) })
  return h("div", {}, count, table, pager, adding)
}

function rows(items, headings, removeOf) {
  return h("table", { class: "list" },
    h("thead", {}, h("tr", {}, headings.map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, items.map(({ name, cells }) => h("tr", {},
      cells.map((c, i) => h("td", { "data-label": headings[i], class: "wrap" }, c)),
      removeOf ? h("td", {}, removeOf(name)) : null))))
}

function adder(run, labels, args, done) {
  const inputs = labels.map((l) => field({ name: l.toLowerCase(), label: l }))
  const form = h("form", { class: "actions" }, inputs.map((f) => f.wrap), h("button", { type: "submit" }, "Add"))
  form.addEventListener("submit", async (event) => {
    event.preventDefault()
    try {
      await run(...args(inputs.map((f) => f.input.value)))
      toast("Added.")
      done()
    } catch (err) {
      toast(problem(err), "error")
    }
  })
  return form
}

// XADD key * with field value pairs, typed as redis-cli reads them.
function streamAdder(run, key, done) {
  const pairs = field({ name: "fields", label: "Fields and values", hint: "Pairs as redis-cli reads them: kind signup user \"Ada L\"" })
  const form = h("form", { class: "actions" }, pairs.wrap, h("button", { type: "submit" }, "Add entry"))
  form.addEventListener("submit", async (event) => {
    event.preventDefault()
    pairs.error.textContent = ""
    pairs.input.removeAttribute("aria-invalid")
    let args
    try {
      args = splitArgs(pairs.input.value)
    } catch (err) {
      args = null
    }
    if (!args || !args.length || args.length % 2) {
      pairs.error.textContent = "Fields and values must be pairs: a field, then its value."
      pairs.input.setAttribute("aria-invalid", "true")
      pairs.input.focus()
      return
    }
    try {
      const id = await run("XADD", key, "*", ...args)
      toast(`Added entry ${id}.`)
      pairs.input.value = ""
      done()
    } catch (err) {
      toast(problem(err), "error")
    }
  })
  return form
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

