// Form fields with a label, a hint and an error slot tied together for screen readers, and
// the API's per-field errors (details.fields) shown where they belong.

import { h, uid } from "./dom.js"
import { describe, fieldSentence } from "./errors.js"

// A labelled control. `control` is "input" (default), "select" or "textarea".
export function field({ name, label, control = "input", hint, options, ...attrs }) {
  const id = uid(name)
  const hintId = hint ? `${id}-hint` : null
  const errorId = `${id}-error`
  const describedBy = [hintId, errorId].filter(Boolean).join(" ")
  let input
  if (control === "select") {
    input = h("select", { id, name, "aria-describedby": describedBy, ...attrs },
      options.map(([value, text]) => h("option", { value, selected: String(attrs.value) === String(value) }, text)))
  } else if (control === "textarea") {
    input = h("textarea", { id, name, "aria-describedby": describedBy, ...attrs })
  } else {
    input = h("input", { id, name, "aria-describedby": describedBy, ...attrs })
  }
  const error = h("p", { class: "error-text", id: errorId })
  const wrap = h("div", { class: "field", "data-field": name },
    h("label", { for: id }, label), hint ? h("p", { class: "hint", id: hintId }, hint) : null, input, error)
  return { wrap, input, error, name, label }
}

export function checkbox({ name, label, checked = false }) {
  const id = uid(name)
  const input = h("input", { type: "checkbox", id, name, checked })
  return { wrap: h("div", { class: "check" }, input, h("label", { for: id }, label)), input, name, label }
}

// Wires a form: `fields` by API field name, an alert for errors that name no field.
export class FormErrors {
  constructor(alert, fields) {
    this.alert = alert
    this.fields = fields
  }

  clear() {
    this.alert.textContent = ""
    for (const f of Object.values(this.fields)) {
      if (!f.error) continue
      f.error.textContent = ""
      f.input.removeAttribute("aria-invalid")
    }
  }

  set(name, message) {
    const f = this.fields[name]
    if (!f || !f.error) return false
    f.error.textContent = fieldSentence(f.label, message)
    f.input.setAttribute("aria-invalid", "true")
    return true
  }

  // Show an ApiError: at its fields when it names them, else in the alert. Focus goes to
  // the first bad field (or the alert).
  show(err, extra = {}) {
    this.clear()
    const named = Object.entries({ ...err.fields, ...extra })
    const unplaced = named.filter(([name, message]) => !this.set(name, message))
    if (named.length === 0 || unplaced.length) this.alert.textContent = describe(err)
    const first = Object.values(this.fields).find((f) => f.input && f.input.getAttribute("aria-invalid") === "true")
    if (first) first.input.focus()
    else this.alert.focus()
  }
}

export function alertBox() {
  return h("div", { class: "alert", role: "alert", tabindex: "-1" })
}

// Disables the submit button while `work` runs.
export async function busy(button, work) {
  const text = button.textContent
  button.disabled = true
  button.setAttribute("aria-busy", "true")
  try {
    return await work()
  } finally {
    button.disabled = false
    button.removeAttribute("aria-busy")
    button.textContent = text
  }
}
