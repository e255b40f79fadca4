// Signing in and staying signed in: the one module that knows how tokens travel.
//
// The access token lives in this module's memory only (never localStorage or
// sessionStorage), so a script injected into the page later cannot read one left behind.
// Today the refresh token is kept here too, in memory, from the JSON body of
// /v1/auth/login: a reload of the page signs the user out. The cookie flow (refresh token
// in an HttpOnly SameSite=Strict cookie, CSRF header from the readable rg_csrf cookie)
// replaces `refreshToken` below and makes `restore()` work across reloads.

import { ApiError } from "./errors.js"

let accessToken = null
let refreshToken = null
let refreshTimer = null
let refreshing = null
const listeners = new Set()

async function post(path, body) {
  let response
  try {
    response = await fetch(path, {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify(body),
      credentials: "same-origin",
    })
  } catch {
    throw new ApiError(0, null)
  }
  const data = response.status === 204 ? null : await response.json().catch(() => null)
  if (!response.ok) throw new ApiError(response.status, data, response.headers.get("Retry-After"))
  return data
}

function adopt(tokens) {
  accessToken = tokens.access_token
  if (tokens.refresh_token) refreshToken = tokens.refresh_token
  clearTimeout(refreshTimer)
  // Refresh a minute before the access token expires (15 min by default).
  const inMs = Math.max(10, (tokens.expires_in || 900) - 60) * 1000
  refreshTimer = setTimeout(() => { refresh() }, inMs)
}

function forget() {
  accessToken = null
  refreshToken = null
  clearTimeout(refreshTimer)
  for (const listener of listeners) listener()
}

export function token() {
  return accessToken
}

export function signedIn() {
  return accessToken !== null
}

// `listener()` runs when the session ends without the user asking (expired, revoked).
export function onSignedOut(listener) {
  listeners.add(listener)
}

export async function login(email, password, rememberMe) {
  adopt(await post("/v1/auth/login", { email, password, remember_me: Boolean(rememberMe) }))
}

export async function register(email, password, name) {
  const body = { email, password }
  if (name) body.name = name
  const reply = await post("/v1/auth/register", body)
  adopt(reply)
  return reply
}

// New tokens for the session; false (and signed out) when it has ended.
export function refresh() {
  if (!refreshToken) return Promise.resolve(false)
  if (!refreshing) {
    refreshing = post("/v1/auth/refresh", { refresh_token: refreshToken })
      .then((tokens) => { adopt(tokens); return true })
      .catch((err) => {
        if (err.status === 401) forget()
        return false
      })
      .finally(() => { refreshing = null })
  }
  return refreshing
}

// At page load: a session that survives the reload (only with the refresh cookie).
export async function restore() {
  return false
}

export async function logout() {
  const held = refreshToken
  accessToken = null
  refreshToken = null
  clearTimeout(refreshTimer)
  if (held) await post("/v1/auth/logout", { refresh_token: held }).catch(() => {})
}
