// One instance: how to connect, live stats, usage; its settings and deletion.

import { del, get, patch } from "./api.js"
import { barChart } from "./chart.js"
import { copyButton, copyField } from "./copy.js"
import { confirmDialog } from "./dialog.js"
import { h, append, clear, skeleton } from "./dom.js"
import { describe } from "./errors.js"
import { FormErrors, alertBox, busy, checkbox, field } from "./forms.js"
import { bytes, dateTime, number, percent } from "./format.js"
import { POLICIES, statusBadge } from "./page-instances.js"
import { limitsFieldset } from "./limits.js"
import { snippets } from "./snippets.js"
import { toast } from "./toast.js"

const STATS_EVERY_MS = 5000

export function instancePath(ctx) {
  return `/v1/orgs/${ctx.orgId}/instances/${ctx.params.instance}`
}

// Breadcrumbs, the name and status, and the tabs of an instance's pages.
export function instanceHead(ctx, instance, tab) {
  const base = `#/orgs/${ctx.orgId}/instances/${instance.id}`
  const tabs = [["overview", "Overview", base]]
  if (instance.rest_url && ctx.can("instances.browse")) tabs.push(["data", "Data", `${base}/data`])
  if (ctx.can("keys.read")) tabs.push(["keys", "API keys", `${base}/keys`])
  if (ctx.can("instances.manage")) tabs.push(["settings", "Settings", `${base}/settings`])
  return [
    h("p", { class: "crumbs" }, h("a", { href: `#/orgs/${ctx.orgId}/instances` }, "Instances"), " / ", instance.name),
    h("div", { class: "page-head" }, h("h1", {}, instance.name), statusBadge(instance)),
    instance.status === "failed" && instance.status_reason ? h("p", { class: "alert", role: "alert" }, `This instance failed: ${instance.status_reason}`) : null,
    h("nav", { "aria-label": "Instance" }, h("ul", { class: "tabs" },
      tabs.map(([id, text, href]) => h("li", {}, h("a", { href, "aria-current": id === tab ? "page" : null }, text))))),
  ]
}

export async function loadInstance(ctx) {
  const loading = skeleton(3, true)
  ctx.main.append(loading)
  const instance = await get(instancePath(ctx))
  loading.remove()
  return instance
}

export async function overview(ctx) {
  ctx.title("Instance")
  let instance = await loadInstance(ctx)
  ctx.title(instance.name)
  append(ctx.main, instanceHead(ctx, instance, "overview"))
  append(ctx.main, connection(ctx, instance), connect(instance))
  const stats = h("section", { class: "card", "aria-labelledby": "stats-title" }, h("h2", { id: "stats-title" }, "Live stats"), skeleton(2, true))
  const usage = h("section", { class: "card", "aria-labelledby": "usage-title" }, h("h2", { id: "usage-title" }, "Usage, last 30 days"), skeleton(3))
  append(ctx.main, stats, usage)
  let timer = null
  const tick = async () => {
    if (ctx.stale()) return
    if (instance.status === "provisioning") {
      instance = await get(instancePath(ctx)).catch(() => instance)
      if (instance.status !== "provisioning" && !ctx.stale()) ctx.navigate(`/orgs/${ctx.orgId}/instances/${instance.id}`)
    }
    if (!document.hidden) await renderStats(ctx, stats, instance)
    if (!ctx.stale()) timer = setTimeout(tick, STATS_EVERY_MS)
  }
  ctx.onLeave(() => clearTimeout(timer))
  ctx.onEvent(["instance"], (kind, event) => { if (!event || event.id === instance.id) ctx.reload() })
  await Promise.all([tick(), renderUsage(ctx, usage)])
}

function connection(ctx, instance) {
  const endpoint = `${instance.endpoint.host}:${instance.endpoint.port}`
  return h("section", { class: "card", "aria-labelledby": "conn-title" },
    h("h2", { id: "conn-title" }, "Connection"),
    h("dl", { class: "details" },
      h("dt", {}, "Endpoint"), h("dd", {}, copyField(endpoint, "endpoint", "endpoint")),
      h("dt", {}, "redis-cli"), h("dd", {}, copyField(instance.redis_cli, "redis-cli command", "redis-cli")),
      h("dt", {}, "HTTP API (REST)"), h("dd", {}, instance.rest_url ? copyField(instance.rest_url, "REST URL", "rest-url") : "Turned off on this gateway."),
      h("dt", {}, "Memory"), h("dd", {}, `${number(instance.memory_mb)} MB, ${instance.eviction_policy}, ${instance.persistence ? "persistent" : "not persistent (a cache)"}`),
      h("dt", {}, "Created"), h("dd", {}, dateTime(instance.created_at))),
    h("p", { class: "hint" }, "Replace <API_KEY> with a key of this instance. ",
      ctx.can("keys.manage") ? h("a", { href: `#/orgs/${ctx.orgId}/instances/${instance.id}/keys` }, "Create an API key.") : "Ask a member of the organization for a key."))
}

function connect(instance) {
  const list = snippets(instance)
  const code = h("pre", { class: "code", tabindex: "0", "aria-label": "Code to connect" })
  const copyHolder = h("div", { class: "actions" })
  const select = h("select", { id: "snippet-lang" }, list.map(([name], i) => h("option", { value: String(i) }, name)))
  const show = () => {
    const [name, , text] = list[Number(select.value)]
    code.textContent = text
    clear(copyHolder, copyButton(text, `${name} snippet`))
  }
  select.addEventListener("change", show)
  show()
  return h("section", { class: "card", "aria-labelledby": "connect-title" },
    h("h2", { id: "connect-title" }, "Connect"),
    h("div", { class: "field" }, h("label", { for: "snippet-lang" }, "Client"), select), code, copyHolder)
}

async function renderStats(ctx, holder, instance) {
  const title = holder.querySelector("h2")
  if (instance.status !== "running") {
    clear(holder, title, h("p", { class: "hint" }, instance.status === "provisioning" ? "Starting: stats appear once the instance is running." : "Stats appear once the instance is running."))
    return
  }
  let stats
  try {
    stats = await get(`${instancePath(ctx)}/stats`)
  } catch (err) {
    if (!ctx.stale()) clear(holder, title, h("p", { class: "note" }, describe(err)))
    return
  }
  if (ctx.stale()) return
  const used = stats.maxmemory_bytes ? Math.min(100, (stats.used_memory_bytes / stats.maxmemory_bytes) * 100) : 0
  const meter = h("span")
  meter.style.width = `${used.toFixed(1)}%`
  const stat = (label, value, extra) => h("div", { class: "stat" }, h("span", { class: "label" }, label), h("span", { class: "value" }, value), extra)
  clear(holder, title, h("div", { class: "grid" },
    stat("Memory", bytes(stats.used_memory_bytes),
      stats.maxmemory_bytes ? [h("div", { class: "meter", role: "progressbar", "aria-label": "Memory used", "aria-valuemin": 0, "aria-valuemax": 100, "aria-valuenow": Math.round(used) }, meter),
        h("span", { class: "hint" }, `of ${bytes(stats.maxmemory_bytes)}`)] : null),
    stat("Keys", number(stats.keys)),
    stat("Ops/s", number(stats.ops_per_second)),
    stat("Clients", number(stats.connected_clients)),
    stat("Hit ratio", percent(stats.hit_ratio)),
    stat("Evicted keys", number(stats.evicted_keys))),
  h("p", { class: "hint" }, `Sampled ${dateTime(stats.sampled_at)}; refreshed every ${STATS_EVERY_MS / 1000} s.`,
    stats.server_wide ? " Ops/s and clients count the whole shared server." : ""))
}

const METRICS = [
  ["commands", "Commands", number],
  ["bytes_in", "Bytes in", bytes],
  ["bytes_out", "Bytes out", bytes],
  ["denied", "Denied (scope)", number],
  ["limited", "Limited (rate or quota)", number],
]

async function renderUsage(ctx, holder) {
  const title = holder.querySelector("h2")
  let series
  try {
    series = await get(`${instancePath(ctx)}/usage`)
  } catch (err) {
    clear(holder, title, h("p", { class: "note" }, describe(err)))
    return
  }
  if (ctx.stale()) return
  const select = h("select", { id: "usage-metric" }, METRICS.map(([value, text]) => h("option", { value }, text)))
  const chart = h("div")
  const draw = () => {
    const [metric, label, format] = METRICS.find(([m]) => m === select.value)
    clear(chart, barChart(series.days, metric, label, format))
  }
  select.addEventListener("change", draw)
  draw()
  clear(holder, title, h("div", { class: "field" }, h("label", { for: "usage-metric" }, "Show"), select), chart)
}

export async function settings(ctx) {
  ctx.title("Instance settings")
  const instance = await loadInstance(ctx)
  ctx.title(`${instance.name}: settings`)
  append(ctx.main, instanceHead(ctx, instance, "settings"))
  if (!ctx.can("instances.manage")) {
    append(ctx.main, h("p", { class: "note" }, `Your role (${ctx.role}) cannot change instances.`))
    return
  }
  const name = field({ name: "name", label: "Name", value: instance.name, maxlength: 100, required: true })
  const memory = field({ name: "memory_mb", label: "Memory (MB)", type: "number", min: 1, step: 1, value: String(instance.memory_mb),
    hint: "Applied live. More memory counts against the organization's quota." })
  const policy = field({ name: "eviction_policy", label: "When memory is full", control: "select", options: POLICIES, value: instance.eviction_policy })
  const persistence = checkbox({ name: "persistence", label: "Keep the data across restarts", checked: instance.persistence })
  const limits = limitsFieldset(instance.limits, "Limits for all of its keys together")
  const alert = alertBox()
  const submit = h("button", { type: "submit", class: "primary" }, "Save changes")
  const form = h("form", { class: "stack", novalidate: true, "aria-labelledby": "edit-title" }, alert, name.wrap, memory.wrap, policy.wrap, persistence.wrap, limits.wrap, h("div", { class: "actions" }, submit))
  const errors = new FormErrors(alert, { name, memory_mb: memory, eviction_policy: policy, persistence, ...limits.fields })
  form.addEventListener("submit", async (event) => {
    event.preventDefault()
    errors.clear()
    const change = {}
    if (name.input.value.trim() !== instance.name) change.name = name.input.value.trim()
    if (Number(memory.input.value) !== instance.memory_mb) change.memory_mb = Number(memory.input.value)
    if (policy.input.value !== instance.eviction_policy) change.eviction_policy = policy.input.value
    if (persistence.input.checked !== instance.persistence) change.persistence = persistence.input.checked
    const limitChanges = limits.changes()
    if (limitChanges) change.limits = limitChanges
    if (!Object.keys(change).length) {
      toast("Nothing changed.")
      return
    }
    if ("name" in change && !change.name) return errors.set("name", "is required")
    await busy(submit, async () => {
      try {
        const updated = await patch(instancePath(ctx), change)
        Object.assign(instance, updated)
        toast(`Saved ${updated.name}.`)
        ctx.navigate(`/orgs/${ctx.orgId}/instances/${instance.id}/settings`)
      } catch (err) {
        if (err.code === "quota_exceeded") errors.show(err, { memory_mb: describe(err) })
        else errors.show(err)
      }
    })
  })
  const remove = h("button", { type: "button", class: "danger" }, "Delete instance")
  remove.addEventListener("click", async () => {
    const ok = await confirmDialog({
      title: `Delete ${instance.name}?`,
      text: "Its Redis and all its data are deleted, and every API key of it stops working at once. This cannot be undone.",
      confirm: "Delete instance", danger: true, typed: instance.name,
    })
    if (!ok) return
    try {
      await del(instancePath(ctx))
      toast(`Deleted ${instance.name}.`)
      ctx.navigate(`/orgs/${ctx.orgId}/instances`)
    } catch (err) {
      toast(describe(err), "error")
    }
  })
  append(ctx.main,
    h("section", { class: "card", "aria-labelledby": "edit-title" }, h("h2", { id: "edit-title" }, "Settings"), form),
    h("section", { class: "card", "aria-labelledby": "danger-title" }, h("h2", { id: "danger-title" }, "Delete"),
      h("p", {}, "Deleting the instance removes its data and revokes its keys."), remove))
}
