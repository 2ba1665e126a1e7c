/* biobench leaderboard site: draws the Plotly figures, sorts and filters tables, shows tooltips.
   Plain JavaScript, no dependency beyond the local Plotly bundle; nothing is requested from elsewhere. */
(function () {
  "use strict";

  var NUMBER = /^[\[(]?\s*([+-]?(?:\d[\d,]*)?\.?\d+(?:[eE][+-]?\d+)?)/;

  function drawFigures() {
    var plots = document.querySelectorAll("div.plot[data-figure]");
    if (!plots.length || !window.Plotly) { return; }
    plots.forEach(function (div) {
      var source = document.getElementById(div.getAttribute("data-figure"));
      var spec = JSON.parse(source.textContent);
      window.Plotly.newPlot(div, spec.data, spec.layout, {
        displaylogo: false, responsive: true, modeBarButtonsToRemove: ["lasso2d", "select2d"]
      });
      if (spec.links) {
        div.on("plotly_click", function (event) {
          var point = event.points && event.points[0];
          if (point && point.customdata) { window.location.href = point.customdata; }
        });
      }
    });
  }

  /* Tooltips: an element with [data-tip] holds its content in a hidden .tip-content child. */
  function setUpTooltips() {
    var owners = document.querySelectorAll("[data-tip]");
    if (!owners.length) { return; }
    var tip = document.createElement("div");
    tip.id = "tooltip";
    tip.setAttribute("role", "tooltip");
    tip.hidden = true;
    document.body.appendChild(tip);
    function show(owner) {
      var content = owner.querySelector(".tip-content");
      if (!content) { return; }
      tip.replaceChildren.apply(tip, Array.prototype.map.call(content.childNodes, function (n) { return n.cloneNode(true); }));
      tip.hidden = false;
      var box = owner.getBoundingClientRect();
      var width = tip.offsetWidth, height = tip.offsetHeight;
      var left = Math.min(box.left, document.documentElement.clientWidth - width - 8);
      var top = box.bottom + 4;
      if (top + height > document.documentElement.clientHeight && box.top - height - 4 > 0) { top = box.top - height - 4; }
      tip.style.left = (Math.max(4, left) + window.scrollX) + "px";
      tip.style.top = (top + window.scrollY) + "px";
    }
    function hide() { tip.hidden = true; }
    owners.forEach(function (owner) {
      owner.addEventListener("mouseenter", function () { show(owner); });
      owner.addEventListener("mouseleave", hide);
      owner.addEventListener("focusin", function () { show(owner); });
      owner.addEventListener("focusout", hide);
    });
    document.addEventListener("keydown", function (e) { if (e.key === "Escape") { hide(); } });
  }

  /* Sorting: a cell sorts by its data-sort (or its text); empty cells go last either way. */
  function sortKey(cell, numeric) {
    var raw = cell.hasAttribute("data-sort") ? cell.getAttribute("data-sort") : cell.textContent.trim();
    if (raw === "" || raw === "\u2014") { return null; }
    if (numeric) {
      var m = NUMBER.exec(raw);
      return m ? parseFloat(m[1].replace(/,/g, "")) : null;
    }
    return raw.toLowerCase();
  }

  function setUpSorting() {
    document.querySelectorAll("table.sortable").forEach(function (table) {
      var headers = table.querySelectorAll("thead th");
      headers.forEach(function (th, index) {
        function sort() {
          var numeric = th.getAttribute("data-type") === "num";
          var current = th.getAttribute("aria-sort");
          var direction = current === "none" ? (numeric ? "descending" : "ascending")
            : (current === "ascending" ? "descending" : "ascending");
          headers.forEach(function (h) { h.setAttribute("aria-sort", "none"); });
          th.setAttribute("aria-sort", direction);
          var sign = direction === "ascending" ? 1 : -1;
          var body = table.tBodies[0];
          var rows = Array.prototype.slice.call(body.rows);
          var keyed = rows.map(function (row, position) {
            return { row: row, key: sortKey(row.cells[index], numeric), position: position };
          });
          keyed.sort(function (a, b) {
            if (a.key === null || b.key === null) {
              return (a.key === null) - (b.key === null) || a.position - b.position;
            }
            if (a.key < b.key) { return -sign; }
            if (a.key > b.key) { return sign; }
            return a.position - b.position;
          });
          keyed.forEach(function (k) { body.appendChild(k.row); });
        }
        th.addEventListener("click", sort);
        th.addEventListener("keydown", function (e) {
          if (e.key === "Enter" || e.key === " ") { e.preventDefault(); sort(); }
        });
      });
    });
  }

  /* Filters: every row of every table on the page must match every filter to be shown. */
  function setUpFilters() {
    var form = document.getElementById("filters");
    if (!form) { return; }
    var count = document.getElementById("filter-count");
    function checked(name) {
      return Array.prototype.map.call(form.querySelectorAll("input[name='" + name + "']:checked"), function (i) { return i.value; });
    }
    function apply() {
      var families = checked("family"), statuses = checked("status"), tracks = checked("track");
      var transport = form.elements.weight_transport.value, globalError = form.elements.global_error.value;
      var name = form.elements.namedItem("rule_name").value.trim().toLowerCase();
      var shown = 0, total = 0;
      document.querySelectorAll("section.table-group").forEach(function (section) {
        var visible = 0;
        section.querySelectorAll("tbody tr").forEach(function (row) {
          var ok = families.indexOf(row.getAttribute("data-family")) >= 0
            && statuses.indexOf(row.getAttribute("data-status")) >= 0
            && tracks.indexOf(row.getAttribute("data-track")) >= 0
            && (!transport || row.getAttribute("data-weight-transport") === transport)
            && (!globalError || row.getAttribute("data-global-error") === globalError)
            && (!name || row.getAttribute("data-name").indexOf(name) >= 0);
          row.hidden = !ok;
          total += 1;
          if (ok) { visible += 1; shown += 1; }
        });
        section.querySelectorAll("ul.reasons li").forEach(function (item) {
          var row = document.getElementById(item.getAttribute("data-row"));
          item.hidden = !row || row.hidden;
        });
        var empty = section.querySelector("p.empty");
        if (empty) { empty.hidden = visible > 0; }
      });
      if (count) { count.textContent = shown + " of " + total + " rows shown"; }
    }
    form.addEventListener("input", apply);
    form.addEventListener("change", apply);
    form.addEventListener("submit", function (e) { e.preventDefault(); });
    apply();
  }

  function start() {
    setUpTooltips();
    setUpSorting();
    setUpFilters();
    drawFigures();
  }

  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); } else { start(); }
}());
