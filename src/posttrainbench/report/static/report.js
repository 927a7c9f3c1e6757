/* PostTrainBench report: sortable tables and trace search. Vanilla JS, no dependencies.
   All content is already HTML-escaped by the generator; this script only reads textContent
   and data attributes and toggles classes/attributes, it never writes HTML. */
(function () {
  "use strict";

  function sortKey(cell, numeric) {
    var raw = cell.hasAttribute("data-sort") ? cell.getAttribute("data-sort") : cell.textContent.trim();
    if (raw === "") return null;  // missing values always sort last
    if (numeric) {
      var n = parseFloat(raw);
      return isNaN(n) ? null : n;
    }
    return raw.toLowerCase();
  }

  function sortTable(table, col, th) {
    var numeric = th.getAttribute("data-type") === "num";
    var current = th.getAttribute("aria-sort");
    // First click: numbers high-to-low (a leaderboard's natural order), text A-Z.
    var ascending = current ? current !== "ascending" : !numeric;
    var tbody = table.tBodies[0];
    var rows = Array.prototype.slice.call(tbody.rows);
    var keyed = rows.map(function (row, i) {
      return { row: row, key: sortKey(row.cells[col], numeric), i: i };
    });
    keyed.sort(function (a, b) {
      if (a.key === null && b.key === null) return a.i - b.i;
      if (a.key === null) return 1;
      if (b.key === null) return -1;
      if (a.key < b.key) return ascending ? -1 : 1;
      if (a.key > b.key) return ascending ? 1 : -1;
      return a.i - b.i;  // stable
    });
    keyed.forEach(function (k) { tbody.appendChild(k.row); });
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
  }

  function initSortable(table) {
    if (!table.tHead || !table.tBodies.length) return;
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, col) {
      if (th.classList.contains("nosort")) return;
      th.tabIndex = 0;
      th.classList.add("sortable-col");
      th.addEventListener("click", function () { sortTable(table, col, th); });
      th.addEventListener("keydown", function (ev) {
        if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); sortTable(table, col, th); }
      });
    });
  }

  function initTraceSearch() {
    var box = document.getElementById("trace-search");
    if (!box) return;
    var steps = Array.prototype.slice.call(document.querySelectorAll("#trace .step"));
    var count = document.getElementById("trace-count");
    var texts = steps.map(function (s) { return s.textContent.toLowerCase(); });
    function apply() {
      var q = box.value.trim().toLowerCase();
      var shown = 0;
      steps.forEach(function (step, i) {
        var hit = q === "" || texts[i].indexOf(q) !== -1;
        step.hidden = !hit;
        if (hit) shown += 1;
        step.classList.toggle("match", hit && q !== "");
        if (hit && q !== "") {
          // Open the collapsed tool calls that contain the match, so it can be seen.
          Array.prototype.forEach.call(step.querySelectorAll("details"), function (d) {
            if (d.textContent.toLowerCase().indexOf(q) !== -1) d.open = true;
          });
        }
      });
      if (count) count.textContent = shown + " of " + steps.length + " steps";
    }
    box.addEventListener("input", apply);
    apply();
  }

  function initExpandButtons() {
    Array.prototype.forEach.call(document.querySelectorAll("button[data-details]"), function (btn) {
      btn.addEventListener("click", function () {
        var open = btn.getAttribute("data-details") === "open";
        Array.prototype.forEach.call(document.querySelectorAll("#trace details"), function (d) { d.open = open; });
      });
    });
  }

  function initRowFilter() {
    // <input data-filter="CSS selector of rows">: show only rows whose text contains the query.
    // A link to "page.html#q=TEXT" opens the page with the filter filled in.
    Array.prototype.forEach.call(document.querySelectorAll("input[data-filter]"), function (box) {
      var rows = Array.prototype.slice.call(document.querySelectorAll(box.getAttribute("data-filter")));
      var texts = rows.map(function (r) { return r.textContent.toLowerCase(); });
      var count = box.getAttribute("data-count") ? document.getElementById(box.getAttribute("data-count")) : null;
      function apply() {
        var q = box.value.trim().toLowerCase();
        var shown = 0;
        rows.forEach(function (r, i) {
          var hit = q === "" || texts[i].indexOf(q) !== -1;
          r.hidden = !hit;
          if (hit) shown += 1;
        });
        if (count) count.textContent = shown + " of " + rows.length + " runs";
      }
      var m = /^#q=(.*)$/.exec(window.location.hash);
      if (m) {
        try { box.value = decodeURIComponent(m[1]); } catch (e) { box.value = ""; }
      }
      box.addEventListener("input", apply);
      apply();
    });
  }

  function initLive() {
    // ptb view: a page of a run in progress names its version endpoint (body data-live) and the
    // version it was rendered from; when the endpoint reports another version, reload. The
    // static report never sets data-live, so this does nothing there.
    var url = document.body.getAttribute("data-live");
    var version = document.body.getAttribute("data-version");
    if (!url || !window.fetch) return;
    function poll() {
      fetch(url, { cache: "no-store" }).then(function (r) { return r.json(); }).then(function (state) {
        if (state.version !== version) { window.location.reload(); return; }
        if (state.running) window.setTimeout(poll, 2000);
      }).catch(function () { window.setTimeout(poll, 5000); });
    }
    window.setTimeout(poll, 2000);
  }

  document.addEventListener("DOMContentLoaded", function () {
    initLive();
    initRowFilter();
    Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), initSortable);
    initTraceSearch();
    initExpandButtons();
  });
})();
