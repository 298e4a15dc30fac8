// The search page: reads the form and checked facets, calls /api/search, renders hits, facets and result pages;
// with ?doc=ID in the address it shows that document: its text, SDG evidence and similar documents.
// Everything from the API is inserted as text except `snippet`, which the API sends as escaped HTML with <mark>.
"use strict";

const FACETS = ["sdg", "lang", "source", "type"];
const PAGE_SIZE = 10;
const state = { sdgs: {}, selected: { sdg: new Set(), lang: new Set(), source: new Set(), type: new Set() },
                cursors: [null], page: 0, total: 0 };
const $ = (id) => document.getElementById(id);

// Only http(s) links from documents: a `javascript:` URL in the data must never become a clickable link.
function safeUrl(url) {
  return typeof url === "string" && /^https?:\/\//i.test(url) ? url : "";
}

// The reason a call failed, in words: FastAPI's `detail` (a message, or a list of validation errors naming the
// parameter), or the status line when the answer is not JSON (a proxy's "502 Bad Gateway" page, say).
function problem(response, body) {
  const detail = body && body.detail;
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) return detail.map((d) => `${(d.loc || []).slice(1).join(" ")}: ${d.msg}`).join("; ");
  return `the server answered ${response.status} ${response.statusText}`.trim();
}

async function getJson(url, options) {
  const response = await fetch(url, options);
  const body = await response.json().catch(() => null);
  if (!response.ok || body === null) throw new Error(problem(response, body));
  return body;
}

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

function params() {
  const p = new URLSearchParams();
  const q = $("q").value.trim();
  if (q) p.set("q", q);
  p.set("mode", $("mode").value);
  for (const name of FACETS) for (const v of state.selected[name]) p.append(name, v);
  for (const name of ["year_from", "year_to"]) if ($(name).value) p.set(name, $(name).value);
  return p;
}

function readUrl() {
  const p = new URLSearchParams(location.search);
  $("q").value = p.get("q") || "";
  if (p.get("mode")) $("mode").value = p.get("mode");
  for (const name of FACETS) state.selected[name] = new Set(p.getAll(name));
  for (const name of ["year_from", "year_to"]) $(name).value = p.get(name) || "";
  return p;
}

function sdgChip(n, label) {
  const goal = state.sdgs[n] || {};
  return el("span", { class: "sdg-chip", style: { background: goal.colour || "#555" },
                      title: goal.title || `Goal ${n}`, text: label || String(n) });
}

function docLink(hit) {
  const a = el("a", { href: `/?doc=${encodeURIComponent(hit.id)}`, class: "doc-link", text: hit.title || hit.url || hit.id });
  a.addEventListener("click", (event) => {
    if (event.ctrlKey || event.metaKey || event.shiftKey) return;
    event.preventDefault();
    history.pushState({ doc: hit.id }, "", a.href);
    showDocument(hit.id);
  });
  return a;
}

function metaLine(hit) {
  const badges = el("span", { class: "badges" });
  for (const t of hit.sdgs) {
    const goal = state.sdgs[t.sdg];
    badges.append(sdgChip(t.sdg, String(t.sdg)));
    badges.lastChild.setAttribute("aria-label", `SDG ${t.sdg}${goal ? ": " + goal.short : ""}`);
  }
  return el("p", { class: "meta" },
    hit.sdgs.length ? badges : null,
    el("span", { text: hit.source }),
    hit.published ? el("time", { datetime: hit.published, text: hit.published }) : null,
    hit.lang ? el("span", { text: hit.lang.toUpperCase(), lang: hit.lang }) : null,
    hit.type ? el("span", { text: hit.type }) : null,
    safeUrl(hit.url) ? el("a", { href: safeUrl(hit.url), rel: "noopener", text: "original" }) : null);
}

// The other places a hit's content is found: its other URLs, and its page or PDF (one result slot for both).
const RELATION = { copy: "also at", attachment: "PDF", page: "page" };

function locationsLine(hit) {
  const places = (hit.locations || []).filter((l) => safeUrl(l.url));
  if (!places.length) return null;
  const line = el("p", { class: "locations" }, el("span", { text: "Also found: " }));
  places.forEach((l, i) => {
    if (i) line.append(", ");
    line.append(el("a", { href: safeUrl(l.url), rel: "noopener", title: l.url,
                          text: `${RELATION[l.relation] || l.relation} (${l.source})` }));
  });
  return line;
}

function renderHit(hit) {
  const snippet = el("p", { class: "snippet" });
  snippet.innerHTML = hit.snippet; // escaped by the API, with <mark> around matched words
  return el("li", {}, el("h3", {}, docLink(hit)), snippet, metaLine(hit), locationsLine(hit));
}

function renderFacets(facets) {
  // Redrawing replaces the checkbox a keyboard user just toggled: give focus back to its successor, not to <body>.
  const active = document.activeElement;
  const focused = active && active.id && active.closest("#facets") ? active.id : null;
  for (const name of FACETS) {
    const box = document.querySelector(`#facet-${name} .options`);
    box.replaceChildren();
    const counts = { ...facets[name] };
    for (const v of state.selected[name]) if (!(v in counts)) counts[v] = 0;
    let keys = Object.keys(counts);
    if (name === "sdg") keys.sort((a, b) => a - b);
    for (const value of keys) {
      const id = `f-${name}-${value}`.replace(/[^\w-]/g, "_");
      const input = el("input", { type: "checkbox", id, value, name });
      input.checked = state.selected[name].has(value);
      input.addEventListener("change", () => {
        input.checked ? state.selected[name].add(value) : state.selected[name].delete(value);
        run(0);
      });
      const text = name === "sdg" ? (state.sdgs[value] ? state.sdgs[value].short : `Goal ${value}`) : value;
      const label = el("label", { for: id }, input, name === "sdg" ? sdgChip(value) : null, el("span", { text }),
        el("span", { class: "count", text: String(counts[value]), "aria-label": `${counts[value]} documents` }));
      box.append(label);
    }
  }
  const years = document.querySelector("#facet-year .options");
  years.replaceChildren();
  for (const [year, n] of Object.entries(facets.year).sort((a, b) => b[0] - a[0]).slice(0, 15)) {
    const pick = el("button", { type: "button", class: "year-pick", id: `year-pick-${year}`, text: `${year} (${n})` });
    pick.addEventListener("click", () => { $("year_from").value = year; $("year_to").value = year; run(0); });
    years.append(pick);
  }
  if (focused && $(focused)) $(focused).focus();
}

function renderExports() {
  const p = params();
  for (const a of document.querySelectorAll("#exports a")) {
    const q = new URLSearchParams(p);
    q.set("format", a.dataset.format);
    if (a.dataset.format === "csv") q.set("bom", "true"); // a person's download, opened in Excel: accents read right
    a.href = `/api/export?${q}`;
  }
  $("exports").hidden = state.total === 0;
}

// Only the newest search may draw: with a slow API, an older answer arriving last showed the old query's results
// under the new words (and its cursors then failed as "another query"). The older request is also cancelled.
const searches = { latest: 0, controller: null };

// page: the page to show (0-based); cursors[page] is the cursor that fetches it (null for the first).
async function run(page) {
  const ticket = ++searches.latest;
  if (searches.controller) searches.controller.abort();
  const controller = (searches.controller = new AbortController());
  const region = $("results-region");
  region.setAttribute("aria-busy", "true");
  const slow = setTimeout(() => { if (ticket === searches.latest) $("status").textContent = "Searching…"; }, 500);
  if (page === 0) {
    state.cursors = [null];
    history.replaceState(null, "", `?${params()}`);
  }
  const p = params();
  p.set("limit", PAGE_SIZE);
  if (state.cursors[page]) p.set("cursor", state.cursors[page]);
  try {
    const body = await getJson(`/api/search?${p}`, { signal: controller.signal });
    if (ticket !== searches.latest) return;
    state.page = page;
    state.total = body.total;
    state.cursors[page + 1] = body.next_cursor;
    $("results").replaceChildren(...body.results.map(renderHit));
    $("results").setAttribute("start", String(page * PAGE_SIZE + 1));
    const pages = Math.max(1, Math.ceil(body.total / PAGE_SIZE));
    $("pager").hidden = pages <= 1;
    $("prev").disabled = page === 0;
    $("next").disabled = !body.next_cursor;
    $("page-label").textContent = `Page ${page + 1} of ${pages}`;
    const first = page * PAGE_SIZE + 1;
    $("status").textContent = body.total
      ? `${body.total} document${body.total === 1 ? "" : "s"}${body.query ? ` for “${body.query}”` : ""}, ` +
        `showing ${first}–${first + body.results.length - 1}`
      : "No documents match. Try other words or fewer filters.";
    if (page === 0) renderFacets(body.facets);
    renderExports();
  } catch (err) {
    if (ticket === searches.latest) $("status").textContent = `Search failed: ${err.message}`;
  } finally {
    clearTimeout(slow);
    if (ticket === searches.latest) region.setAttribute("aria-busy", "false");
  }
}

function showView(doc) {
  $("search-view").hidden = doc;
  $("search-form").hidden = doc;
  $("doc-view").hidden = !doc;
}

async function showDocument(id) {
  showView(true);
  $("doc-title").textContent = "Loading…";
  for (const part of ["doc-meta", "doc-evidence", "doc-text", "doc-similar"]) $(part).replaceChildren();
  let doc;
  try {
    doc = await getJson(`/api/documents/${encodeURIComponent(id)}`);
  } catch (err) { // a 404, or an API that is down or answers an error page: say so rather than "Loading…" forever
    $("doc-title").textContent = `This document cannot be shown: ${err.message}`;
    return;
  }
  document.title = `${doc.title || doc.id} — SSE Hub`;
  $("doc-title").textContent = doc.title || doc.id;
  $("doc-meta").replaceWith(Object.assign(metaLine({ ...doc, source: doc.source_id }), { id: "doc-meta" }));
  if (doc.authors.length) $("doc-meta").prepend(el("span", { text: doc.authors.join(", ") }));
  for (const t of doc.sdgs) {
    const goal = state.sdgs[t.sdg] || { short: `Goal ${t.sdg}` };
    const who = t.origin === "manual" ? "set by a curator" : `score ${t.score.toFixed(2)}`;
    $("doc-evidence").append(el("li", {}, sdgChip(t.sdg), el("strong", { text: ` ${goal.short} ` }),
      el("span", { class: "muted", text: `(${who}${t.targets && t.targets.length ? `; targets ${t.targets.join(", ")}` : ""})` }),
      t.evidence ? el("blockquote", { text: t.evidence }) : null));
  }
  if (!doc.sdgs.length) $("doc-evidence").append(el("li", { text: "No goal was found in this document." }));
  for (const para of doc.text.split(/\n{2,}/)) if (para.trim()) $("doc-text").append(el("p", { text: para.trim() }));
  $("doc-view").focus();
  try {
    const similar = await getJson(`/api/documents/${encodeURIComponent(id)}/similar?limit=5`);
    for (const hit of similar.results) $("doc-similar").append(el("li", {}, docLink(hit), metaLine(hit)));
    if (!similar.results.length) $("doc-similar").append(el("li", { text: "None yet." }));
  } catch (err) {
    $("doc-similar").append(el("li", { text: "Similar documents are not available." }));
  }
}

function route() {
  const p = readUrl();
  if (p.get("doc")) showDocument(p.get("doc"));
  else { showView(false); document.title = "SSE Hub — search"; run(0); }
}

async function init() {
  try {
    const goals = await (await fetch("/api/sdgs")).json();
    for (const g of goals) state.sdgs[String(g.sdg)] = g;
  } catch (err) {
    // The page still works without goal names: facets then show numbers only.
  }
  $("search-form").addEventListener("submit", (event) => { event.preventDefault(); run(0); });
  $("mode").addEventListener("change", () => run(0));
  $("prev").addEventListener("click", () => { run(state.page - 1); $("results-region").focus(); });
  $("next").addEventListener("click", () => { run(state.page + 1); $("results-region").focus(); });
  $("back").addEventListener("click", (event) => {
    event.preventDefault();
    if (history.state && history.state.doc) history.back(); // came from the results: keep their page
    else { history.pushState(null, "", "/"); route(); }
  });
  $("clear-filters").addEventListener("click", () => {
    for (const name of FACETS) state.selected[name].clear();
    $("year_from").value = $("year_to").value = "";
    run(0);
  });
  window.addEventListener("popstate", route);
  route();
}

document.addEventListener("DOMContentLoaded", init);
