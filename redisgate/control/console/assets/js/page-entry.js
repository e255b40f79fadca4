// The start page, sign in and create account.

import * as auth from "./auth.js"
import { h, append } from "./dom.js"
import { FormErrors, alertBox, busy, checkbox, field } from "./forms.js"
import * as session from "./session.js"
import { toast } from "./toast.js"

function home(ctx) {
  const first = session.orgs()[0]
  ctx.navigate(first ? `/orgs/${first.id}/instances` : "/orgs/new")
}

export async function landing(ctx) {
  if (auth.signedIn()) return home(ctx)
  ctx.title("Redis for every team")
  append(ctx.main,
    h("section", { class: "hero" },
      h("h1", {}, "Your own Redis in under a minute"),
      h("p", { class: "lead" },
        "RedisGate gives each team its own Redis instances behind one gateway: API keys with scopes, " +
        "rate limits and quotas, an HTTP API for serverless code, and usage you can see."),
      h("div", { class: "actions" },
        h("a", { class: "button primary", href: "#/register" }, "Create an account"),
        h("a", { class: "button", href: "#/login" }, "Sign in"))),
    h("section", { class: "features", "aria-label": "What you get" },
      feature("Any Redis client", "redis-cli, redis-py, ioredis, go-redis, Jedis: connect with a URL, as to Redis itself."),
      feature("Keys with scopes", "Give each app a key that may only read, only write, or only touch keys under a prefix."),
      feature("HTTP for serverless", "Edge functions call the same instance over HTTPS with the Upstash SDKs."),
      feature("Limits and usage", "Rate limits, daily quotas and per-day usage for every instance and key.")),
    h("p", {}, "Working from code? The API reference is at ", h("a", { href: "/docs" }, "/docs"), "."))
}

function feature(title, text) {
  return h("div", { class: "card" }, h("h2", {}, title), h("p", {}, text))
}

function authCard(title, form, footer) {
  return h("div", { class: "card auth-card" }, h("h1", {}, title), form, h("p", {}, footer))
}

export async function login(ctx) {
  if (auth.signedIn()) return home(ctx)
  ctx.title("Sign in")
  const email = field({ name: "email", label: "Email", type: "email", autocomplete: "username", required: true })
  const password = field({ name: "password", label: "Password", type: "password", autocomplete: "current-password", required: true })
  const remember = checkbox({ name: "remember_me", label: "Keep me signed in for 30 days" })
  const alert = alertBox()
  const submit = h("button", { type: "submit", class: "primary" }, "Sign in")
  const form = h("form", { class: "stack", novalidate: true }, alert, email.wrap, password.wrap, remember.wrap, submit)
  const errors = new FormErrors(alert, { email, password })
  form.addEventListener("submit", async (event) => {
    event.preventDefault()
    errors.clear()
    const missing = {}
    if (!email.input.value.trim()) missing.email = "is required"
    if (!password.input.value) missing.password = "is required"
    if (Object.keys(missing).length) {
      for (const [name, message] of Object.entries(missing)) errors.set(name, message)
      return
    }
    await busy(submit, async () => {
      try {
        await auth.login(email.input.value.trim(), password.input.value, remember.input.checked)
        await session.load()
        const next = ctx.query.get("next")
        if (next && next.startsWith("/orgs/") && !next.startsWith("/orgs/new")) ctx.navigate(next)
        else home(ctx)
      } catch (err) {
        errors.show(err)
      }
    })
  })
  append(ctx.main, authCard("Sign in", form,
    ["New to RedisGate? ", h("a", { href: "#/register" }, "Create an account"), "."]))
}

export async function register(ctx) {
  if (auth.signedIn()) return home(ctx)
  ctx.title("Create an account")
  const name = field({ name: "name", label: "Your name (optional)", autocomplete: "name", maxlength: 200 })
  const email = field({ name: "email", label: "Email", type: "email", autocomplete: "username", required: true })
  const password = field({
    name: "password", label: "Password", type: "password", autocomplete: "new-password", required: true,
    hint: "At least 10 characters. A few unrelated words work well; common passwords are refused.",
  })
  const alert = alertBox()
  const submit = h("button", { type: "submit", class: "primary" }, "Create account")
  const form = h("form", { class: "stack", novalidate: true }, alert, name.wrap, email.wrap, password.wrap, submit)
  const errors = new FormErrors(alert, { name, email, password })
  form.addEventListener("submit", async (event) => {
    event.preventDefault()
    errors.clear()
    const missing = {}
    if (!email.input.value.trim()) missing.email = "is required"
    if (password.input.value.length < 10) missing.password = "must be at least 10 characters"
    if (Object.keys(missing).length) {
      for (const [n, message] of Object.entries(missing)) errors.set(n, message)
      ;(missing.email ? email : password).input.focus()
      return
    }
    await busy(submit, async () => {
      try {
        const reply = await auth.register(email.input.value.trim(), password.input.value, name.input.value.trim())
        await session.load()
        toast("Welcome to RedisGate! Create your first instance.")
        ctx.navigate(`/orgs/${reply.org.id}/instances`)
      } catch (err) {
        if (err.code === "email_taken") errors.show(err, { email: "is already registered: sign in instead, or use another email" })
        else errors.show(err)
      }
    })
  })
  append(ctx.main, authCard("Create your account", form,
    ["Already have an account? ", h("a", { href: "#/login" }, "Sign in"), "."]))
}
