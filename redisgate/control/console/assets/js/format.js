// Numbers, sizes and times as people read them.

export function bytes(n) {
  if (n === null || n === undefined) return "—"
  const units = ["B", "KB", "MB", "GB", "TB"]
  let i = 0
  let v = Number(n)
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i += 1 }
  return `${v >= 10 || i === 0 ? Math.round(v) : v.toFixed(1)} ${units[i]}`
}

export function number(n) {
  if (n === null || n === undefined) return "—"
  return Number(n).toLocaleString("en-US")
}

export function percent(r) {
  if (r === null || r === undefined) return "—"
  return `${(r * 100).toFixed(1)} %`
}

export function dateTime(iso) {
  if (!iso) return "—"
  const d = new Date(iso)
  return d.toLocaleString("en-GB", { year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" })
}

export function ago(iso) {
  if (!iso) return "never"
  const s = Math.round((Date.now() - new Date(iso).getTime()) / 1000)
  if (s < 0) return dateTime(iso)
  if (s < 60) return "just now"
  if (s < 3600) return `${Math.round(s / 60)} min ago`
  if (s < 86400) return `${Math.round(s / 3600)} h ago`
  return `${Math.round(s / 86400)} days ago`
}
