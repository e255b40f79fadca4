// Who is signed in and their organizations (GET /v1/me), loaded once per sign-in.

import { get } from "./api.js"

let me = null

export async function load() {
  me = await get("/v1/me")
  return me
}

export function user() {
  return me && me.user
}

export function orgs() {
  return (me && me.orgs) || []
}

export function org(id) {
  return orgs().find((o) => o.id === id) || null
}

export function role(orgId) {
  const found = org(orgId)
  return found ? found.role : null
}

export function reset() {
  me = null
}
