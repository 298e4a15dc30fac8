// The search page: reads the form and checked facets, calls /api/search, renders hits and facets.
// Everything from the API is inserted as text except `snippet`, which the API sends as escaped HTML with <mark>.
"use strict";

const FACETS = ["sdg", "lang", "source", "type"];
const state = { sdgs: {}, selected: { sdg: new Set(), lang: new Set(), source: new Set(), type: new Set() }, cursor: null };
const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "text") node.textContent = v;
    else if (k === "style") Object.assign(node.style, v);
    else node.setAttribute(k, v);
  }
  for (const child of children) if (child) node.append(child);
  return node;
}

function params(withCursor) {
  const p = new URLSearchParams();
  const q = $("q").value.trim();
  if (q) p.set("q", q);
  p.set("mode", $("mode").value);
  for (const name of FACETS) for (const v of state.selected[name]) p.append(name, v);
  for (const name of ["year_from", "year_to"]) if ($(name).value) p.set(name, $(name).value);
  if (withCursor && state.cursor) p.set("cursor", state.cursor);
  return p;
}

function readUrl() {
  const p = new URLSearchParams(location.search);
  $("q").value = p.get("q") || "";
  if (p.get("mode")) $("mode").value = p.get("mode");
  for (const name of FACETS) state.selected[name] = new Set(p.getAll(name));
  for (const name of ["year_from", "year_to"]) $(name).value = p.get(name) || "";
}

function sdgChip(n, label) {
  const goal = state.sdgs[n] || {};
  return el("span", { class: "sdg-chip", style: { background: goal.colour || "#555" }, title: goal.title || "", text: label || String(n) });
}

function renderHit(hit) {
  const title = hit.url
    ? el("a", { href: hit.url, rel: "noopener", text: hit.title || hit.url })
    : el("span", { text: hit.title || hit.id });
  const snippet = el("p", { class: "snippet" });
  snippet.innerHTML = hit.snippet; // escaped by the API, with <mark> around matched words
  const badges = el("span", { class: "badges", "aria-label": "Sustainable Development Goals" });
  for (const t of hit.sdgs) badges.append(sdgChip(t.sdg, String(t.sdg)));
  const meta = el("p", { class: "meta" },
    hit.sdgs.length ? badges : null,
    el("span", { text: hit.source }),
    hit.published ? el("time", { datetime: hit.published, text: hit.published }) : null,
    hit.lang ? el("span", { text: hit.lang.toUpperCase(), lang: hit.lang }) : null,
    hit.type ? el("span", { text: hit.type }) : null);
  return el("li", {}, el("h3", {}, title), snippet, meta);
}

function renderFacets(facets) {
  for (const name of FACETS) {
    const box = document.querySelector(`#facet-${name} .options`);
    box.replaceChildren();
    const counts = { ...facets[name] };
    for (const v of state.selected[name]) if (!(v in counts)) counts[v] = 0;
    let keys = Object.keys(counts);
    if (name === "sdg") keys.sort((a, b) => a - b);
    for (const value of keys) {
      const id = `f-${name}-${value}`.replace(/[^\w-]/g, "_");
      const input = el("input", { type: "checkbox", id, value });
      input.checked = state.selected[name].has(value);
      input.addEventListener("change", () => {
        input.checked ? state.selected[name].add(value) : state.selected[name].delete(value);
        run(false);
      });
      const text = name === "sdg" ? (state.sdgs[value] ? state.sdgs[value].short : `Goal ${value}`) : value;
      const label = el("label", { for: id }, input, name === "sdg" ? sdgChip(value) : null, el("span", { text }),
        el("span", { class: "count", text: String(counts[value]) }));
      box.append(label);
    }
  }
  const years = document.querySelector("#facet-year .options");
  years.replaceChildren();
  for (const [year, n] of Object.entries(facets.year).sort((a, b) => b[0] - a[0]).slice(0, 15)) {
    const pick = el("button", { type: "button", class: "year-pick", text: `${year} (${n})` });
    pick.addEventListener("click", () => { $("year_from").value = year; $("year_to").value = year; run(false); });
    years.append(pick);
  }
}

async function run(more) {
  const region = $("results-region");
  region.setAttribute("aria-busy", "true");
  if (!more) {
    state.cursor = null;
    history.replaceState(null, "", `?${params(false)}`);
  }
  try {
    const response = await fetch(`/api/search?${params(more)}`);
    const body = await response.json();
    if (!response.ok) throw new Error(typeof body.detail === "string" ? body.detail : "invalid search");
    if (!more) $("results").replaceChildren();
    for (const hit of body.results) $("results").append(renderHit(hit));
    state.cursor = body.next_cursor;
    $("more").hidden = !state.cursor;
    const shown = $("results").children.length;
    $("status").textContent = body.total
      ? `${body.total} document${body.total === 1 ? "" : "s"}${body.query ? ` for “${body.query}”` : ""}, showing ${shown}`
      : "No documents match. Try other words or fewer filters.";
    if (!more) renderFacets(body.facets);
  } catch (err) {
    $("status").textContent = `Search failed: ${err.message}`;
  } finally {
    region.setAttribute("aria-busy", "false");
  }
}

async function init() {
  try {
    const goals = await (await fetch("/api/sdgs")).json();
    for (const g of goals) state.sdgs[String(g.sdg)] = g;
  } catch (err) {
    // The page still works without goal names: facets then show numbers only.
  }
  readUrl();
  $("search-form").addEventListener("submit", (event) => { event.preventDefault(); run(false); });
  $("mode").addEventListener("change", () => run(false));
  $("more").addEventListener("click", () => run(true));
  $("clear-filters").addEventListener("click", () => {
    for (const name of FACETS) state.selected[name].clear();
    $("year_from").value = $("year_to").value = "";
    run(false);
  });
  run(false);
}

document.addEventListener("DOMContentLoaded", init);
