// Short messages after an action: polite for success, assertive for failure.

import { h } from "./dom.js"
import { describe } from "./errors.js"

export function toast(message, kind = "ok") {
  const region = document.getElementById("toasts")
  const close = h("button", { type: "button", "aria-label": "Dismiss" }, "×")
  const item = h("div", { class: ["toast", kind], role: kind === "error" ? "alert" : "status" },
    h("span", {}, message), close)
  close.addEventListener("click", () => item.remove())
  region.append(item)
  setTimeout(() => item.remove(), kind === "error" ? 9000 : 5000)
}

export function toastError(err) {
  toast(describe(err), "error")
}
