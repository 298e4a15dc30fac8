// The curators' page: sources (add, edit, disable, delete), harvests with live progress, SDG tags and hiding.
// The key is typed by the curator, kept in sessionStorage (this tab only) and sent as a Bearer token.
"use strict";

const $ = (id) => document.getElementById(id);
const LISTS = ["start_urls", "follow", "documents", "exclude"];
const state = { sources: [], goals: [], editing: null, doc: null, poll: null };

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) k === "text" ? (node.textContent = v) : node.setAttribute(k, v);
  for (const child of children) if (child !== null && child !== undefined) node.append(child);
  return node;
}

function button(text, onClick, attrs = {}) {
  const b = el("button", { type: "button", ...attrs, text });
  b.addEventListener("click", onClick);
  return b;
}

function notice(text, ok = true) {
  $("notice").textContent = text;
  $("notice").className = ok ? "ok" : "error";
}

// Messages of a {"detail": ...} error: a string, FastAPI's list of {loc, msg}, or our list of strings.
function messages(detail) {
  if (typeof detail === "string") return [detail];
  if (Array.isArray(detail)) return detail.map((d) => (typeof d === "string" ? d : `field ${d.loc.filter((p) => p !== "body").join(".")}: ${d.msg}`));
  return ["unexpected answer"];
}

async function api(method, path, body) {
  const headers = { Authorization: `Bearer ${sessionStorage.getItem("ssehub-key") || ""}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const data = await response.json().catch(() => ({ detail: response.statusText }));
  if (response.status === 401) { signOut(messages(data.detail)[0]); throw new Error("signed out"); }
  if (!response.ok) { const err = new Error(messages(data.detail).join("; ")); err.detail = data.detail; throw err; }
  return data;
}

// -- signing in ------------------------------------------------------------------------------------------

function signOut(why) {
  sessionStorage.removeItem("ssehub-key");
  clearInterval(state.poll);
  $("desk").hidden = true;
  $("login").hidden = false;
  if (why) notice(why, false);
}

async function signIn(key) {
  sessionStorage.setItem("ssehub-key", key);
  try {
    await loadSources();
  } catch (err) {
    return;
  }
  $("login").hidden = true;
  $("desk").hidden = false;
  notice("Signed in.");
  loadRuns();
  loadHidden();
}

// -- sources ---------------------------------------------------------------------------------------------

function runText(run) {
  if (!run) return "never";
  const c = run.counts || {};
  return `${run.status}, ${(run.finished_at || run.started_at || "").replace("T", " ").slice(0, 16)}: ` +
    `${c.fetched || 0} fetched, ${c.new || 0} new, ${c.failed || 0} failed`;
}

async function loadSources() {
  const body = await api("GET", "/api/sources");
  state.sources = body.sources;
  $("problems").textContent = body.problems.join("; ");
  const rows = body.sources.map((s) => el("tr", { "data-source": s.id },
    el("td", {}, el("strong", { text: s.id }), el("br"), el("span", { class: "muted", text: s.name || "" })),
    el("td", { text: s.kind }),
    el("td", { text: s.enabled ? "enabled" : "disabled" }),
    el("td", { text: String(s.document_count) }),
    el("td", { text: runText(s.last_run) }),
    el("td", { text: s.last_run ? String(s.last_run.errors) : "" }),
    el("td", {}, el("div", { class: "actions" }, ...(s.in_file ? [
      button("Edit", () => edit(s), { "aria-label": `Edit ${s.id}` }),
      button(s.enabled ? "Disable" : "Enable", () => setEnabled(s, !s.enabled), { "aria-label": `${s.enabled ? "Disable" : "Enable"} ${s.id}` }),
      button("Harvest", () => harvest([s.id]), { "aria-label": `Harvest ${s.id}` }),
      button("Delete", () => remove(s), { "aria-label": `Delete ${s.id}` }),
    ] : [el("span", { class: "muted", text: "import only" })])))));
  $("sources").tBodies[0].replaceChildren(...rows);
}

function config(s) {
  const out = {};
  for (const k of ["id", "name", "kind", "url", "enabled", "delay", "max_documents", "languages", ...LISTS, "max_depth",
                   "set", "metadata_prefix", "licence", "notes"]) if (s[k] !== undefined && s[k] !== null) out[k] = s[k];
  return out;
}

function edit(s) {
  state.editing = s ? s.id : null;
  $("editor").hidden = false;
  $("editor-title").textContent = s ? `Edit source ${s.id}` : "Add a source";
  $("form-errors").replaceChildren();
  const f = $("source-form");
  for (const input of f.querySelectorAll("input, select, textarea")) input.removeAttribute("aria-invalid");
  f.reset();
  const src = s || { kind: "feed", enabled: true };
  $("s-id").readOnly = Boolean(s);
  for (const input of f.querySelectorAll("[name]")) {
    const v = src[input.name];
    if (input.type === "checkbox") input.checked = v !== false;
    else if (LISTS.includes(input.name)) input.value = (v || []).join("\n");
    else if (input.name === "languages") input.value = (v || []).join(", ");
    else input.value = v === null || v === undefined ? "" : v;
  }
  $("s-id").focus();
}

function formBody() {
  const f = $("source-form");
  const base = state.editing ? config(state.sources.find((s) => s.id === state.editing)) : {};
  for (const input of f.querySelectorAll("[name]")) {
    const v = input.value.trim();
    if (input.type === "checkbox") base[input.name] = input.checked;
    else if (LISTS.includes(input.name)) base[input.name] = v ? v.split("\n").map((x) => x.trim()).filter(Boolean) : [];
    else if (input.name === "languages") base[input.name] = v ? v.split(/[\s,]+/).filter(Boolean) : [];
    else if (input.type === "number") { if (v === "") delete base[input.name]; else base[input.name] = Number(v); }
    else if (input.name === "set" && v === "") delete base.set;
    else base[input.name] = v;
  }
  return base;
}

async function save(event) {
  event.preventDefault();
  const body = formBody();
  $("form-errors").replaceChildren();
  try {
    if (state.editing) await api("PUT", `/api/sources/${encodeURIComponent(state.editing)}`, body);
    else await api("POST", "/api/sources", body);
    notice(`Source ${body.id} saved to the sources file.`);
    $("editor").hidden = true;
    await loadSources();
  } catch (err) {
    if (!err.detail) return;
    const list = messages(err.detail);
    $("form-errors").replaceChildren(...list.map((m) => el("li", { text: m })));
    for (const m of list) {
      const field = /field ([a-z_]+)/.exec(m);
      if (field && $(`s-${field[1]}`)) $(`s-${field[1]}`).setAttribute("aria-invalid", "true");
    }
    notice("The source was not saved: see the errors below the form.", false);
  }
}

async function setEnabled(s, enabled) {
  try {
    await api("PUT", `/api/sources/${encodeURIComponent(s.id)}`, { ...config(s), enabled });
    notice(`Source ${s.id} ${enabled ? "enabled" : "disabled"}.`);
    await loadSources();
  } catch (err) { notice(err.message, false); }
}

async function remove(s) {
  if (!confirm(`Delete source ${s.id} from the sources file? Its ${s.document_count} documents stay searchable.`)) return;
  try {
    await api("DELETE", `/api/sources/${encodeURIComponent(s.id)}`);
    notice(`Source ${s.id} deleted.`);
    await loadSources();
  } catch (err) { notice(err.message, false); }
}

// -- harvests --------------------------------------------------------------------------------------------

function countsText(c) {
  return Object.entries(c || {}).filter(([, v]) => typeof v === "number" && v).map(([k, v]) => `${k.replace(/_/g, " ")} ${v}`).join(", ") || "nothing yet";
}

async function harvest(sources) {
  try {
    const started = await api("POST", "/api/harvest", { sources });
    notice(`Harvest ${started.run_id} started.`);
    watch(started.run_id);
  } catch (err) { notice(err.message, false); }
}

function watch(runId) {
  clearInterval(state.poll);
  $("progress").hidden = false;
  const tick = async () => {
    let run;
    try { run = await api("GET", `/api/harvest/runs/${runId}`); } catch (err) { clearInterval(state.poll); return; }
    $("progress-title").textContent = `Harvest ${run.id} (${run.sources.join(", ") || "all enabled sources"}): ${run.status}`;
    $("progress-bar").hidden = run.status !== "running";
    $("progress-counts").textContent = countsText(run.counts);
    $("progress-errors").replaceChildren(...run.errors.slice(0, 20).map((e) =>
      el("li", { text: `${e.source_id || "harvest"}: ${e.url ? e.url + " " : ""}${e.reason}${e.detail ? ` (${e.detail})` : ""}`
                       + (e.advice ? ` — ${e.advice}` : "") })));
    if (run.status !== "running") {
      clearInterval(state.poll);
      notice(`Harvest ${run.id} ${run.status}.`, run.status === "finished");
      loadSources();
      loadRuns();
    }
  };
  tick();
  state.poll = setInterval(tick, 1000);
}

async function loadRuns() {
  const body = await api("GET", "/api/harvest/runs?limit=20");
  $("runs").tBodies[0].replaceChildren(...body.runs.map((r) => el("tr", {},
    el("td", {}, button(String(r.id), () => watch(r.id), { "aria-label": `Show run ${r.id}` })),
    el("td", { text: r.kind }), el("td", { text: r.sources.join(", ") || "all" }), el("td", { text: r.status }),
    el("td", { text: r.started_at.replace("T", " ").slice(0, 19) }), el("td", { text: countsText(r.counts) }),
    el("td", { text: String(r.errors) }))));
  if (body.running && $("progress").hidden) watch(body.running); // a harvest started elsewhere
}

// -- documents -------------------------------------------------------------------------------------------

async function findDocuments(event) {
  event.preventDefault();
  const q = $("doc-query").value.trim();
  $("doc-hits").replaceChildren();
  if (/^[A-Za-z0-9_:-]+$/.test(q) && !q.includes(" ")) {
    try { await openDocument(q); return; } catch (err) { /* not an id: search for the words */ }
  }
  let body;
  try { // an error (no index yet, say) is said as such, not as "No document found."
    body = await api("GET", `/api/search?${new URLSearchParams({ q, limit: 10 })}`);
  } catch (err) { notice(`Search failed: ${err.message}`, false); return; }
  $("doc-hits").replaceChildren(...(body.results || []).map((h) =>
    el("li", {}, button(h.title || h.id, () => openDocument(h.id)), el("span", { class: "muted", text: ` ${h.id}` }))));
  if (!(body.results || []).length) notice("No document found.", false);
}

async function openDocument(id) {
  const doc = await api("GET", `/api/admin/documents/${encodeURIComponent(id)}`);
  state.doc = doc;
  $("doc-edit").hidden = false;
  $("doc-edit-title").textContent = `${doc.title || doc.id} (${doc.id})`;
  $("doc-edit-state").textContent = `${doc.hidden ? "Hidden from search" : "Searchable"}; ` +
    (doc.manual_sdgs ? "tags set by a curator" : "tags from the tagger") + (doc.status !== "active" ? `; ${doc.status}` : "");
  const current = new Set(doc.sdgs.map((t) => t.sdg));
  $("sdg-picks").replaceChildren(...state.goals.map((g) => {
    const box = el("input", { type: "checkbox", id: `pick-${g.sdg}`, value: String(g.sdg) });
    box.checked = current.has(g.sdg);
    return el("label", { for: `pick-${g.sdg}` }, box, el("span", { class: "sdg-chip", style: `background:${g.colour}`, text: String(g.sdg) }),
      el("span", { text: ` ${g.short}` }));
  }));
  $("toggle-hidden").textContent = doc.hidden ? "Restore to search" : "Hide from search";
}

async function patchDocument(change, done) {
  try {
    await api("PATCH", `/api/documents/${encodeURIComponent(state.doc.id)}`, change);
    notice(done);
    await openDocument(state.doc.id);
    await loadHidden();
  } catch (err) { notice(err.message, false); }
}

async function loadHidden() {
  const body = await api("GET", "/api/admin/hidden");
  $("hidden-docs").replaceChildren(...body.documents.map((d) => el("li", {}, el("span", { text: `${d.title || d.id} (${d.id}) ` }),
    button("Restore", async () => { state.doc = d; await patchDocument({ hidden: false }, `${d.id} is searchable again.`); },
           { "aria-label": `Restore ${d.id}` }))));
  if (!body.documents.length) $("hidden-docs").append(el("li", { class: "muted", text: "None." }));
}

async function init() {
  state.goals = await (await fetch("/api/sdgs")).json();
  $("login").addEventListener("submit", (event) => { event.preventDefault(); signIn($("key").value.trim()); });
  $("logout").addEventListener("click", () => signOut("Signed out."));
  $("add-source").addEventListener("click", () => edit(null));
  $("cancel-edit").addEventListener("click", () => { $("editor").hidden = true; });
  $("source-form").addEventListener("submit", save);
  $("harvest-all").addEventListener("click", () => harvest([]));
  $("doc-find").addEventListener("submit", findDocuments);
  $("save-tags").addEventListener("click", () => {
    const sdgs = [...document.querySelectorAll("#sdg-picks input:checked")].map((b) => Number(b.value));
    patchDocument({ sdgs }, `Tags of ${state.doc.id} set by hand: ${sdgs.join(", ") || "none"}.`);
  });
  $("auto-tags").addEventListener("click", () => patchDocument({ sdgs: null }, `${state.doc.id} uses the tagger's tags again.`));
  $("toggle-hidden").addEventListener("click", () => patchDocument({ hidden: !state.doc.hidden },
    `${state.doc.id} is ${state.doc.hidden ? "searchable again" : "hidden from search"}.`));
  if (sessionStorage.getItem("ssehub-key")) signIn(sessionStorage.getItem("ssehub-key"));
}

document.addEventListener("DOMContentLoaded", init);
