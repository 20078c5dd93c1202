(function () {
"use strict";
var D = JSON.parse(document.getElementById("hm-data").textContent);
var THUMBS = JSON.parse(document.getElementById("hm-thumbs").textContent);
var N = D.n, COLS = D.columns, CLASSES = D.classes, BY = {};
COLS.forEach(function (c) { BY[c.name] = c; });
var hasThumbs = THUMBS.length === N;
var state = {sortCol: null, sortDir: 1, page: 0, pageSize: 50, filters: {}, search: "", rangeCol: D.score, lo: null, hi: null};
var order = [], lbPos = -1, lowerIds = null;

function fmtNum(v) {
  if (v === null || v === undefined) return "";
  if (v === 0) return "0";
  var a = Math.abs(v);
  return (a < 1e-3 || a >= 1e6) ? v.toExponential(2) : String(Number(v.toPrecision(4)));
}
function className(v) {
  if (v === null || v === undefined) return "";
  return (CLASSES && v >= 0 && v < CLASSES.length) ? CLASSES[v] : String(v);
}
function show(c, i) {
  var v = c.values[i];
  if (v === null || v === undefined) return "";
  if (c.kind === "cat") return v < 0 ? "" : c.categories[v];
  if (c.kind === "class") return className(v);
  if (c.kind === "bool") return v ? "yes" : "no";
  if (c.kind === "num") return fmtNum(v);
  return String(v);
}
function el(tag, attrs, text) {
  var e = document.createElement(tag);
  if (attrs) Object.keys(attrs).forEach(function (k) { e.setAttribute(k, attrs[k]); });
  if (text !== undefined) e.textContent = text;
  return e;
}

// ---- controls: a select per category column and the class, a score range, the id search
var controls = document.getElementById("hm-controls");
function addSelect(col, label) {
  var c = BY[col]; if (!c) return;
  var sel = el("select", {id: "hm-filter-" + col, "data-col": col});
  sel.appendChild(el("option", {value: ""}, "all"));
  if (c.kind === "cat") {
    var present = {}; c.values.forEach(function (v) { present[v] = true; });
    c.categories.forEach(function (name, k) { if (present[k]) sel.appendChild(el("option", {value: String(k)}, name)); });
  } else if (c.kind === "bool") {
    sel.appendChild(el("option", {value: "1"}, "yes")); sel.appendChild(el("option", {value: "0"}, "no"));
  } else {
    var seen = {}; c.values.forEach(function (v) { seen[v] = true; });
    Object.keys(seen).map(Number).sort(function (a, b) { return a - b; }).forEach(function (v) {
      sel.appendChild(el("option", {value: String(v)}, c.kind === "class" ? className(v) : String(v)));
    });
  }
  sel.addEventListener("change", function () {
    if (sel.value === "") delete state.filters[col]; else state.filters[col] = Number(sel.value);
    state.page = 0; refresh(false);
  });
  var lab = el("label", null, label + " "); lab.appendChild(sel); controls.appendChild(lab);
}
var search = el("input", {id: "hm-search", type: "search", placeholder: "search ids", "aria-label": "search ids"});
search.addEventListener("input", function () { state.search = search.value.trim().toLowerCase(); state.page = 0; refresh(false); });
controls.appendChild(search);
addSelect("group", "group"); addSelect("label", "class"); addSelect("pred", "predicted");
addSelect("difficulty", "difficulty"); addSelect("polarity", "polarity"); addSelect("region", "region"); addSelect("is_issue", "label issue");
var numeric = COLS.filter(function (c) { return c.kind === "num" || c.kind === "int"; });
if (numeric.length) {
  var rsel = el("select", {id: "hm-range-col"});
  numeric.forEach(function (c) { rsel.appendChild(el("option", {value: c.name}, c.name)); });
  if (state.rangeCol && BY[state.rangeCol]) rsel.value = state.rangeCol; else state.rangeCol = numeric[0].name;
  var lo = el("input", {id: "hm-range-min", type: "number", step: "any", placeholder: "min"});
  var hi = el("input", {id: "hm-range-max", type: "number", step: "any", placeholder: "max"});
  var upd = function () {
    state.rangeCol = rsel.value;
    state.lo = lo.value === "" ? null : Number(lo.value);
    state.hi = hi.value === "" ? null : Number(hi.value);
    state.page = 0; refresh(false);
  };
  rsel.addEventListener("change", upd); lo.addEventListener("input", upd); hi.addEventListener("input", upd);
  var rl = el("label", null, "score "); rl.appendChild(rsel); rl.appendChild(lo); rl.appendChild(el("span", null, "to")); rl.appendChild(hi);
  controls.appendChild(rl);
}

// ---- the header: click a column to sort (again to reverse)
var shown = COLS.filter(function (c) { return c.name !== "polarity"; });
var thead = document.querySelector("#hm-table thead"), tbody = document.querySelector("#hm-table tbody");
var hr = el("tr");
if (hasThumbs) hr.appendChild(el("th", {"data-col": "_image"}, "image"));
shown.forEach(function (c) {
  var th = el("th", {"data-col": c.name, tabindex: "0", title: "sort by " + c.name}, c.name);
  var go = function () {
    if (state.sortCol === c.name) state.sortDir = -state.sortDir; else { state.sortCol = c.name; state.sortDir = 1; }
    state.page = 0; refresh(true);
  };
  th.addEventListener("click", go);
  th.addEventListener("keydown", function (e) { if (e.key === "Enter") go(); });
  hr.appendChild(th);
});
thead.appendChild(hr);

function passes(i) {
  var f = state.filters;
  for (var col in f) { if (BY[col].values[i] !== f[col]) return false; }
  if (state.rangeCol && (state.lo !== null || state.hi !== null)) {
    var v = BY[state.rangeCol].values[i];
    if (v === null) return false;
    if (state.lo !== null && v < state.lo) return false;
    if (state.hi !== null && v > state.hi) return false;
  }
  if (state.search) {
    if (!lowerIds) lowerIds = BY.id ? BY.id.values.map(function (s) { return String(s).toLowerCase(); }) : null;
    var hit = lowerIds ? lowerIds[i].indexOf(state.search) >= 0 : false;
    if (!hit && BY.index && String(BY.index.values[i]) === state.search) hit = true;
    if (!hit) return false;
  }
  return true;
}
var sorted = null;  // all rows in the current sort order; filtering keeps that order
function sortRows() {
  var idx = new Array(N); for (var i = 0; i < N; i++) idx[i] = i;
  if (state.sortCol) {
    var c = BY[state.sortCol], v = c.values, d = state.sortDir;
    var key = c.kind === "cat" ? v.map(function (x) { return x < 0 ? null : x; }) : v;
    idx.sort(function (a, b) {
      var x = key[a], y = key[b];
      if (x === y) return a - b;
      if (x === null) return 1;
      if (y === null) return -1;
      return (x < y ? -1 : 1) * d;
    });
  }
  sorted = idx;
}
function refresh(resort) {
  if (resort || !sorted) sortRows();
  order = sorted.filter(passes);
  thead.querySelectorAll("th").forEach(function (th) {
    if (th.getAttribute("data-col") === state.sortCol) th.setAttribute("aria-sort", state.sortDir > 0 ? "ascending" : "descending");
    else th.removeAttribute("aria-sort");
  });
  render();
}
function render() {
  var ps = state.pageSize, pages = Math.max(1, Math.ceil(order.length / ps));
  if (state.page >= pages) state.page = pages - 1;
  var start = state.page * ps, end = Math.min(order.length, start + ps);
  var frag = document.createDocumentFragment();
  for (var k = start; k < end; k++) {
    var i = order[k], tr = el("tr", {"data-row": String(i)});
    if (BY.label && BY.pred && BY.label.values[i] !== BY.pred.values[i]) tr.className = "wrong";
    if (hasThumbs) {
      var td = el("td", {"data-col": "_image"});
      if (THUMBS[i]) {
        var img = el("img", {loading: "lazy", alt: "sample " + (BY.index ? BY.index.values[i] : i), "data-pos": String(k)});
        img.src = THUMBS[i];
        if (D.wide) img.className = "wide";
        td.appendChild(img);
      }
      tr.appendChild(td);
    }
    shown.forEach(function (c) {
      tr.appendChild(el("td", {"data-col": c.name, "class": (c.kind === "str" || c.kind === "cat" || c.kind === "class") ? "s" : "n"}, show(c, i)));
    });
    frag.appendChild(tr);
  }
  tbody.replaceChildren(frag);
  document.getElementById("hm-count").textContent = order.length
    ? "Showing " + (start + 1) + "\u2013" + end + " of " + order.length + " matching rows (" + N + " in all)"
    : "No rows match (" + N + " in all)";
  document.getElementById("hm-page").textContent = "page " + (state.page + 1) + " of " + pages;
  document.getElementById("hm-prev").disabled = state.page === 0;
  document.getElementById("hm-next").disabled = state.page >= pages - 1;
}
document.getElementById("hm-prev").addEventListener("click", function () { if (state.page > 0) { state.page--; render(); } });
document.getElementById("hm-next").addEventListener("click", function () { state.page++; render(); });
document.getElementById("hm-pagesize").addEventListener("change", function (e) { state.pageSize = Number(e.target.value); state.page = 0; render(); });

// ---- the lightbox: the image large, every field of the row; arrows walk the current order
var lb = document.getElementById("hm-lightbox");
function openLb(k) {
  if (k < 0 || k >= order.length) return;
  lbPos = k;
  var i = order[k], img = document.getElementById("hm-lb-img");
  if (THUMBS[i]) { img.src = THUMBS[i]; img.hidden = false; if (D.wide) img.className = "wide"; } else { img.removeAttribute("src"); img.hidden = true; }
  var info = document.getElementById("hm-lb-info"), frag = document.createDocumentFragment();
  COLS.forEach(function (c) { frag.appendChild(el("dt", null, c.name)); frag.appendChild(el("dd", null, show(c, i))); });
  info.replaceChildren(frag);
  lb.hidden = false; lb.classList.add("open");
}
function closeLb() { lb.hidden = true; lb.classList.remove("open"); lbPos = -1; }
tbody.addEventListener("click", function (e) {
  var t = e.target;
  if (t && t.tagName === "IMG" && t.hasAttribute("data-pos")) openLb(Number(t.getAttribute("data-pos")));
});
document.getElementById("hm-lb-close").addEventListener("click", closeLb);
document.getElementById("hm-lb-prev").addEventListener("click", function () { openLb(lbPos - 1); });
document.getElementById("hm-lb-next").addEventListener("click", function () { openLb(lbPos + 1); });
lb.addEventListener("click", function (e) { if (e.target === lb) closeLb(); });
document.addEventListener("keydown", function (e) {
  if (lb.hidden) return;
  if (e.key === "Escape") closeLb(); else if (e.key === "ArrowLeft") openLb(lbPos - 1); else if (e.key === "ArrowRight") openLb(lbPos + 1);
});

// ---- confusion: counts or row-normalised
document.querySelectorAll("input[name=hm-cm]").forEach(function (r) {
  r.addEventListener("change", function () {
    document.getElementById("hm-cm-counts").hidden = r.value !== "counts";
    document.getElementById("hm-cm-normalised").hidden = r.value === "counts";
  });
});
var issuesBtn = document.getElementById("hm-sort-issues");
if (issuesBtn) issuesBtn.addEventListener("click", function () { state.sortCol = "issue_rank"; state.sortDir = 1; state.page = 0; refresh(true); });
refresh(true);
window.hardmineReport = {rows: function () { return order.slice(); }, state: state};
})();
