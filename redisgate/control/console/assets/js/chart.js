// A bar chart of a daily series, drawn as SVG by this code (no chart library), with the same
// figures as a table for screen readers and keyboard users.

import { h, s } from "./dom.js"
import { number } from "./format.js"

export function barChart(days, metric, label, format = number) {
  const width = 600
  const height = 180
  const left = 48
  const bottom = 22
  const values = days.map((d) => d[metric] || 0)
  const max = Math.max(1, ...values)
  const total = values.reduce((a, b) => a + b, 0)
  const step = (width - left) / Math.max(1, days.length)
  const plot = height - bottom - 8
  const peak = values.indexOf(Math.max(...values))
  const summary = total === 0
    ? `${label}: none in the last ${days.length} days.`
    : `${label}: ${format(total)} in the last ${days.length} days; the most, ${format(values[peak])}, on ${days[peak].date}.`
  if (total === 0) return h("figure", { class: "chart" }, h("figcaption", { class: "hint" }, summary))
  const svg = s("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": summary },
    s("line", { class: "axis", x1: left, y1: height - bottom, x2: width, y2: height - bottom }),
    s("text", { x: left - 6, y: 14, "text-anchor": "end" }, format(max)),
    s("text", { x: left - 6, y: height - bottom, "text-anchor": "end" }, "0"),
    days.map((d, i) => {
      const barHeight = (values[i] / max) * plot
      return s("rect", {
        class: "bar", x: left + i * step + 1, y: height - bottom - barHeight,
        width: Math.max(1, step - 2), height: barHeight,
      }, s("title", {}, `${d.date}: ${format(values[i])}`))
    }),
    days.length ? s("text", { x: left, y: height - 6 }, days[0].date) : null,
    days.length ? s("text", { x: width, y: height - 6, "text-anchor": "end" }, days[days.length - 1].date) : null)
  const table = h("details", {}, h("summary", {}, "Show as a table"),
    h("table", { class: "list" }, h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Day"), h("th", { scope: "col" }, label))),
      h("tbody", {}, days.filter((d) => d[metric]).map((d) => h("tr", {}, h("td", {}, d.date), h("td", {}, format(d[metric])))))))
  return h("figure", { class: "chart" }, svg, h("figcaption", { class: "hint" }, summary), table)
}
