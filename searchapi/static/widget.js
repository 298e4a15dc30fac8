// The SSE Hub search widget. Embed with one tag:
//   <script src="https://hub.example/widget.js" data-endpoint="https://hub.example" data-sdg="5,8"
//           data-source="unsse" data-lang="fr" data-limit="5"></script>
// It draws a search box, SDG and source facets, results and paging inside a shadow DOM placed right after the
// tag (or in the element named by data-target), so the host page's CSS and the widget's never meet.
// data-sdg, data-source and data-lang are fixed filters (comma-separated); data-lang also picks the labels'
// language (en, fr, es) unless data-ui-lang says otherwise. The API must list the host's origin in
// SSEHUB_CORS_ORIGINS. API values are inserted as text, except the snippet, which the API sends escaped with <mark>.
(function () {
  "use strict";
  const script = document.currentScript;
  if (!script) return;
  const data = script.dataset;
  const list = (v) => (v || "").split(",").map((x) => x.trim()).filter(Boolean);
  const endpoint = (data.endpoint || new URL(script.src, location.href).origin).replace(/\/+$/, "");
  const preset = { sdg: list(data.sdg), source: list(data.source), lang: list(data.lang) };
  const limit = Math.min(50, Math.max(1, parseInt(data.limit, 10) || 5));
  const LABELS = {
    en: { search: "Search", placeholder: "Search the SSE library", goals: "Goals", sources: "Sources", prev: "Previous",
          next: "Next", none: "No documents match.", failed: "Search failed", unreachable: "the search service cannot be reached",
          notReady: "the search is being prepared; please try again later", found: (n) => `${n} document${n === 1 ? "" : "s"}`,
          page: (p, n) => `Page ${p} of ${n}`, by: "SSE Hub" },
    fr: { search: "Rechercher", placeholder: "Chercher dans la bibliothèque ESS", goals: "Objectifs", sources: "Sources",
          prev: "Précédent", next: "Suivant", none: "Aucun document ne correspond.", failed: "La recherche a échoué",
          unreachable: "le service de recherche est injoignable",
          notReady: "la recherche est en préparation ; réessayez plus tard",
          found: (n) => `${n} document${n > 1 ? "s" : ""}`, page: (p, n) => `Page ${p} sur ${n}`, by: "SSE Hub" },
    es: { search: "Buscar", placeholder: "Buscar en la biblioteca de ESS", goals: "Objetivos", sources: "Fuentes",
          prev: "Anterior", next: "Siguiente", none: "Ningún documento coincide.", failed: "La búsqueda falló",
          unreachable: "no se puede contactar el servicio de búsqueda",
          notReady: "la búsqueda se está preparando; inténtelo más tarde",
          found: (n) => `${n} documento${n === 1 ? "" : "s"}`, page: (p, n) => `Página ${p} de ${n}`, by: "SSE Hub" },
  };
  const uiLang = LABELS[data.uiLang] ? data.uiLang : LABELS[preset.lang[0]] ? preset.lang[0] : "en";
  const t = LABELS[uiLang];
  const uid = `ssehub-${Math.random().toString(36).slice(2, 8)}`;

  const host = document.createElement("div");
  host.setAttribute("data-ssehub-widget", "");
  const target = data.target ? document.querySelector(data.target) : null;
  if (target) target.append(host); else script.after(host);
  const root = host.attachShadow({ mode: "open" });
  root.innerHTML = `<style>
    :host { all: initial; display: block; font: 15px/1.45 system-ui, sans-serif; color: #1d2327; }
    * { box-sizing: border-box; }
    .box { border: 1px solid #d5dbe0; border-radius: 6px; padding: 12px; background: #fff; }
    form { display: flex; gap: 6px; }
    input { flex: 1; font: inherit; padding: 6px 8px; border: 1px solid #8a949c; border-radius: 4px; min-width: 0; }
    button { font: inherit; padding: 5px 10px; border: 1px solid #19486a; border-radius: 4px; background: #19486a; color: #fff; cursor: pointer; }
    button[aria-pressed], .pager button { background: #fff; color: #19486a; }
    button[aria-pressed="true"] { outline: 2px solid #19486a; }
    button:disabled { opacity: .4; cursor: default; }
    :focus-visible { outline: 3px solid #fcc30b; outline-offset: 2px; }
    .facets { display: flex; flex-wrap: wrap; gap: 4px; margin: 8px 0; align-items: center; }
    .facets span.name { font-size: 13px; color: #5a6570; margin-right: 4px; }
    .chip { color: #fff; font-weight: 700; border: 0; min-width: 2em; padding: 2px 6px; }
    .chip[aria-pressed="false"] { opacity: .55; }
    .chip[aria-pressed="true"] { opacity: 1; outline: 2px solid #1d2327; }
    .src { background: #fff; color: #19486a; border-color: #19486a; padding: 1px 8px; font-size: 13px; }
    ol { list-style: none; margin: 0; padding: 0; }
    li { border-top: 1px solid #d5dbe0; padding: 8px 0; }
    a { color: #19486a; font-weight: 600; text-decoration: underline; }
    p { margin: 4px 0; }
    mark { background: #fff1a8; color: inherit; }
    .meta { font-size: 13px; color: #5a6570; display: flex; gap: 8px; flex-wrap: wrap; align-items: center; }
    .tag { display: inline-block; color: #fff; font-weight: 700; border-radius: 3px; padding: 0 5px; font-size: 12px; }
    .pager { display: flex; gap: 8px; align-items: center; margin-top: 8px; font-size: 13px; }
    .status { font-size: 13px; color: #5a6570; margin: 6px 0; }
  </style>
  <div class="box" role="search" lang="${uiLang}">
    <form><label for="${uid}-q" style="position:absolute;left:-9999px">${t.search}</label>
      <input id="${uid}-q" type="search" autocomplete="off"><button type="submit">${t.search}</button></form>
    <div class="facets sdg-facet" role="group" aria-label="${t.goals}"></div>
    <div class="facets source-facet" role="group" aria-label="${t.sources}"></div>
    <p class="status" role="status" aria-live="polite"></p>
    <ol class="results"></ol>
    <nav class="pager" hidden><button type="button" class="prev">${t.prev}</button><span class="page"></span>
      <button type="button" class="next">${t.next}</button></nav>
  </div>`;
  const q = (sel) => root.querySelector(sel);
  q("input").placeholder = t.placeholder;
  const state = { goals: {}, sdg: new Set(), source: new Set(), cursors: [null], page: 0 };

  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function query(page) {
    const p = new URLSearchParams();
    const words = q("input").value.trim();
    if (words) p.set("q", words);
    for (const v of state.sdg.size ? state.sdg : preset.sdg) p.append("sdg", v);
    for (const v of state.source.size ? state.source : preset.source) p.append("source", v);
    for (const v of preset.lang) p.append("lang", v);
    p.set("limit", String(limit));
    if (state.cursors[page]) p.set("cursor", state.cursors[page]);
    return p;
  }

  function toggles(box, counts, chosen, allowed, render) {
    // Redrawing replaces the chip a keyboard user just pressed: focus its successor, not the host page's <body>.
    const focused = box.contains(root.activeElement) ? root.activeElement.dataset.key : null;
    box.replaceChildren();
    const keys = Object.keys(counts).filter((k) => !allowed.length || allowed.includes(k));
    if (keys.length < 2 && !chosen.size) return;
    for (const key of keys) {
      const b = render(key, counts[key]);
      b.dataset.key = key;
      b.setAttribute("aria-pressed", String(chosen.has(key)));
      b.addEventListener("click", () => { chosen.has(key) ? chosen.delete(key) : chosen.add(key); run(0); });
      box.append(b);
      if (key === focused) b.focus();
    }
  }

  function facets(f) {
    toggles(q(".sdg-facet"), f.sdg, state.sdg, preset.sdg, (key, n) => {
      const goal = state.goals[key] || {};
      const b = el("button", { type: "button", class: "chip", title: `${goal.short || key}: ${n}`,
                               "aria-label": `${key} ${goal.short || ""} (${n})` }, key);
      b.style.background = goal.colour || "#555";
      return b;
    });
    toggles(q(".source-facet"), f.source, state.source, preset.source,
      (key, n) => el("button", { type: "button", class: "src" }, `${key} (${n})`));
  }

  function hit(h) {
    const li = el("li");
    const link = el("a", { href: (/^https?:\/\//i.test(h.url || "") ? h.url : "") || `${endpoint}/?doc=${encodeURIComponent(h.id)}`, target: "_blank", rel: "noopener" }, h.title || h.id);
    const snippet = el("p");
    snippet.innerHTML = h.snippet; // escaped by the API
    const meta = el("p", { class: "meta" });
    for (const s of h.sdgs) {
      const tag = el("span", { class: "tag", title: (state.goals[s.sdg] || {}).short || "" }, String(s.sdg));
      tag.style.background = (state.goals[s.sdg] || {}).colour || "#555";
      meta.append(tag);
    }
    meta.append(el("span", {}, h.source));
    if (h.published) meta.append(el("time", { datetime: h.published }, h.published));
    li.append(el("p", {}, ""), snippet, meta);
    li.firstChild.append(link);
    return li;
  }

  // Why a search failed: the API's message, each invalid parameter, or the status line of an answer that is not
  // JSON (a proxy's 502 page gave "Unexpected token '<'").
  function problem(response, body) {
    const detail = body && body.detail;
    if (typeof detail === "string") return detail;
    if (Array.isArray(detail)) return detail.map((d) => `${(d.loc || []).slice(1).join(" ")}: ${d.msg}`).join("; ");
    return `HTTP ${response.status} ${response.statusText}`.trim();
  }

  // Only the newest search draws: with a slow API an older answer arriving last showed the old words' results.
  let latest = 0;
  let controller = null;

  async function run(page) {
    const ticket = ++latest;
    if (controller) controller.abort();
    controller = new AbortController();
    const signal = controller.signal;
    if (page === 0) state.cursors = [null];
    try {
      const response = await fetch(`${endpoint}/api/search?${query(page)}`, { signal });
      const body = await response.json().catch(() => null);
      if (ticket !== latest) return;
      if (!response.ok || body === null) throw Object.assign(new Error(problem(response, body)), { status: response.status });
      state.page = page;
      state.cursors[page + 1] = body.next_cursor;
      q(".results").replaceChildren(...body.results.map(hit));
      const pages = Math.max(1, Math.ceil(body.total / limit));
      q(".status").textContent = body.total ? t.found(body.total) : t.none;
      q(".pager").hidden = pages < 2;
      q(".page").textContent = t.page(page + 1, pages);
      q(".prev").disabled = page === 0;
      q(".next").disabled = !body.next_cursor;
      if (page === 0) facets(body.facets);
    } catch (err) {
      if (ticket !== latest) return;
      if (err instanceof TypeError) {  // no answer at all: the server is down, or its CORS setting refuses this page
        q(".status").textContent = `${t.failed}: ${t.unreachable}`;
        console.error(`ssehub widget: no answer from ${endpoint} (${err.message}). If it is up, add this page's ` +
                      `origin ${location.origin} to the server's SSEHUB_CORS_ORIGINS.`);
      } else if (err.status === 409) {  // documents stored, none indexed yet: the API's advice is for the hub's operator
        q(".status").textContent = `${t.failed}: ${t.notReady}`;
        console.warn(`ssehub widget: ${err.message}`);
      } else q(".status").textContent = `${t.failed}: ${err.message}`;
    }
  }

  q("form").addEventListener("submit", (event) => { event.preventDefault(); run(0); });
  q(".prev").addEventListener("click", () => run(state.page - 1));
  q(".next").addEventListener("click", () => run(state.page + 1));
  fetch(`${endpoint}/api/sdgs?lang=${uiLang}`).then((r) => r.json()).then((goals) => {
    for (const g of goals) state.goals[String(g.sdg)] = g;
  }).catch(() => {}).finally(() => run(0));
})();
