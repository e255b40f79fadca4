// An instance's API keys: the list, a scope builder to create one, the token shown once,
// and revocation.

import { all, del, patch, post } from "./api.js"
import { copyField } from "./copy.js"
import { confirmDialog, openDialog } from "./dialog.js"
import { h, append, clear, empty, skeleton } from "./dom.js"
import { describe } from "./errors.js"
import { FormErrors, alertBox, busy, field } from "./forms.js"
import { ago, dateTime } from "./format.js"
import { instanceHead, instancePath, loadInstance } from "./page-instance.js"
import { limitsFieldset } from "./limits.js"
import { snippets } from "./snippets.js"
import { toast } from "./toast.js"

const PRESETS = [
  ["full", "Full access", "Every command on every key and channel, except administration."],
  ["read-only", "Read only", "Reads every key; writes nothing."],
  ["write-only", "Write only", "Writes keys; reads none of them back."],
  ["pubsub-only", "Pub/sub only", "Publishes and subscribes to channels; no keys."],
]

const EXPIRIES = [
  ["", "Never"],
  ["1", "In 1 day"],
  ["7", "In 7 days"],
  ["30", "In 30 days"],
  ["90", "In 90 days"],
]

function keyState(key) {
  if (key.revoked_at) return ["revoked", "revoked"]
  if (key.expires_at && new Date(key.expires_at) <= new Date()) return ["expired", "expired"]
  return ["active", "active"]
}

export async function list(ctx) {
  ctx.title("API keys")
  const instance = await loadInstance(ctx)
  ctx.title(`${instance.name}: API keys`)
  append(ctx.main, instanceHead(ctx, instance, "keys"))
  if (!ctx.can("keys.read")) {
    append(ctx.main, h("p", { class: "note" }, `Your role (${ctx.role}) cannot see API keys.`))
    return
  }
  const listHolder = h("section", { "aria-labelledby": "keys-title" }, h("h2", { id: "keys-title" }, "Keys"), skeleton(3, true))
  append(ctx.main, listHolder)
  if (ctx.can("keys.manage")) append(ctx.main, createForm(ctx, instance, () => refresh()))
  const refresh = async () => {
    const keys = await all(`${instancePath(ctx)}/keys`)
    if (ctx.stale()) return
    const title = listHolder.querySelector("h2")
    if (!keys.length) {
      clear(listHolder, title, empty("No API keys yet", "A client connects with an API key as its password. Create one below; its token is shown once."))
      return
    }
    clear(listHolder, title, keyTable(ctx, keys, refresh))
  }
  ctx.onEvent(["key"], () => refresh().catch(() => {}))
  await refresh()
}

function keyTable(ctx, keys, refresh) {
  return h("table", { class: "list" },
    h("caption", { class: "visually-hidden" }, "API keys of this instance"),
    h("thead", {}, h("tr", {}, ["Name", "Id", "Scopes", "Last used", "Expires", "State", ""].map((t) => h("th", { scope: "col" }, t || h("span", { class: "visually-hidden" }, "Actions"))))),
    h("tbody", {}, keys.map((key) => {
      const [state, cls] = keyState(key)
      const manage = ctx.can("keys.manage") && state !== "revoked"
      const revoke = manage
        ? h("div", { class: "actions" },
          h("button", { type: "button", class: "small", "aria-label": `Edit ${key.name}`, onclick: () => editKey(ctx, key, refresh) }, "Edit"),
          h("button", { type: "button", class: "small danger", "aria-label": `Revoke ${key.name}`, onclick: () => revokeKey(ctx, key, refresh) }, "Revoke"))
        : null
      return h("tr", { "data-key": key.id },
        h("td", { "data-label": "Name" }, key.name),
        h("td", { "data-label": "Id" }, h("code", {}, key.id)),
        h("td", { "data-label": "Scopes", class: "wrap" }, h("code", {}, key.scopes)),
        h("td", { "data-label": "Last used" }, ago(key.last_used_at)),
        h("td", { "data-label": "Expires" }, key.expires_at ? dateTime(key.expires_at) : "never"),
        h("td", { "data-label": "State" }, h("span", { class: ["badge", cls] }, state)),
        h("td", {}, revoke))
    })))
}

// Rename or re-scope a key: its open connections follow the new scope from their next command.
function editKey(ctx, key, refresh) {
  return openDialog(`Edit ${key.name}`, (done) => {
    const name = field({ name: "name", label: "Name", value: key.name, maxlength: 100, required: true })
    const rules = field({ name: "scopes", label: "ACL rules", control: "textarea", spellcheck: "false",
      hint: "Connections using the key follow the new rules from their next command." })
    rules.input.value = key.scopes
    const limits = limitsFieldset(key.limits, "Limits of this key")
    const alert = alertBox()
    const submit = h("button", { type: "submit", class: "primary" }, "Save key")
    const form = h("form", { class: "stack", novalidate: true }, alert, name.wrap, rules.wrap, limits.wrap,
      h("div", { class: "actions" }, submit, h("button", { type: "button", onclick: () => done(false) }, "Cancel")))
    const errors = new FormErrors(alert, { name, scopes: rules, ...limits.fields })
    form.addEventListener("submit", async (event) => {
      event.preventDefault()
      errors.clear()
      const change = {}
      if (name.input.value.trim() !== key.name) change.name = name.input.value.trim()
      if (rules.input.value.trim() !== key.scopes) change.scopes = rules.input.value
      const limitChanges = limits.changes()
      if (limitChanges) change.limits = limitChanges
      if (!Object.keys(change).length) return done(false)
      await busy(submit, async () => {
        try {
          await patch(`${instancePath(ctx)}/keys/${encodeURIComponent(key.id)}`, change)
          toast(`Saved ${change.name || key.name}.`)
          done(true)
          await refresh()
        } catch (err) {
          if (err.fields.scopes) {
            errors.show(err, { scopes: String(err.fields.scopes).replace(/ at (\d+)$/, " (column $1)") })
            if (Number.isInteger(err.details.position)) pointAt(rules.input, err.details.position)
          } else {
            errors.show(err)
          }
        }
      })
    })
    return form
  })
}

async function revokeKey(ctx, key, refresh) {
  const ok = await confirmDialog({
    title: `Revoke ${key.name}?`,
    text: "Clients using this key are disconnected within a second and cannot connect again. This cannot be undone.",
    confirm: "Revoke key", danger: true,
  })
  if (!ok) return
  try {
    await del(`${instancePath(ctx)}/keys/${encodeURIComponent(key.id)}`)
    toast(`Revoked ${key.name}.`)
    await refresh()
  } catch (err) {
    toast(describe(err), "error")
  }
}

function createForm(ctx, instance, refresh) {
  const name = field({ name: "name", label: "Name", required: true, maxlength: 100, placeholder: "web-app", hint: "Say which app or person uses it." })
  const mode = "scope-mode"
  const radios = PRESETS.map(([value, label, text], i) => h("label", {},
    h("input", { type: "radio", name: mode, value, checked: i === 0 }),
    h("span", {}, h("strong", {}, label), ` — ${text}`)))
  const customRadio = h("label", {}, h("input", { type: "radio", name: mode, value: "custom" }),
    h("span", {}, h("strong", {}, "Custom rules"), " — Redis ACL rules, e.g. ", h("code", {}, "+@read ~cache:*")))
  const prefix = field({ name: "prefix", label: "Only keys starting with (optional)", placeholder: "app1:", maxlength: 200,
    hint: "Limits the preset to keys with this prefix; commands over the whole keyspace (KEYS, SCAN, FLUSHDB) are then refused." })
  const rules = field({ name: "scopes", label: "ACL rules", control: "textarea", spellcheck: "false", placeholder: "+@read +@write ~app:* resetchannels",
    hint: "Commands (+get, +@read, -@dangerous), key patterns (~app:*, %R~logs:*), channels (&news.*). See docs/scopes.md." })
  rules.wrap.hidden = true
  const scopeSet = h("fieldset", {}, h("legend", {}, "What the key may do"), h("div", { class: "choices" }, radios, customRadio), prefix.wrap, rules.wrap)
  const chosen = () => scopeSet.querySelector(`input[name="${mode}"]:checked`).value
  scopeSet.addEventListener("change", (event) => {
    if (event.target.name !== mode) return
    const custom = chosen() === "custom"
    rules.wrap.hidden = !custom
    prefix.wrap.hidden = custom
  })
  const expiry = field({ name: "expires_at", label: "Expires", control: "select", options: EXPIRIES, value: "" })
  const alert = alertBox()
  const submit = h("button", { type: "submit", class: "primary" }, "Create key")
  const form = h("form", { class: "stack", novalidate: true }, alert, name.wrap, scopeSet, expiry.wrap, h("div", { class: "actions" }, submit))
  const errors = new FormErrors(alert, { name, prefix, scopes: rules, expires_at: expiry })
  form.addEventListener("submit", async (event) => {
    event.preventDefault()
    errors.clear()
    if (!name.input.value.trim()) {
      errors.set("name", "is required")
      name.input.focus()
      return
    }
    const body = { name: name.input.value.trim() }
    const scope = chosen()
    if (scope === "custom") {
      if (!rules.input.value.trim()) {
        errors.set("scopes", "are required for custom rules (or choose a preset)")
        rules.input.focus()
        return
      }
      body.scopes = rules.input.value
    } else {
      body.preset = scope
      if (prefix.input.value.trim()) body.prefix = prefix.input.value.trim()
    }
    if (expiry.input.value) body.expires_at = new Date(Date.now() + Number(expiry.input.value) * 86400000).toISOString()
    await busy(submit, async () => {
      try {
        const made = await post(`${instancePath(ctx)}/keys`, body)
        form.reset()
        rules.wrap.hidden = true
        prefix.wrap.hidden = false
        await refresh()
        await showToken(made, instance)
      } catch (err) {
        if (err.fields.scopes && scope === "custom") {
          errors.show(err, { scopes: String(err.fields.scopes).replace(/ at (\d+)$/, " (column $1)") })
          if (Number.isInteger(err.details.position)) pointAt(rules.input, err.details.position)
        } else {
          errors.show(err)
        }
      }
    })
  })
  return h("section", { class: "card", "aria-labelledby": "new-key-title" }, h("h2", { id: "new-key-title" }, "Create an API key"), form)
}

// Select the rule the API's column points at, so the user sees where the problem is.
function pointAt(textarea, position) {
  const text = textarea.value
  const start = Math.max(0, Math.min(text.length, position - 1))  // the API's column is 1-based
  let end = text.indexOf(" ", start)
  if (end === -1) end = text.length
  textarea.focus()
  textarea.setSelectionRange(start, Math.max(start + 1, end))
}

// The token, once: copy buttons for it, the redis-cli line, the URL, and every client's
// snippet with the token filled in.
function showToken(key, instance) {
  const list = snippets(instance, key.token)
  const code = h("pre", { class: "code", tabindex: "0", "aria-label": "Code with this key" })
  const select = h("select", { id: "token-snippet" }, list.map(([name], i) => h("option", { value: String(i) }, name)))
  const showSnippet = () => { code.textContent = list[Number(select.value)][2] }
  select.addEventListener("change", showSnippet)
  showSnippet()
  return openDialog(`Key ${key.name} created`, (done) => h("div", { class: "stack" },
    h("p", { class: "note" }, "Copy the token now: this is the only time it is shown. Only its hash is stored."),
    h("div", { class: "field" }, h("span", { class: "label" }, "Token"), copyField(key.token, "token", "token")),
    h("div", { class: "field" }, h("span", { class: "label" }, "redis-cli"), copyField(`redis-cli -u ${key.url}`, "redis-cli command", "key-redis-cli")),
    h("div", { class: "field" }, h("span", { class: "label" }, "Connection URL"), copyField(key.url, "connection URL", "key-url")),
    h("details", {}, h("summary", {}, "Code for your client, with this key"),
      h("div", { class: "field" }, h("label", { for: "token-snippet" }, "Client"), select), code),
    h("div", { class: "actions" }, h("button", { type: "button", class: "primary", onclick: () => done(true) }, "I have copied it"))))
}
