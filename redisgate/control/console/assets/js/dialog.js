// Modal dialogs on the native <dialog> element: focus moves in and back, Escape closes.

import { h } from "./dom.js"

export function openDialog(title, build) {
  return new Promise((resolve) => {
    const opener = document.activeElement
    const heading = h("h2", { id: "dialog-title" }, title)
    const dialog = h("dialog", { "aria-labelledby": "dialog-title" }, heading)
    let result
    const done = (value) => { result = value; dialog.close() }
    dialog.append(build(done))
    dialog.addEventListener("close", () => {
      dialog.remove()
      if (opener && opener.focus) opener.focus()
      resolve(result)
    })
    document.body.append(dialog)
    dialog.showModal()
  })
}

// Resolves true when confirmed. With `typed`, the user must type that text first.
export function confirmDialog({ title, text, confirm = "Confirm", danger = false, typed = null }) {
  return openDialog(title, (done) => {
    const button = h("button", { type: "submit", class: danger ? "danger solid" : "primary", disabled: Boolean(typed) }, confirm)
    const parts = [h("p", {}, text)]
    if (typed) {
      const input = h("input", { id: "confirm-typed", autocomplete: "off", spellcheck: "false" })
      input.addEventListener("input", () => { button.disabled = input.value !== typed })
      parts.push(h("div", { class: "field" },
        h("label", { for: "confirm-typed" }, "Type ", h("strong", {}, typed), " to confirm"), input))
    }
    const form = h("form", { method: "dialog", class: "stack" }, parts,
      h("div", { class: "actions" }, button,
        h("button", { type: "button", onclick: () => done(false) }, "Cancel")))
    form.addEventListener("submit", (event) => { event.preventDefault(); done(true) })
    return form
  })
}
