// The statistics page: /api/stats drawn as inline SVG bar charts (no library), each with its data as a table
// for screen readers and copying. A bar links to the search page filtered on it.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const ACCENT = "#19486a";

function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

function table(rows, head) {
  const t = document.createElement("table");
  const tr = t.createTHead().insertRow();
  for (const h of head) tr.append(Object.assign(document.createElement("th"), { scope: "col", textContent: h }));
  const body = t.createTBody();
  for (const r of rows) {
    const row = body.insertRow();
    row.insertCell().textContent = r.label;
    row.insertCell().textContent = String(r.value);
  }
  const details = document.createElement("details");
  details.append(Object.assign(document.createElement("summary"), { textContent: "Show the numbers" }), t);
  return details;
}

// Horizontal bars: one row per item, label on the left, count at the end of the bar.
function hbars(figure, rows, name) {
  const short = (text) => (text.length > 42 ? `${text.slice(0, 41)}…` : text);
  const longest = Math.max(4, ...rows.map((r) => short(r.label).length));
  const width = 640, labelW = Math.min(300, longest * 6.4 + 14), row = 24, max = Math.max(1, ...rows.map((r) => r.value));
  const chart = svg("svg", { viewBox: `0 0 ${width} ${rows.length * row + 8}`, role: "img",
                             "aria-labelledby": `cap-${name}`, class: `bars bars-${name}` });
  rows.forEach((r, i) => {
    const y = i * row + 4, w = Math.max(r.value ? 2 : 0, (width - labelW - 60) * r.value / max);
    const link = svg("a", { href: r.href, "aria-label": `${r.label}: ${r.value} documents` });
    const label = svg("text", { x: labelW - 8, y: y + 15, "text-anchor": "end" }, short(r.label));
    label.append(svg("title", {}, r.label));
    link.append(label);
    link.append(svg("rect", { x: labelW, y, width: w, height: row - 6, rx: 2, fill: r.colour || ACCENT, "data-value": r.value }));
    link.append(svg("text", { x: labelW + w + 6, y: y + 15, class: "value" }, String(r.value)));
    chart.append(link);
  });
  figure.append(chart, table(rows, [name, "documents"]));
}

// Vertical columns along time; years without documents are shown as gaps, so the axis is honest.
function columns(figure, rows, name) {
  const width = 640, height = 220, base = height - 24, max = Math.max(1, ...rows.map((r) => r.value));
  const step = (width - 20) / Math.max(rows.length, 1), barW = Math.max(2, step * 0.7);
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-labelledby": `cap-${name}`, class: `bars bars-${name}` });
  chart.append(svg("line", { x1: 10, x2: width - 10, y1: base, y2: base, stroke: "#999" }));
  const every = Math.ceil(rows.length / 12);
  rows.forEach((r, i) => {
    const x = 10 + i * step + (step - barW) / 2, h = (base - 20) * r.value / max;
    const link = svg("a", { href: r.href, "aria-label": `${r.label}: ${r.value} documents` });
    link.append(svg("rect", { x, y: base - h, width: barW, height: h, fill: ACCENT, "data-value": r.value }));
    if (r.value) link.append(svg("text", { x: x + barW / 2, y: base - h - 4, "text-anchor": "middle", class: "value" }, String(r.value)));
    if (i % every === 0) link.append(svg("text", { x: x + barW / 2, y: height - 6, "text-anchor": "middle" }, r.label));
    chart.append(link);
  });
  figure.append(chart, table(rows, [name, "documents"]));
}

function sorted(counts, name) {
  return Object.entries(counts).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .map(([k, v]) => ({ label: k, value: v, href: `/?${name}=${encodeURIComponent(k)}` }));
}

async function init() {
  const status = document.getElementById("status");
  try {
    const [stats, goals] = await Promise.all([fetch("/api/stats").then((r) => r.json()), fetch("/api/sdgs").then((r) => r.json())]);
    status.textContent = `${stats.documents} searchable documents, ${Object.keys(stats.source).length} sources, ` +
      `${Object.keys(stats.lang).length} languages`;
    hbars(document.getElementById("chart-sdg"), goals.map((g) => ({
      label: `${g.sdg} ${g.short}`, value: stats.sdg[String(g.sdg)] || 0, colour: g.colour, href: `/?sdg=${g.sdg}`,
    })), "sdg");
    const years = Object.keys(stats.year).map(Number).sort((a, b) => a - b);
    const span = [];
    for (let y = years[0]; years.length && y <= years[years.length - 1]; y++) {
      span.push({ label: String(y), value: stats.year[String(y)] || 0, href: `/?year_from=${y}&year_to=${y}` });
    }
    columns(document.getElementById("chart-year"), span, "year");
    hbars(document.getElementById("chart-lang"), sorted(stats.lang, "lang").map((r) => ({ ...r, label: r.label.toUpperCase() })), "lang");
    hbars(document.getElementById("chart-source"), sorted(stats.source, "source"), "source");
    hbars(document.getElementById("chart-type"), sorted(stats.type, "type"), "type");
  } catch (err) {
    status.textContent = `Statistics are not available: ${err.message}`;
  }
}

document.addEventListener("DOMContentLoaded", init);
