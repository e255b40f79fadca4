// The console's entry: hash routes (`#/orgs/<org>/instances`), the header, and sign-in state.

import * as auth from "./auth.js"
import { h, clear } from "./dom.js"
import { describe } from "./errors.js"
import * as session from "./session.js"
import { toast } from "./toast.js"
import { can } from "./roles.js"
import * as events from "./events.js"
import * as entry from "./page-entry.js"
import * as data from "./page-data.js"
import * as instances from "./page-instances.js"
import * as instance from "./page-instance.js"
import * as keys from "./page-keys.js"
import * as org from "./page-org.js"
import * as profile from "./page-profile.js"

const ROUTES = [
  ["/", entry.landing, { public: true }],
  ["/login", entry.login, { public: true }],
  ["/register", entry.register, { public: true }],
  ["/orgs/new", org.createOrg],
  ["/orgs/:org/instances", instances.list],
  ["/orgs/:org/instances/new", instances.create],
  ["/orgs/:org/instances/:instance", instance.overview],
  ["/orgs/:org/instances/:instance/keys", keys.list],
  ["/orgs/:org/instances/:instance/data", data.data],
  ["/orgs/:org/instances/:instance/settings", instance.settings],
  ["/orgs/:org/members", org.members],
  ["/orgs/:org/audit", org.audit],
  ["/orgs/:org/settings", org.settings],
  ["/profile", profile.profile],
]

let cleanups = []
let rendering = 0

export function navigate(path) {
  if (location.hash === `#${path}`) route()
  else location.hash = path
}

function match(path) {
  const parts = path.split("/").filter(Boolean)
  for (const [pattern, page, options] of ROUTES) {
    const want = pattern.split("/").filter(Boolean)
    if (want.length !== parts.length) continue
    const params = {}
    if (want.every((w, i) => (w.startsWith(":") ? ((params[w.slice(1)] = decodeURIComponent(parts[i])), true) : w === parts[i]))) {
      return { page, params, options: options || {} }
    }
  }
  return null
}

function current() {
  const raw = location.hash.startsWith("#/") ? location.hash.slice(1) : "/"
  const [path, query = ""] = raw.split("?")
  return { path, query: new URLSearchParams(query) }
}

async function route(focus = true) {
  const ticket = ++rendering
  for (const fn of cleanups) fn()
  cleanups = []
  const { path, query } = current()
  const main = document.getElementById("main")
  const found = match(path)
  if (!found) {
    header(null)
    clear(main, h("h1", { tabindex: "-1" }, "Page not found"),
      h("p", {}, "There is nothing at this address. ", h("a", { href: "#/" }, "Go to the start page.")))
    return
  }
  if (!found.options.public && !auth.signedIn()) {
    navigate(`/login?next=${encodeURIComponent(path)}`)
    return
  }
  if (auth.signedIn() && !session.user()) {
    try {
      await session.load()
    } catch (err) {
      toast(describe(err), "error")
    }
  }
  const orgId = found.params.org || null
  if (orgId && !session.org(orgId)) {
    header(null)
    clear(main, h("h1", { tabindex: "-1" }, "Organization not found"),
      h("p", {}, "It does not exist, or you are not a member of it. ", h("a", { href: "#/" }, "Go to your organizations.")))
    return
  }
  header(orgId, path)
  events.watch(orgId || (session.orgs()[0] || {}).id || null)
  const ctx = {
    main,
    params: found.params,
    query,
    orgId,
    role: orgId ? session.role(orgId) : null,
    can: (action) => can(orgId ? session.role(orgId) : null, action),
    navigate,
    title: (text) => { document.title = `${text} · RedisGate` },
    onLeave: (fn) => cleanups.push(fn),
    stale: () => ticket !== rendering,
    refreshHeader: () => header(orgId, path),
    reload: () => { if (ticket === rendering) route(false) },
    // `fn()` after live updates of these kinds (and after a gap in them), at most every 300 ms.
    onEvent: (kinds, fn) => {
      let timer = null
      const off = events.onEvent((kind, event) => {
        if (kind !== "resync" && !kinds.includes(kind)) return
        clearTimeout(timer)
        timer = setTimeout(() => { if (ticket === rendering) fn(kind, event) }, 300)
      })
      cleanups.push(() => { off(); clearTimeout(timer) })
    },
  }
  clear(main)
  try {
    await found.page(ctx)
  } catch (err) {
    if (ticket !== rendering) return
    clear(main, h("h1", { tabindex: "-1" }, "This page could not be loaded"),
      h("p", { class: "alert", role: "alert" }, describe(err)),
      h("p", {}, h("a", { href: "#/" }, "Go to the start page.")))
  }
  if (focus && ticket === rendering) {
    const heading = main.querySelector("h1")
    if (heading) {
      heading.setAttribute("tabindex", "-1")
      heading.focus({ preventScroll: true })
    }
  }
}

function header(orgId, path = "") {
  const top = document.getElementById("top")
  const brand = h("a", { class: "brand", href: "#/" }, h("span", { class: "logo", "aria-hidden": "true" }), "RedisGate")
  if (!auth.signedIn() || !session.user()) {
    clear(top, brand, h("nav", { "aria-label": "Account" }, h("ul", {},
      h("li", {}, h("a", { href: "#/login" }, "Sign in")),
      h("li", {}, h("a", { href: "#/register" }, "Create account")))))
    return
  }
  const orgs = session.orgs()
  const selected = orgId || (orgs[0] && orgs[0].id)
  const select = h("select", { id: "org-switcher", "aria-label": "Organization" },
    orgs.map((o) => h("option", { value: o.id, selected: o.id === selected }, `${o.name} (${o.role})`)),
    h("option", { value: "new" }, "+ New organization…"))
  select.addEventListener("change", () => {
    navigate(select.value === "new" ? "/orgs/new" : `/orgs/${select.value}/instances`)
  })
  const role = session.role(selected)
  const link = (href, text) => h("li", {}, h("a", { href: `#${href}`, "aria-current": path.startsWith(href) ? "page" : null }, text))
  const nav = h("nav", { "aria-label": "Main" }, h("ul", {},
    link(`/orgs/${selected}/instances`, "Instances"),
    link(`/orgs/${selected}/members`, "Members"),
    can(role, "audit.read") ? link(`/orgs/${selected}/audit`, "Audit log") : null,
    link(`/orgs/${selected}/settings`, "Organization")))
  const signOut = h("button", { type: "button", class: "small" }, "Sign out")
  signOut.addEventListener("click", async () => {
    events.stop()
    await auth.logout()
    session.reset()
    toast("You are signed out.")
    navigate("/")
  })
  const me = session.user()
  clear(top, brand, h("div", { class: "org" }, select), nav,
    h("div", { class: "user" }, h("a", { href: "#/profile", "aria-current": path === "/profile" ? "page" : null }, me.name || me.email), signOut))
}

// Membership and organization changes (another tab, another user) reach the header at once.
events.onEvent(async (kind, event) => {
  const me = session.user()
  if (!me || !["org", "member", "resync", "access"].includes(kind)) return
  if (kind === "member" && event.id !== me.id) return
  const { path } = current()
  const orgId = match(path) && match(path).params.org
  const before = orgId ? session.role(orgId) : null
  await session.load().catch(() => {})
  if (orgId && !session.org(orgId)) {
    toast("You no longer have access to that organization.", "error")
    navigate("/")
  } else if (orgId && session.role(orgId) !== before) {
    toast(`Your role here is now ${session.role(orgId)}.`)
    route(false) // what the page offers depends on the role
  } else if (orgId) {
    header(orgId, path)
  }
})

auth.onSignedOut(() => {
  events.stop()
  session.reset()
  toast("Your session has ended. Sign in again.", "error")
  navigate(`/login?next=${encodeURIComponent(current().path)}`)
})

window.addEventListener("hashchange", () => route())
document.getElementById("skip").addEventListener("click", (event) => {
  event.preventDefault()
  const main = document.getElementById("main")
  main.focus()
})

async function start() {
  if (!auth.signedIn()) await auth.restore()
  await route(false)
}

start()
