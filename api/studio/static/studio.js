// Assay Studio: live progress over server-sent events, the response drawer, and in-place table paging.
// Plain JavaScript, no dependencies; every request goes to this server.
"use strict";

// The server's terminal job states (services.states.TERMINAL_STATES), so the two cannot drift apart.
const TERMINAL = new Set((document.body.dataset.terminalStates || "").split(" ").filter(Boolean));
const FRAGMENT = { "X-Studio-Fragment": "1" };

function setStatusBadge(el, status) {
  if (!el) return;
  el.textContent = status;
  el.className = "badge state-" + status.toLowerCase();
}

// Everything below the run card (actions, totals, charts, agreement, the responses table) fetched again
// as the run moves: at most one refresh in flight, at least REFRESH_MS apart, and always one at the end.
const REFRESH_MS = 1500;
const live = { busy: false, last: 0, pending: false };

async function refreshLive(final) {
  const box = document.getElementById("live");
  if (!box) return;
  if (live.busy) { live.pending = true; return; }
  if (!final && Date.now() - live.last < REFRESH_MS) return;
  live.busy = true;
  try {
    const html = await fetchFragment(box.dataset.liveUrl);
    if (html !== null) {
      box.innerHTML = html;
      const badge = box.querySelector("template[data-pass-badge]");
      if (badge) document.getElementById("pass-badge").innerHTML = badge.innerHTML;
    }
    const table = document.getElementById("responses-table");
    const drawerOpen = !document.getElementById("drawer")?.hidden;
    if (table && !drawerOpen) {
      const rows = await fetchFragment(tableUrl(window.location.href));
      if (rows !== null) table.innerHTML = rows;
    }
  } finally {
    live.busy = false;
    live.last = Date.now();
    if (live.pending) { live.pending = false; refreshLive(final); }
  }
}

// One experiment's run: progress bar, counts and log, following the stream until the job ends.
function followRun(section) {
  let seen = null;
  const progress = document.getElementById("run-progress");
  const log = document.getElementById("run-log");
  const field = (name) => section.querySelector(`[data-role="${name}"]`);
  const source = new EventSource(section.dataset.stream);
  source.onmessage = (message) => {
    const data = JSON.parse(message.data);
    const state = data.state || data.status;
    progress.max = data.total_responses || 1;
    progress.value = data.completed_ratings;
    progress.setAttribute("aria-valuenow", String(data.completed_ratings));
    field("rated").textContent = data.completed_ratings;
    field("generated").textContent = data.completed_responses;
    field("total").textContent = data.total_responses;
    setStatusBadge(section.querySelector('[data-role="status"]'), state);
    if (data.logs_delta) log.textContent += data.logs_delta;
    const counts = `${state} ${data.completed_responses} ${data.completed_ratings}`;
    const moved = seen !== null && counts !== seen;
    seen = counts;
    if (TERMINAL.has(state)) {
      source.close(); // otherwise EventSource reconnects when the server ends the stream
      const wasLive = section.dataset.live === "1";
      if (wasLive) {
        refreshLive(true).then(() => { document.getElementById("run-finished").hidden = false; });
      }
    } else {
      section.dataset.live = "1";
      if (moved) refreshLive(false);
    }
  };
}

// The experiments list: one stream for every running row.
function followList(table) {
  const source = new EventSource(table.dataset.progressStream);
  source.onmessage = (message) => {
    const data = JSON.parse(message.data);
    for (const [id, p] of Object.entries(data.experiments)) {
      const row = table.querySelector(`tr[data-experiment-id="${id}"]`);
      if (!row) continue;
      const bar = row.querySelector("progress");
      if (bar) { bar.max = p.total_responses || 1; bar.value = p.completed_ratings; }
      const count = row.querySelector('[data-role="count"]');
      if (count) count.textContent = `${p.completed_ratings} / ${p.total_responses}`;
      setStatusBadge(row.querySelector('[data-role="status"]'), p.status);
    }
    if (TERMINAL.has(data.status)) source.close();
  };
}

// The drawer: a response's prompt, answer and ratings, fetched as a fragment; Escape closes it.
const drawer = {
  opener: null,
  open(html, opener) {
    const panel = document.getElementById("drawer");
    document.getElementById("drawer-body").innerHTML = html;
    panel.hidden = false;
    document.getElementById("drawer-backdrop").hidden = false;
    this.opener = opener;
    document.getElementById("drawer-close").focus();
  },
  close() {
    const panel = document.getElementById("drawer");
    if (!panel || panel.hidden) return;
    panel.hidden = true;
    document.getElementById("drawer-backdrop").hidden = true;
    if (this.opener) this.opener.focus();
  },
};

// A short message at the top of the page, replacing the previous one (the flash style of the server's).
function showError(text) {
  let note = document.getElementById("fetch-error");
  if (!note) {
    note = document.createElement("p");
    note.id = "fetch-error";
    note.className = "flash error";
    note.setAttribute("role", "alert");
    document.getElementById("main").prepend(note);
  }
  note.textContent = text;
}

// A fragment's HTML, or null (after saying why) when it could not be had: an error page is never injected.
async function fetchFragment(url) {
  let response;
  try {
    response = await fetch(url, { headers: FRAGMENT, credentials: "same-origin" });
  } catch (err) {
    showError("The Studio could not be reached; check the connection and try again.");
    return null;
  }
  if (response.status === 401) { window.location.reload(); return null; }
  if (!response.ok) {
    showError(`That could not be loaded (HTTP ${response.status}); reload the page and try again.`);
    return null;
  }
  document.getElementById("fetch-error")?.remove();
  return response.text();
}

async function loadTable(url) {
  const html = await fetchFragment(url);
  if (html === null) return;
  document.getElementById("responses-table").innerHTML = html;
  history.replaceState(null, "", url.replace("/responses?", "?"));
}

function tableUrl(href) {
  const url = new URL(href, window.location.href);
  url.pathname = url.pathname.replace(/\/?$/, "/responses");
  return url.pathname + url.search;
}

document.addEventListener("click", async (event) => {
  const link = event.target.closest("a");
  if (link && link.hasAttribute("data-drawer")) {
    event.preventDefault();
    const html = await fetchFragment(link.href);
    if (html !== null) drawer.open(html, link);
  } else if (link && link.closest("#responses-table .pager")) {
    event.preventDefault();
    loadTable(tableUrl(link.href));
  } else if (event.target.id === "drawer-close" || event.target.id === "drawer-backdrop") {
    drawer.close();
  }
});

document.addEventListener("submit", (event) => {
  const form = event.target;
  if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
    event.preventDefault();
    return;
  }
  if (!form.hasAttribute("data-table-form")) return;
  event.preventDefault();
  const query = new URLSearchParams(new FormData(form)).toString();
  loadTable(tableUrl(form.action) + "?" + query);
});

document.addEventListener("keydown", (event) => { if (event.key === "Escape") drawer.close(); });

document.addEventListener("DOMContentLoaded", () => {
  const run = document.querySelector("#run[data-stream]");
  if (run) followRun(run);
  const list = document.querySelector("#experiments[data-progress-stream]");
  if (list) followList(list);
});
