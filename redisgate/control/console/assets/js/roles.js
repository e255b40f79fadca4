// What each role may do: the same table as redisgate/control/roles.py (a test compares them).
// The console hides what a role may not do; the API refuses it anyway.

export const PERMISSIONS = {
  "org.read": ["owner", "admin", "member", "viewer"],
  "org.update": ["owner", "admin"],
  "org.delete": ["owner"],
  "org.leave": ["owner", "admin", "member", "viewer"],
  "members.read": ["owner", "admin", "member", "viewer"],
  "members.manage": ["owner", "admin"],
  "members.manage_owners": ["owner"],
  "quota.read": ["owner", "admin", "member", "viewer"],
  "audit.read": ["owner", "admin"],
  "instances.read": ["owner", "admin", "member", "viewer"],
  "instances.manage": ["owner", "admin", "member"],
  "instances.browse": ["owner", "admin", "member", "viewer"],
  "usage.read": ["owner", "admin", "member", "viewer"],
  "keys.read": ["owner", "admin", "member"],
  "keys.manage": ["owner", "admin", "member"],
}

export const ROLE_TEXT = {
  owner: "Everything, including deleting the organization and managing owners.",
  admin: "Everything but deleting the organization or changing owners; reads the audit log.",
  member: "Creates, changes and deletes instances and their API keys.",
  viewer: "Sees instances, their stats and usage; changes nothing and sees no keys.",
}

export function can(role, action) {
  return Boolean(role) && (PERMISSIONS[action] || []).includes(role)
}
