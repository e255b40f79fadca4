// The six data-plane limits of a key or an instance (docs/limits.md): empty means none of
// its own (inherited), 0 suspends.

import { h } from "./dom.js"
import { field } from "./forms.js"

export const LIMITS = [
  ["ops_per_second", "Commands per second", "A token bucket; refusals read “max requests limit exceeded”."],
  ["burst", "Burst", "Commands that may come at once (at least 1; empty: one second's worth)."],
  ["max_connections", "Connections at once", ""],
  ["max_request_bytes", "Largest command (bytes)", ""],
  ["daily_commands", "Commands per UTC day", ""],
  ["daily_bytes", "Bytes per UTC day", "Request and reply bytes together."],
]

// A fieldset of the six; `fields` for FormErrors (named limits.<name>), `changes()` the
// limits object a PATCH needs (only what differs; empty → null), or null when nothing did.
export function limitsFieldset(current, legend) {
  const fields = {}
  const inputs = LIMITS.map(([name, label, hint]) => {
    const f = field({ name: `limits.${name}`, label, hint: hint || null, type: "number", min: name === "burst" ? 1 : 0, step: 1, placeholder: "no limit of its own" })
    f.input.value = current[name] === null || current[name] === undefined ? "" : String(current[name])
    fields[`limits.${name}`] = f
    return f.wrap
  })
  const wrap = h("details", { class: "limits" }, h("summary", {}, legend),
    h("p", { class: "hint" }, "Empty: no limit of its own. 0 suspends (nothing is allowed). See docs/limits.md."),
    h("div", { class: "grid" }, inputs))
  const changes = () => {
    const out = {}
    for (const [name] of LIMITS) {
      const raw = fields[`limits.${name}`].input.value.trim()
      const value = raw === "" ? null : Number(raw)
      if (value !== (current[name] ?? null)) out[name] = value
    }
    return Object.keys(out).length ? out : null
  }
  return { wrap, fields, changes }
}
