// The API's errors ({"error": {"code", "message", "details"}}) as sentences a person can act on.

export class ApiError extends Error {
  constructor(status, body, retryAfter) {
    const error = (body && body.error) || {}
    super(error.message || `the server answered ${status}`)
    this.status = status
    this.code = error.code || (status === 0 ? "network" : "http_" + status)
    this.details = error.details || {}
    this.fields = this.details.fields || {}
    this.retryAfter = retryAfter
  }
}

const SENTENCES = {
  network: "The RedisGate API cannot be reached. Check your connection and try again.",
  invalid_credentials: "The email or password is wrong.",
  email_taken: "An account with this email already exists. Sign in instead, or use another email.",
  token_expired: "Your session has expired. Sign in again.",
  invalid_token: "Your session is no longer valid. Sign in again.",
  session_ended: "This session has ended (you signed out, or it was ended elsewhere). Sign in again.",
  unauthenticated: "Please sign in.",
  invalid_refresh_token: "Your session has ended. Sign in again.",
  refresh_token_reused: "For your safety this session was ended (its refresh token was used twice). Sign in again.",
  insufficient_role: "Your role in this organization does not allow this. Ask an owner or admin.",
  platform_admin_only: "Only platform administrators can do this.",
  org_not_found: "This organization does not exist, or you are not a member of it.",
  not_found: "This no longer exists. It may have been deleted.",
  instance_not_running: "The instance is not running yet, so it has no statistics.",
  backend_unavailable: "The instance's Redis is not answering right now. Try again in a moment.",
  no_backend_capacity: "There is no room for another instance on this platform right now. Ask a platform administrator.",
  key_revoked: "This key is revoked; create a new one.",
  last_owner: "An organization needs at least one owner. Make someone else an owner first.",
  already_member: "This person is already a member.",
  user_not_found: "No account has this email. Ask them to register first, then add them.",
  database_unavailable: "The service is briefly unavailable (its database does not answer). Try again shortly.",
  body_too_large: "That is too much data for one request.",
  route_not_found: "The console asked for something the API does not have. Reload the page.",
  internal_error: "Something went wrong on our side.",
}

const RESOURCES = { instances: "instances", memory_mb: "MB of memory", api_keys: "API keys", organizations: "organizations" }

// One sentence for any error.
export function describe(err) {
  if (!(err instanceof ApiError)) return `Something went wrong: ${err && err.message ? err.message : err}`
  if (err.code === "quota_exceeded") {
    const d = err.details
    const what = RESOURCES[d.resource] || d.resource
    if (d.resource === "organizations") return `You already own ${d.used} of at most ${d.limit} organizations. Delete one you no longer need.`
    return `This would go over the organization's quota: it uses ${d.used} of ${d.limit} ${what}` +
      (d.requested ? ` and this needs ${d.requested} more` : "") + ". Delete something, or ask a platform administrator to raise the quota."
  }
  if (err.code === "too_many_requests") {
    return `Too many attempts. Wait ${err.retryAfter || "a few"} seconds and try again.`
  }
  if (err.code === "validation_failed") {
    const names = Object.keys(err.fields)
    if (names.length) return `Please correct: ${names.map((n) => fieldSentence(n, err.fields[n])).join(" ")}`
    return capital(err.message) + "."
  }
  if (err.code === "internal_error") return `${SENTENCES.internal_error} ${capital(err.message)}.`
  return SENTENCES[err.code] || capital(err.message) + "."
}

// "email", "is required" -> "Email is required."
export function fieldSentence(label, message) {
  const name = String(label).replace(/^limits\./, "").replace(/_/g, " ")
  let text = String(message)
  if (/^(is|must|cannot|needs|should|has|was)\b/.test(text)) text = `${capital(name)} ${text}`
  else text = capital(text)
  return /[.!?]$/.test(text) ? text : text + "."
}

export function capital(text) {
  const t = String(text || "")
  return t.charAt(0).toUpperCase() + t.slice(1)
}
