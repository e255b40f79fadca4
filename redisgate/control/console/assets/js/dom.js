// Building the page from data without innerHTML: every value becomes a text node or an
// attribute, so nothing the API returns is ever parsed as markup.

const PROPS = new Set(["value", "checked", "selected", "disabled", "hidden"])

export function h(tag, attrs, ...children) {
  const el = document.createElement(tag)
  setAttrs(el, attrs)
  append(el, children)
  return el
}

const SVG = "http://www.w3.org/2000/svg"

export function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG, tag)
  setAttrs(el, attrs)
  append(el, children)
  return el
}

function setAttrs(el, attrs) {
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue
    if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value)
    else if (key === "class") el.setAttribute("class", Array.isArray(value) ? value.filter(Boolean).join(" ") : value)
    else if (PROPS.has(key)) {
      // also as the default, so a form's reset() comes back to it
      if (key === "checked" || key === "selected") el.setAttribute(key, "")
      if (key === "value" && el.tagName === "INPUT") el.setAttribute("value", String(value))
      el[key] = value
    }
    else el.setAttribute(key, value === true ? "" : String(value))
  }
}

export function append(el, ...children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue
    el.append(child instanceof Node ? child : document.createTextNode(String(child)))
  }
  return el
}

export function clear(el, ...children) {
  el.replaceChildren()
  return append(el, children)
}

let ids = 0
export function uid(prefix = "id") {
  ids += 1
  return `${prefix}-${ids}`
}

export function skeleton(lines = 3, tall = false) {
  return h("div", { "aria-busy": "true", "aria-label": "Loading" },
    Array.from({ length: lines }, () => h("span", { class: tall ? "skeleton tall" : "skeleton" })))
}

export function empty(title, text, ...actions) {
  return h("div", { class: "empty" }, h("h2", {}, title), h("p", {}, text), h("div", { class: "actions" }, actions))
}
