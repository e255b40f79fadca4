// The signed-in user: name, password, and their sessions.

import { all, del, patch } from "./api.js"
import { confirmDialog } from "./dialog.js"
import { h, append, clear, skeleton } from "./dom.js"
import { describe } from "./errors.js"
import { FormErrors, alertBox, busy, field } from "./forms.js"
import { ago, dateTime } from "./format.js"
import * as session from "./session.js"
import { toast } from "./toast.js"

export async function profile(ctx) {
  ctx.title("Profile")
  const user = session.user()
  append(ctx.main, h("h1", {}, "Profile"), h("p", { class: "hint" }, `Signed in as ${user.email}.`))
  append(ctx.main, nameCard(ctx, user), passwordCard(ctx, user))
  const sessions = h("section", { class: "card", "aria-labelledby": "sessions-title" }, h("h2", { id: "sessions-title" }, "Sessions"), skeleton(3))
  append(ctx.main, sessions)
  const refresh = async () => {
    const rows = await all("/v1/me/sessions")
    if (ctx.stale()) return
    clear(sessions, h("h2", { id: "sessions-title" }, "Sessions"),
      h("p", { class: "hint" }, "Where you are signed in. End any session you do not recognise."),
      h("table", { class: "list" }, h("thead", {}, h("tr", {}, ["Browser", "From", "Started", "Last used", ""].map((t) => h("th", { scope: "col" }, t || h("span", { class: "visually-hidden" }, "Actions"))))),
        h("tbody", {}, rows.map((s) => h("tr", {},
          h("td", { "data-label": "Browser", class: "wrap" }, s.user_agent || "unknown", s.current ? [" ", h("span", { class: "badge active" }, "this session")] : null),
          h("td", { "data-label": "From" }, s.client_addr || "—"),
          h("td", { "data-label": "Started" }, dateTime(s.created_at)),
          h("td", { "data-label": "Last used" }, ago(s.last_used_at)),
          h("td", {}, s.current ? null : h("button", { type: "button", class: "small danger", "aria-label": `End session from ${s.client_addr}`, onclick: async () => {
            if (!await confirmDialog({ title: "End this session?", text: "That browser is signed out at its next request.", confirm: "End session", danger: true })) return
            try {
              await del(`/v1/me/sessions/${s.id}`)
              toast("Session ended.")
              await refresh()
            } catch (err) {
              toast(describe(err), "error")
            }
          } }, "End")))))))
  }
  await refresh()
}

function nameCard(ctx, user) {
  const name = field({ name: "name", label: "Name", value: user.name, maxlength: 200, autocomplete: "name" })
  const alert = alertBox()
  const submit = h("button", { type: "submit", class: "primary" }, "Save name")
  const form = h("form", { class: "stack", novalidate: true }, alert, name.wrap, h("div", { class: "actions" }, submit))
  const errors = new FormErrors(alert, { name })
  form.addEventListener("submit", async (event) => {
    event.preventDefault()
    await busy(submit, async () => {
      try {
        await patch("/v1/me", { name: name.input.value.trim() })
        await session.load()
        ctx.refreshHeader()
        toast("Saved your name.")
      } catch (err) {
        errors.show(err)
      }
    })
  })
  return h("section", { class: "card", "aria-labelledby": "name-title" }, h("h2", { id: "name-title" }, "Name"), form)
}

function passwordCard(ctx, user) {
  const current = field({ name: "current_password", label: "Current password", type: "password", autocomplete: "current-password", required: true })
  const next = field({ name: "password", label: "New password", type: "password", autocomplete: "new-password", required: true,
    hint: "At least 10 characters, not a common password. Your other sessions end when it changes." })
  const alert = alertBox()
  const submit = h("button", { type: "submit", class: "primary" }, "Change password")
  const form = h("form", { class: "stack", novalidate: true }, h("input", { type: "text", name: "username", autocomplete: "username", value: user.email, hidden: true, "aria-hidden": "true", tabindex: "-1" }),
    alert, current.wrap, next.wrap, h("div", { class: "actions" }, submit))
  const errors = new FormErrors(alert, { current_password: current, password: next })
  form.addEventListener("submit", async (event) => {
    event.preventDefault()
    errors.clear()
    if (!current.input.value) return errors.set("current_password", "is required")
    if (next.input.value.length < 10) return errors.set("password", "must be at least 10 characters")
    await busy(submit, async () => {
      try {
        await patch("/v1/me", { current_password: current.input.value, password: next.input.value })
        form.reset()
        toast("Password changed; your other sessions were ended.")
        ctx.navigate("/profile")
      } catch (err) {
        errors.show(err)
      }
    })
  })
  return h("section", { class: "card", "aria-labelledby": "password-title" }, h("h2", { id: "password-title" }, "Password"), form)
}

