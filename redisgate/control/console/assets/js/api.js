// Every call to the /v1 API: the bearer token, JSON both ways, errors as ApiError, and one
// refresh-and-retry when the access token has expired.

import * as auth from "./auth.js"
import { ApiError } from "./errors.js"

export async function api(method, path, body, retried = false) {
  const headers = { Accept: "application/json" }
  const held = auth.token()
  if (held) headers.Authorization = `Bearer ${held}`
  if (body !== undefined) headers["Content-Type"] = "application/json"
  let response
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
    })
  } catch {
    throw new ApiError(0, null)
  }
  const data = response.status === 204 ? null : await response.json().catch(() => null)
  if (response.ok) return data
  const err = new ApiError(response.status, data, response.headers.get("Retry-After"))
  if (response.status === 401 && held && !retried && err.code === "token_expired") {
    if (await auth.refresh()) return api(method, path, body, true)
  }
  if (response.status === 401 && held) auth.ended() // back to sign-in, with a message
  throw err
}

export const get = (path) => api("GET", path)
export const post = (path, body) => api("POST", path, body === undefined ? {} : body)
export const patch = (path, body) => api("PATCH", path, body)
export const put = (path, body) => api("PUT", path, body)
export const del = (path) => api("DELETE", path)

// Every page of a paged list (limit 200 each, a few pages at most in practice).
export async function all(path, most = 2000) {
  const items = []
  let cursor = null
  do {
    const sep = path.includes("?") ? "&" : "?"
    const page = await get(`${path}${sep}limit=200${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`)
    items.push(...page.items)
    cursor = page.next_cursor
  } while (cursor && items.length < most)
  return items
}
