// The organization's instances: the list, and the form that creates one.

import { all, get, post } from "./api.js"
import { h, append, clear, empty, skeleton } from "./dom.js"
import { describe } from "./errors.js"
import { FormErrors, alertBox, busy, checkbox, field } from "./forms.js"
import { number } from "./format.js"
import { toast } from "./toast.js"

export const POLICIES = [
  ["noeviction", "noeviction: refuse writes when memory is full (a database)"],
  ["allkeys-lru", "allkeys-lru: drop the least recently used keys (a cache)"],
  ["allkeys-lfu", "allkeys-lfu: drop the least frequently used keys"],
  ["allkeys-random", "allkeys-random: drop random keys"],
  ["volatile-lru", "volatile-lru: drop least recently used keys that have a TTL"],
  ["volatile-lfu", "volatile-lfu: drop least frequently used keys that have a TTL"],
  ["volatile-random", "volatile-random: drop random keys that have a TTL"],
  ["volatile-ttl", "volatile-ttl: drop the keys closest to expiring"],
]

export function statusBadge(instance) {
  return h("span", { class: ["badge", instance.status], title: instance.status_reason || null }, instance.status)
}

export function quotaLine(quota) {
  const { limits, used } = quota
  return h("p", { class: "hint", id: "quota-line" },
    `Quota: ${used.instances} of ${limits.max_instances} instances, ${number(used.memory_mb)} of ${number(limits.max_memory_mb)} MB of memory, ` +
    `${used.api_keys} of ${limits.max_api_keys} API keys in use.`)
}

export async function list(ctx) {
  ctx.title("Instances")
  const mayCreate = ctx.can("instances.manage")
  const head = h("div", { class: "page-head" }, h("h1", {}, "Instances"),
    mayCreate ? h("a", { class: "button primary", href: `#/orgs/${ctx.orgId}/instances/new` }, "Create instance") : null)
  const body = h("div", {}, skeleton(4, true))
  append(ctx.main, head, body)
  const load = async () => {
    const [items, quota] = await Promise.all([
      all(`/v1/orgs/${ctx.orgId}/instances`),
      get(`/v1/orgs/${ctx.orgId}/quota`),
    ])
    if (ctx.stale()) return
    if (items.length === 0) {
      clear(body, empty("No instances yet",
        mayCreate ? "An instance is a Redis of your own behind the gateway. Create one: it is ready in seconds."
          : "Nobody has created an instance in this organization yet; your role cannot create one.",
        mayCreate ? h("a", { class: "button primary", href: `#/orgs/${ctx.orgId}/instances/new` }, "Create your first instance") : null),
      quotaLine(quota))
      return
    }
    clear(body, table(ctx, items), quotaLine(quota))
    if (items.some((i) => i.status === "provisioning")) {
      const timer = setTimeout(() => load().catch(() => {}), 2000)
      ctx.onLeave(() => clearTimeout(timer))
    }
  }
  ctx.onEvent(["instance", "quota"], () => load().catch(() => {}))
  await load()
}

function table(ctx, items) {
  return h("table", { class: "list" },
    h("caption", { class: "visually-hidden" }, "Instances of this organization"),
    h("thead", {}, h("tr", {}, ["Name", "Status", "Memory", "Endpoint", "Eviction"].map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, items.map((i) => h("tr", {},
      h("td", { "data-label": "Name" }, h("a", { href: `#/orgs/${ctx.orgId}/instances/${i.id}` }, i.name)),
      h("td", { "data-label": "Status" }, statusBadge(i)),
      h("td", { "data-label": "Memory" }, `${number(i.memory_mb)} MB`),
      h("td", { "data-label": "Endpoint", class: "wrap" }, h("code", {}, `${i.endpoint.host}:${i.endpoint.port}`)),
      h("td", { "data-label": "Eviction" }, i.eviction_policy)))))
}

export async function create(ctx) {
  ctx.title("Create instance")
  if (!ctx.can("instances.manage")) {
    append(ctx.main, h("h1", {}, "Create instance"),
      h("p", { class: "note" }, `Your role (${ctx.role}) cannot create instances. Ask an owner or admin of this organization.`))
    return
  }
  const loading = skeleton(5)
  append(ctx.main, h("p", { class: "crumbs" }, h("a", { href: `#/orgs/${ctx.orgId}/instances` }, "Instances"), " / New"),
    h("h1", {}, "Create an instance"), loading)
  const quota = await get(`/v1/orgs/${ctx.orgId}/quota`)
  loading.remove()
  const memoryLeft = Math.max(0, quota.limits.max_memory_mb - quota.used.memory_mb)
  const instancesLeft = Math.max(0, quota.limits.max_instances - quota.used.instances)
  const name = field({ name: "name", label: "Name", required: true, maxlength: 100, placeholder: "cache", hint: "For you and your team; clients never see it." })
  const memory = field({
    name: "memory_mb", label: "Memory (MB)", type: "number", min: 1, max: Math.max(1, memoryLeft), step: 1,
    value: String(Math.min(64, Math.max(1, memoryLeft))), required: true,
    hint: `Your organization has ${number(memoryLeft)} MB of ${number(quota.limits.max_memory_mb)} MB left, and room for ${instancesLeft} more instance${instancesLeft === 1 ? "" : "s"}.`,
  })
  const policy = field({ name: "eviction_policy", label: "When memory is full", control: "select", options: POLICIES, value: "noeviction" })
  const persistence = checkbox({ name: "persistence", label: "Keep the data across restarts (append-only file and snapshots)", checked: true })
  const alert = alertBox()
  const submit = h("button", { type: "submit", class: "primary" }, "Create instance")
  const form = h("form", { class: "stack card", novalidate: true }, alert, name.wrap, memory.wrap, policy.wrap, persistence.wrap,
    h("div", { class: "actions" }, submit, h("a", { class: "button", href: `#/orgs/${ctx.orgId}/instances` }, "Cancel")))
  if (instancesLeft === 0) alert.textContent = `This organization already has ${quota.used.instances} of its ${quota.limits.max_instances} instances. Delete one, or ask a platform administrator to raise the quota.`
  append(ctx.main, form)
  const errors = new FormErrors(alert, { name, memory_mb: memory, eviction_policy: policy })
  form.addEventListener("submit", async (event) => {
    event.preventDefault()
    errors.clear()
    const local = {}
    if (!name.input.value.trim()) local.name = "is required"
    const mb = Number(memory.input.value)
    if (!Number.isInteger(mb) || mb < 1) local.memory_mb = "must be a whole number of megabytes, at least 1"
    else if (mb > memoryLeft) local.memory_mb = `must be at most ${memoryLeft}: that is what the organization's quota has left`
    if (Object.keys(local).length) {
      for (const [n, message] of Object.entries(local)) errors.set(n, message)
      ;(local.name ? name : memory).input.focus()
      return
    }
    await busy(submit, async () => {
      try {
        const made = await post(`/v1/orgs/${ctx.orgId}/instances`, {
          name: name.input.value.trim(), memory_mb: mb, eviction_policy: policy.input.value, persistence: persistence.input.checked,
        })
        toast(made.status === "running" ? `Instance ${made.name} is running.` : `Instance ${made.name} is ${made.status}.`)
        ctx.navigate(`/orgs/${ctx.orgId}/instances/${made.id}`)
      } catch (err) {
        if (err.code === "quota_exceeded" && err.details.resource === "memory_mb") errors.show(err, { memory_mb: describe(err) })
        else errors.show(err)
      }
    })
  })
}
