// An organization: creating one, its members and roles, its audit log, its quota and name.

import { all, del, get, patch, post, put } from "./api.js"
import { barChart } from "./chart.js"
import { confirmDialog } from "./dialog.js"
import { h, append, clear, empty, skeleton } from "./dom.js"
import { describe } from "./errors.js"
import { FormErrors, alertBox, busy, field } from "./forms.js"
import { bytes, dateTime, number } from "./format.js"
import { ROLE_TEXT, can } from "./roles.js"
import * as session from "./session.js"
import { toast } from "./toast.js"

const ROLES = ["owner", "admin", "member", "viewer"]

export async function createOrg(ctx) {
  ctx.title("New organization")
  const form = orgNameForm({
    label: "Create organization",
    hint: "Each organization has its own instances, members and quota.",
    formClass: "stack card",
    save: async (name) => {
      const made = await post("/v1/orgs", { name })
      await session.load()
      toast(`Created ${made.name}.`)
      ctx.navigate(`/orgs/${made.id}/instances`)
    },
  })
  append(ctx.main, h("h1", {}, "New organization"), form)
}

// The form naming an organization (creating one, renaming one): a required name, the API's
// refusal shown at the field, `save(name)` run while the button is busy.
function orgNameForm({ label, value, hint, formClass, save }) {
  const name = field({ name: "name", label: "Name", value, required: true, maxlength: 100, hint })
  const alert = alertBox()
  const submit = h("button", { type: "submit", class: "primary" }, label)
  const form = h("form", { class: formClass, novalidate: true }, alert, name.wrap, h("div", { class: "actions" }, submit))
  const errors = new FormErrors(alert, { name })
  form.addEventListener("submit", async (event) => {
    event.preventDefault()
    errors.clear()
    if (!name.input.value.trim()) return errors.set("name", "is required")
    await busy(submit, async () => {
      try {
        await save(name.input.value.trim())
      } catch (err) {
        errors.show(err)
      }
    })
  })
  return form
}

export async function members(ctx) {
  ctx.title("Members")
  const manage = ctx.can("members.manage")
  append(ctx.main, h("div", { class: "page-head" }, h("h1", {}, "Members")))
  const holder = h("section", { "aria-label": "Members" }, skeleton(3, true))
  append(ctx.main, holder)
  const me = session.user()
  const refresh = async () => {
    const rows = await all(`/v1/orgs/${ctx.orgId}/members`)
    if (ctx.stale()) return
    clear(holder, h("table", { class: "list" },
      h("caption", { class: "visually-hidden" }, "Members and their roles"),
      h("thead", {}, h("tr", {}, ["Name", "Email", "Role", "Joined", ""].map((t) => h("th", { scope: "col" }, t || h("span", { class: "visually-hidden" }, "Actions"))))),
      h("tbody", {}, rows.map((m) => memberRow(ctx, m, manage && m.user_id !== me.id, refresh)))))
  }
  ctx.onEvent(["member"], () => refresh().catch(() => {}))
  await refresh()
  if (manage) append(ctx.main, inviteForm(ctx, refresh))
  append(ctx.main, h("section", { class: "card", "aria-labelledby": "roles-title" }, h("h2", { id: "roles-title" }, "What each role may do"),
    h("dl", { class: "details" }, ROLES.map((r) => [h("dt", {}, r), h("dd", {}, ROLE_TEXT[r])]))))
}

function memberRow(ctx, m, editable, refresh) {
  let roleCell = m.role
  const assignable = ROLES.filter((r) => r !== "owner" || can(ctx.role, "members.manage_owners"))
  if (editable && (m.role !== "owner" || can(ctx.role, "members.manage_owners"))) {
    const select = h("select", { "aria-label": `Role of ${m.email}` }, assignable.map((r) => h("option", { value: r, selected: r === m.role }, r)))
    select.addEventListener("change", async () => {
      try {
        await patch(`/v1/orgs/${ctx.orgId}/members/${m.user_id}`, { role: select.value })
        toast(`${m.email} is now ${select.value}.`)
        await refresh()
      } catch (err) {
        select.value = m.role
        toast(describe(err), "error")
      }
    })
    roleCell = select
  }
  const remove = editable && (m.role !== "owner" || can(ctx.role, "members.manage_owners"))
    ? h("button", { type: "button", class: "small danger", "aria-label": `Remove ${m.email}`, onclick: async () => {
      const ok = await confirmDialog({ title: `Remove ${m.email}?`, text: "They lose access to this organization's instances at once.", confirm: "Remove", danger: true })
      if (!ok) return
      try {
        await del(`/v1/orgs/${ctx.orgId}/members/${m.user_id}`)
        toast(`Removed ${m.email}.`)
        await refresh()
      } catch (err) {
        toast(describe(err), "error")
      }
    } }, "Remove")
    : null
  return h("tr", {},
    h("td", { "data-label": "Name" }, m.name || "—"),
    h("td", { "data-label": "Email", class: "wrap" }, m.email),
    h("td", { "data-label": "Role" }, roleCell),
    h("td", { "data-label": "Joined" }, dateTime(m.joined_at)),
    h("td", {}, remove))
}

function inviteForm(ctx, refresh) {
  const email = field({ name: "email", label: "Email", type: "email", required: true, hint: "They need a RedisGate account already." })
  const roleOptions = ROLES.filter((r) => r !== "owner" || can(ctx.role, "members.manage_owners")).map((r) => [r, r])
  const role = field({ name: "role", label: "Role", control: "select", options: roleOptions, value: "member" })
  const alert = alertBox()
  const submit = h("button", { type: "submit", class: "primary" }, "Add member")
  const form = h("form", { class: "stack", novalidate: true }, alert, email.wrap, role.wrap, h("div", { class: "actions" }, submit))
  const errors = new FormErrors(alert, { email, role })
  form.addEventListener("submit", async (event) => {
    event.preventDefault()
    errors.clear()
    if (!email.input.value.trim()) return errors.set("email", "is required")
    await busy(submit, async () => {
      try {
        const added = await post(`/v1/orgs/${ctx.orgId}/members`, { email: email.input.value.trim(), role: role.input.value })
        toast(`Added ${added.email} as ${added.role}.`)
        form.reset()
        await refresh()
      } catch (err) {
        if (err.code === "user_not_found") errors.show(err, { email: "has no account yet: ask them to register first, then add them" })
        else if (err.code === "already_member") errors.show(err, { email: "is already a member" })
        else errors.show(err)
      }
    })
  })
  return h("section", { class: "card", "aria-labelledby": "invite-title" }, h("h2", { id: "invite-title" }, "Add a member"), form)
}

const AUDIT_PAGE = 50

export async function audit(ctx) {
  ctx.title("Audit log")
  append(ctx.main, h("h1", {}, "Audit log"))
  if (!ctx.can("audit.read")) {
    append(ctx.main, h("p", { class: "note" }, `Your role (${ctx.role}) cannot read the audit log; owners and admins can.`))
    return
  }
  const people = await all(`/v1/orgs/${ctx.orgId}/members`)
  const names = Object.fromEntries(people.map((p) => [p.user_id, p.email]))
  const action = field({ name: "action", label: "Action", placeholder: "e.g. key.revoke", maxlength: 100 })
  const actor = field({ name: "actor", label: "By", control: "select", options: [["", "Anyone"], ...people.map((p) => [p.user_id, p.email])], value: "" })
  const since = field({ name: "since", label: "From (day)", type: "date" })
  const until = field({ name: "until", label: "Until (day, included)", type: "date" })
  const alert = alertBox()
  const filters = h("form", { class: "card", novalidate: true, "aria-label": "Filters" },
    h("div", { class: "grid" }, action.wrap, actor.wrap, since.wrap, until.wrap), alert,
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Apply filters")))
  const errors = new FormErrors(alert, { action, actor, since, until })
  const body = h("tbody")
  const table = h("table", { class: "list" }, h("caption", { class: "visually-hidden" }, "Audit log entries, newest first"),
    h("thead", {}, h("tr", {}, ["When", "Who", "Action", "Target", "From", "Details"].map((t) => h("th", { scope: "col" }, t)))), body)
  const more = h("button", { type: "button", hidden: true }, "Load older entries")
  const status = h("p", { class: "hint", role: "status" })
  append(ctx.main, filters, table, h("div", { class: "actions" }, more, status))
  let cursor = null
  const query = () => {
    const q = new URLSearchParams({ limit: String(AUDIT_PAGE) })
    if (action.input.value.trim()) q.set("action", action.input.value.trim())
    if (actor.input.value) q.set("actor", actor.input.value)
    if (since.input.value) q.set("since", new Date(`${since.input.value}T00:00:00Z`).toISOString())
    if (until.input.value) q.set("until", new Date(new Date(`${until.input.value}T00:00:00Z`).getTime() + 86400000).toISOString())
    if (cursor) q.set("cursor", cursor)
    return q
  }
  const load = async (fresh) => {
    if (fresh) { cursor = null; body.replaceChildren() }
    errors.clear()
    try {
      const page = await get(`/v1/orgs/${ctx.orgId}/audit?${query()}`)
      if (ctx.stale()) return
      for (const e of page.items) body.append(auditRow(e, names))
      cursor = page.next_cursor
      more.hidden = !cursor
      const shown = body.children.length
      status.textContent = shown ? `${shown} ${shown === 1 ? "entry" : "entries"} shown${cursor ? "; older ones follow" : ""}.` : "No entries match these filters."
    } catch (err) {
      errors.show(err)
    }
  }
  filters.addEventListener("submit", (event) => { event.preventDefault(); load(true) })
  more.addEventListener("click", () => load(false))
  await load(true)
}

function auditRow(e, names) {
  const detail = {}
  if (e.before !== null && e.before !== undefined) detail.before = e.before
  if (e.after !== null && e.after !== undefined) detail.after = e.after
  return h("tr", {},
    h("td", { "data-label": "When" }, dateTime(e.created_at)),
    h("td", { "data-label": "Who", class: "wrap" }, e.actor_id ? names[e.actor_id] || e.actor_id : "—"),
    h("td", { "data-label": "Action" }, h("code", {}, e.action)),
    h("td", { "data-label": "Target", class: "wrap" }, `${e.target.type} ${e.target.type === "user" && names[e.target.id] ? names[e.target.id] : e.target.id}`),
    h("td", { "data-label": "From" }, e.client_addr || "—"),
    h("td", { "data-label": "Details" }, Object.keys(detail).length
      ? h("details", {}, h("summary", {}, "Show"), h("pre", { class: "code" }, JSON.stringify(detail, null, 2)))
      : "—"))
}

export async function settings(ctx) {
  ctx.title("Organization")
  const [org, quota] = await Promise.all([get(`/v1/orgs/${ctx.orgId}`), get(`/v1/orgs/${ctx.orgId}/quota`)])
  if (ctx.stale()) return
  append(ctx.main, h("h1", {}, org.name), h("p", { class: "hint" }, `Your role: ${ctx.role}. ${ROLE_TEXT[ctx.role]}`))
  append(ctx.main, quotaCard(ctx, quota), await usageCard(ctx))
  ctx.onEvent(["quota", "org"], () => ctx.reload())
  if (ctx.can("org.update")) {
    const form = orgNameForm({
      label: "Rename",
      value: org.name,
      formClass: "stack",
      save: async (name) => {
        await patch(`/v1/orgs/${ctx.orgId}`, { name })
        await session.load()
        toast("Renamed the organization.")
        ctx.navigate(`/orgs/${ctx.orgId}/settings`)
      },
    })
    append(ctx.main, h("section", { class: "card", "aria-labelledby": "rename-title" }, h("h2", { id: "rename-title" }, "Name"), form))
  }
  const danger = h("section", { class: "card", "aria-labelledby": "leave-title" }, h("h2", { id: "leave-title" }, "Leave or delete"))
  const leave = h("button", { type: "button", class: "danger" }, "Leave organization")
  leave.addEventListener("click", async () => {
    if (!await confirmDialog({ title: `Leave ${org.name}?`, text: "You lose access to its instances until someone adds you again.", confirm: "Leave", danger: true })) return
    try {
      await del(`/v1/orgs/${ctx.orgId}/membership`)
      await session.load()
      toast(`You left ${org.name}.`)
      ctx.navigate("/")
    } catch (err) {
      toast(describe(err), "error")
    }
  })
  append(danger, h("div", { class: "actions" }, leave))
  if (ctx.can("org.delete")) {
    const remove = h("button", { type: "button", class: "danger" }, "Delete organization")
    remove.addEventListener("click", async () => {
      const ok = await confirmDialog({ title: `Delete ${org.name}?`, text: "Every instance in it is deleted with its data, and every key stops working. This cannot be undone.", confirm: "Delete organization", danger: true, typed: org.name })
      if (!ok) return
      try {
        await del(`/v1/orgs/${ctx.orgId}`)
        await session.load()
        toast(`Deleted ${org.name}.`)
        ctx.navigate("/")
      } catch (err) {
        toast(describe(err), "error")
      }
    })
    danger.querySelector(".actions").append(remove)
  }
  append(ctx.main, danger)
}

async function usageCard(ctx) {
  const card = h("section", { class: "card", "aria-labelledby": "org-usage-title" }, h("h2", { id: "org-usage-title" }, "Usage, last 30 days, all instances"))
  try {
    const series = await get(`/v1/orgs/${ctx.orgId}/usage`)
    const total = (name) => series.days.reduce((sum, d) => sum + (d[name] || 0), 0)
    card.append(h("div", { class: "grid" },
      [["Commands", number(total("commands"))], ["Bytes in", bytes(total("bytes_in"))], ["Bytes out", bytes(total("bytes_out"))],
        ["Denied", number(total("denied"))], ["Limited", number(total("limited"))]].map(([label, value]) =>
        h("div", { class: "stat" }, h("span", { class: "label" }, label), h("span", { class: "value" }, value)))),
    barChart(series.days, "commands", "Commands"))
  } catch (err) {
    card.append(h("p", { class: "note" }, describe(err)))
  }
  return card
}

function quotaCard(ctx, quota) {
  const rows = [["Instances", "instances", "max_instances", ""], ["Memory", "memory_mb", "max_memory_mb", " MB"], ["API keys", "api_keys", "max_api_keys", ""]]
  const card = h("section", { class: "card", "aria-labelledby": "quota-title" }, h("h2", { id: "quota-title" }, "Quota"),
    h("div", { class: "grid" }, rows.map(([label, used, limit, unit]) => {
      const share = quota.limits[limit] ? Math.min(100, (quota.used[used] / quota.limits[limit]) * 100) : 100
      const bar = h("span")
      bar.style.width = `${share.toFixed(0)}%`
      return h("div", { class: "stat" }, h("span", { class: "label" }, label),
        h("span", { class: "value" }, `${number(quota.used[used])} / ${number(quota.limits[limit])}${unit}`),
        h("div", { class: "meter", role: "progressbar", "aria-label": `${label} used`, "aria-valuemin": 0, "aria-valuemax": 100, "aria-valuenow": Math.round(share) }, bar))
    })))
  const user = session.user()
  if (user && user.is_platform_admin) card.append(quotaForm(ctx, quota))
  else card.append(h("p", { class: "hint" }, "A platform administrator can raise these limits."))
  return card
}

function quotaForm(ctx, quota) {
  const fields = {
    max_instances: field({ name: "max_instances", label: "Instances", type: "number", min: 0, value: String(quota.limits.max_instances) }),
    max_memory_mb: field({ name: "max_memory_mb", label: "Memory (MB)", type: "number", min: 0, value: String(quota.limits.max_memory_mb) }),
    max_api_keys: field({ name: "max_api_keys", label: "API keys", type: "number", min: 0, value: String(quota.limits.max_api_keys) }),
  }
  const alert = alertBox()
  const submit = h("button", { type: "submit", class: "primary" }, "Save quota")
  const form = h("form", { class: "stack", novalidate: true, "aria-label": "Edit quota" }, h("h3", {}, "Edit (platform admin)"), alert,
    h("div", { class: "grid" }, Object.values(fields).map((f) => f.wrap)), h("div", { class: "actions" }, submit))
  const errors = new FormErrors(alert, fields)
  form.addEventListener("submit", async (event) => {
    event.preventDefault()
    errors.clear()
    const body = Object.fromEntries(Object.entries(fields).map(([k, f]) => [k, Number(f.input.value)]))
    await busy(submit, async () => {
      try {
        await put(`/v1/orgs/${ctx.orgId}/quota`, body)
        toast("Saved the quota.")
        ctx.navigate(`/orgs/${ctx.orgId}/settings`)
      } catch (err) {
        errors.show(err)
      }
    })
  })
  return form
}

