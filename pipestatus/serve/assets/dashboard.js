// pipestatus dashboard: applies the server-sent events of /events to the rendered page.
// Every value is inserted with textContent or a property (never innerHTML); links only
// ever point to http(s) addresses (the server sends no other).
"use strict";
(function () {
  const body = document.body;
  const heartbeat = Number(body.dataset.heartbeat || "15") * 1000;
  const freshness = document.getElementById("freshness");
  const summary = document.getElementById("summary");
  const FAILING = new Set(["failed", "timedout", "error"]);
  const MOVING = new Set(["running", "pending", "reading"]);
  const rows = new Map(); // key -> [tr, ...] (a pipeline is in each of its tags' groups)
  const statuses = new Map(); // key -> status word
  let lastTick = 0;
  let lastTime = freshness.dataset.since || "";
  let connected = false;

  for (const tr of document.querySelectorAll("tr[data-key]")) {
    const key = tr.dataset.key;
    if (!rows.has(key)) rows.set(key, []);
    rows.get(key).push(tr);
    statuses.set(key, tr.dataset.status);
  }

  function setCell(tr, field, value) {
    const cell = tr.querySelector('td[data-field="' + field + '"]');
    if (!cell) return;
    const inner = cell.firstElementChild;
    if (field === "name") {
      let link = cell.querySelector("a");
      if (row_url(value)) {
        if (!link) {
          link = document.createElement("a");
          link.rel = "noreferrer";
          cell.replaceChildren(link);
        }
        link.href = value.url;
        link.textContent = value.name;
      } else {
        const span = document.createElement("span");
        span.textContent = value.name;
        cell.replaceChildren(span);
      }
      return;
    }
    if (field === "when") {
      inner.setAttribute("datetime", value || "");
      inner.textContent = value || "";
      return;
    }
    inner.textContent = value == null ? "" : String(value);
  }

  function row_url(row) {
    return typeof row.url === "string" && /^https?:\/\//i.test(row.url);
  }

  function resort(tbody) {
    const ordered = Array.from(tbody.children);
    ordered.sort(function (a, b) {
      const rank = Number(a.dataset.rank) - Number(b.dataset.rank);
      if (rank !== 0) return rank;
      return Number(a.dataset.key.slice(1)) - Number(b.dataset.key.slice(1));
    });
    ordered.forEach(function (tr) { tbody.appendChild(tr); });
  }

  function apply(row) {
    const found = rows.get(row.key);
    // A pipeline that joined or left a followed project: the server draws the new set.
    if (!found || row.removed) { location.reload(); return; }
    statuses.set(row.key, row.status);
    for (const tr of found) {
      tr.dataset.status = row.status;
      tr.dataset.rank = String(row.rank);
      tr.classList.toggle("stale", Boolean(row.stale));
      setCell(tr, "status", row.status);
      setCell(tr, "name", row);
      for (const field of ["stage", "run", "branch", "duration", "when", "problem"]) {
        setCell(tr, field, row[field]);
      }
      resort(tr.parentElement);
    }
    count();
  }

  function count() {
    let failing = 0, moving = 0, other = 0;
    for (const word of statuses.values()) {
      if (FAILING.has(word)) failing += 1;
      else if (MOVING.has(word)) moving += 1;
      else other += 1;
    }
    summary.textContent = failing + " failing · " + moving + " running · " + other + " other";
    document.title = (failing ? "✗ " + failing + " failing · " : "") + "pipestatus";
  }

  function notes(id, lines) {
    const box = document.getElementById(id);
    const list = box.querySelector("ul");
    list.replaceChildren.apply(list, lines.map(function (line) {
      const li = document.createElement("li");
      li.textContent = line;
      return li;
    }));
    box.hidden = lines.length === 0;
  }

  function tick(data) {
    lastTick = Date.now();
    lastTime = data.time;
    const stale = new Set(data.stale);
    for (const [key, found] of rows) {
      for (const tr of found) tr.classList.toggle("stale", stale.has(key));
    }
    notes("accounts-down", data.accounts_down);
    notes("sinks-failing", data.sinks_failing);
    show();
  }

  function show() {
    const late = Date.now() - lastTick > heartbeat * 2.5;
    let state = "live";
    let words = "live · " + lastTime;
    if (!connected) {
      state = "stale";
      words = "reconnecting · data as of " + lastTime;
    } else if (late) {
      state = "stale";
      words = "stale · no update since " + lastTime;
    }
    freshness.className = state;
    freshness.textContent = words;
  }

  const source = new EventSource(body.dataset.stream);
  source.addEventListener("open", function () { connected = true; lastTick = Date.now(); show(); });
  source.addEventListener("error", function () { connected = false; show(); });
  source.addEventListener("row", function (event) { apply(JSON.parse(event.data)); });
  source.addEventListener("tick", function (event) { tick(JSON.parse(event.data)); });
  setInterval(show, 1000);
})();
