// Copy buttons: the Clipboard API where the page is a secure context, else a selection copy.

import { h } from "./dom.js"
import { toast } from "./toast.js"

export async function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    try {
      await navigator.clipboard.writeText(text)
      return true
    } catch {
      // fall through to the selection copy
    }
  }
  const area = h("textarea", { readonly: true, class: "visually-hidden", "aria-hidden": "true" })
  area.value = text
  document.body.append(area)
  area.select()
  let ok = false
  try {
    ok = document.execCommand("copy")
  } catch {
    ok = false
  }
  area.remove()
  return ok
}

export function copyButton(text, label) {
  return h("button", {
    type: "button", class: "small", "aria-label": `Copy ${label}`,
    onclick: async () => {
      if (await copyText(text)) toast(`Copied ${label}.`)
      else toast(`Could not copy; select the ${label} and copy it by hand.`, "error")
    },
  }, "Copy")
}

// A value shown in full with its copy button; `name` marks it for tests and styles.
export function copyField(text, label, name) {
  return h("div", { class: "copy" }, h("code", { "data-copy": name, tabindex: "0" }, text), copyButton(text, label))
}
