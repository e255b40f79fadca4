// Signing in and staying signed in: the one module that knows how tokens travel.
//
// The access token lives in this module's memory only (never localStorage or
// sessionStorage), so a script injected into the page later finds none left behind. The
// refresh token never reaches a script at all: login and registration ask for it as a cookie
// (`"cookie": true`: rg_refresh, HttpOnly, SameSite=Strict, Path=/v1/auth), and refresh and
// logout send that cookie with the double-submit header X-CSRF-Token, the value of the
// readable rg_csrf cookie. So a reload keeps the session: `restore()` refreshes from the
// cookie. (API users keep the JSON body flow; the console never uses it.)

import { ApiError } from "./errors.js"

let accessToken = null
let refreshTimer = null
let refreshing = null
const listeners = new Set()

const CSRF_COOKIE = "rg_csrf"

function csrfToken() {
  const found = document.cookie.split("; ").find((c) => c.startsWith(`${CSRF_COOKIE}=`))
  return found ? decodeURIComponent(found.slice(CSRF_COOKIE.length + 1)) : null
}

async function post(path, body) {
  const headers = { "Content-Type": "application/json", Accept: "application/json" }
  const csrf = csrfToken()
  if (csrf) headers["X-CSRF-Token"] = csrf
  let response
  try {
    response = await fetch(path, {
      method: "POST",
      headers,
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
  clearTimeout(refreshTimer)
  // Refresh a minute before the access token expires (15 min by default).
  const inMs = Math.max(10, (tokens.expires_in || 900) - 60) * 1000
  refreshTimer = setTimeout(() => { refresh() }, inMs)
}

function forget() {
  accessToken = null
  clearTimeout(refreshTimer)
  for (const listener of listeners) listener()
}

export function token() {
  return accessToken
}

// The API refused the access token for good (the session ended elsewhere): sign out here.
export function ended() {
  if (accessToken) forget()
}

export function signedIn() {
  return accessToken !== null
}

// `listener()` runs when the session ends without the user asking (expired, revoked).
export function onSignedOut(listener) {
  listeners.add(listener)
}

export async function login(email, password, rememberMe) {
  adopt(await post("/v1/auth/login", { email, password, remember_me: Boolean(rememberMe), cookie: true }))
}

export async function register(email, password, name) {
  const body = { email, password, cookie: true }
  if (name) body.name = name
  const reply = await post("/v1/auth/register", body)
  adopt(reply)
  return reply
}

// New tokens for the session (from the refresh cookie); false when it has ended, and then the
// signed-out listeners run if the user was signed in.
export function refresh() {
  if (!csrfToken()) {
    if (accessToken) forget()
    return Promise.resolve(false)
  }
  if (!refreshing) {
    refreshing = post("/v1/auth/refresh", {})
      .then((tokens) => { adopt(tokens); return true })
      .catch((err) => {
        if (err.status === 401 || err.status === 403) {
          if (accessToken) forget()
          return false
        }
        return accessToken !== null // a network hiccup: keep the session, try again later
      })
      .finally(() => { refreshing = null })
  }
  return refreshing
}

// At page load: the session of the refresh cookie, if there is a live one.
export async function restore() {
  return csrfToken() ? refresh() : false
}

export async function logout() {
  accessToken = null
  clearTimeout(refreshTimer)
  if (csrfToken()) await post("/v1/auth/logout", {}).catch(() => {})
}
