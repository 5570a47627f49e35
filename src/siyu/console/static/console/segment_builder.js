// Segment builder: condition rows <-> the rule JSON in the hidden textarea (segments/rules.py format).
// Rows are cloned from server-rendered <template>s; every change rewrites the JSON and fires
// "ruleChange" on <body>, which htmx debounces into a POST to the preview view.
(function () {
  "use strict";

  var form, rows, textarea, advanced, toggle;
  var LEAF = ["field", "tags", "reach", "org", "event", "orders", "bought", "layer", "segment"];
  var ATTR_PREFIX = "attributes.";
  var AMOUNTS = ["total_fen", "average_fen"];

  function $(root, key) { return root.querySelector("[data-k='" + key + "']:not([hidden])") || root.querySelector("[data-k='" + key + "']"); }
  function val(root, key) { var el = $(root, key); return el ? el.value.trim() : ""; }
  function selected(el) { return Array.prototype.filter.call(el.options, function (o) { return o.selected; }).map(function (o) { return o.value; }); }
  function select(el, values) {
    var wanted = values.map(String);
    Array.prototype.forEach.call(el.options, function (o) { o.selected = wanted.indexOf(o.value) >= 0; });
  }
  function set(root, key, value) { var el = $(root, key); if (el && value !== undefined && value !== null) el.value = value; }
  function int(text) { return text === "" ? null : Number(text); }
  function jsonValue(text) {
    // Custom attributes hold JSON: numbers and true/false are sent as such, the rest as text.
    if (text === "true" || text === "false") return text === "true";
    if (text !== "" && !isNaN(Number(text))) return Number(text);
    return text;
  }

  // -- window -------------------------------------------------------------------------------
  function readWindow(row) {
    var kind = val(row, "window");
    if (kind === "last_days") return {last_days: int(val(row, "last_days"))};
    if (kind === "range") {
      var w = {};
      if (val(row, "from")) w.from = val(row, "from");
      if (val(row, "to")) w.to = val(row, "to");
      return w;
    }
    return null;
  }
  function writeWindow(row, w) {
    if (!w) return;
    if (w.last_days) { set(row, "window", "last_days"); set(row, "last_days", w.last_days); }
    else { set(row, "window", "range"); set(row, "from", w.from || ""); set(row, "to", w.to || ""); }
  }

  // -- rows -> rule ---------------------------------------------------------------------------
  var read = {
    field: function (row) {
      var field = val(row, "field"), op = val(row, "op"), text = val(row, "value");
      var attribute = field === "attributes";
      var node = {type: "field", field: attribute ? ATTR_PREFIX + val(row, "attr") : field, op: op};
      if (op === "is_set" || op === "not_set") return node;
      if (op === "in" || op === "not_in") {
        node.value = text.split(/[,，、]/).map(function (s) { return s.trim(); }).filter(Boolean);
        if (attribute) node.value = node.value.map(jsonValue);
      } else node.value = text === "" ? null : (attribute ? jsonValue(text) : text);
      return node;
    },
    tags: function (row) { return {type: "tags", match: val(row, "match"), tag_ids: selected($(row, "tag_ids")).map(Number)}; },
    reach: function (row) {
      var node = {type: "reach", channel: val(row, "channel")};
      if (node.channel === "wecom") {
        if (val(row, "staff_id")) node.staff_id = Number(val(row, "staff_id"));
        if (val(row, "store_id")) node.store_id = Number(val(row, "store_id"));
      }
      return node;
    },
    org: function (row) {
      var level = val(row, "level");
      var ids = row.querySelector("[data-k='ids'][data-level='" + level + "']");
      return {type: "org", level: level, ids: selected(ids).map(Number)};
    },
    event: function (row) {
      var node = {type: "event", name: val(row, "name"), count: {op: val(row, "count_op"), value: int(val(row, "count_value"))}};
      var w = readWindow(row);
      if (w) node.window = w;
      return node;
    },
    orders: function (row) {
      var measure = val(row, "measure"), text = val(row, "value");
      var value = text;
      if (measure !== "first_order_date") {
        value = text === "" ? null : Number(text);
        if (value !== null && AMOUNTS.indexOf(measure) >= 0) value = Math.round(value * 100);
      }
      var node = {type: "orders", measure: measure, op: val(row, "op"), value: value};
      var w = readWindow(row);
      if (w && measure !== "days_since_last" && measure !== "first_order_date") node.window = w;
      return node;
    },
    bought: function (row) {
      var node = {type: "bought"};
      node[val(row, "by")] = val(row, "value") || null;
      var w = readWindow(row);
      if (w) node.window = w;
      return node;
    },
    layer: function (row) {
      var layer = val(row, "layer");
      var codes = row.querySelector("[data-k='codes'][data-layer='" + layer + "']");
      if (codes) {
        var picked = selected(codes), negate = val(row, "code_op") === "not_in";
        if (picked.length === 1) return {type: "layer", layer: layer, op: negate ? "ne" : "eq", value: picked[0]};
        return {type: "layer", layer: layer, op: negate ? "not_in" : "in", value: picked};
      }
      return {type: "layer", layer: layer, op: val(row, "op"), value: int(val(row, "value"))};
    },
    segment: function (row) { return {type: "segment", segment_id: int(val(row, "segment_id"))}; }
  };

  function serialise() {
    var conditions = Array.prototype.map.call(rows.children, function (row) {
      var node = read[row.dataset.kind](row);
      return $(row, "not").checked ? {type: "not", condition: node} : node;
    });
    var combinator = form.querySelector("input[name=combinator]:checked").value;
    textarea.value = JSON.stringify({version: 1, match: {type: combinator, conditions: conditions}}, null, 2);
    document.getElementById("no-conditions").hidden = conditions.length > 0;
    changed(conditions.length > 0);
  }

  function changed(hasConditions) {
    if (hasConditions) document.body.dispatchEvent(new CustomEvent("ruleChange"));
    else document.getElementById("preview").innerHTML = "<div class='text-muted small'>" + emptyText + "</div>";
  }
  var emptyText = "";

  // -- rule -> rows ---------------------------------------------------------------------------
  var write = {
    field: function (row, n) {
      var attribute = n.field.indexOf(ATTR_PREFIX) === 0;
      set(row, "field", attribute ? "attributes" : n.field);
      if (attribute) set(row, "attr", n.field.slice(ATTR_PREFIX.length));
      set(row, "op", n.op);
      if (Array.isArray(n.value)) set(row, "value", n.value.join(", "));
      else if (n.value !== undefined && n.value !== null) set(row, "value", String(n.value));
    },
    tags: function (row, n) { set(row, "match", n.match); select($(row, "tag_ids"), n.tag_ids); },
    reach: function (row, n) { set(row, "channel", n.channel); set(row, "staff_id", n.staff_id || ""); set(row, "store_id", n.store_id || ""); },
    org: function (row, n) { set(row, "level", n.level); select(row.querySelector("[data-k='ids'][data-level='" + n.level + "']"), n.ids); },
    event: function (row, n) {
      set(row, "name", n.name);
      var count = n.count || {op: "gte", value: 1};
      set(row, "count_op", count.op); set(row, "count_value", count.value);
      writeWindow(row, n.window);
    },
    orders: function (row, n) {
      set(row, "measure", n.measure); set(row, "op", n.op);
      set(row, "value", AMOUNTS.indexOf(n.measure) >= 0 ? n.value / 100 : n.value);
      writeWindow(row, n.window);
    },
    bought: function (row, n) { set(row, "by", n.sku ? "sku" : "category"); set(row, "value", n.sku || n.category); writeWindow(row, n.window); },
    layer: function (row, n) {
      set(row, "layer", n.layer);
      var codes = row.querySelector("[data-k='codes'][data-layer='" + n.layer + "']");
      if (codes) {
        set(row, "code_op", n.op === "ne" || n.op === "not_in" ? "not_in" : "in");
        select(codes, Array.isArray(n.value) ? n.value : [n.value]);
      } else { set(row, "op", n.op); set(row, "value", n.value); }
    },
    segment: function (row, n) { set(row, "segment_id", n.segment_id); }
  };

  // Only flat lists of (possibly negated) leaves fit the rows; event property filters do not.
  function leafFits(n) { return n && LEAF.indexOf(n.type) >= 0 && !(n.type === "event" && n.where && n.where.length); }
  function fits(doc) {
    if (!doc || typeof doc !== "object" || !doc.match) return false;
    var m = doc.match;
    var list = (m.type === "and" || m.type === "or") ? m.conditions : [m];
    return Array.isArray(list) && list.every(function (c) { return c && c.type === "not" ? leafFits(c.condition) : leafFits(c); });
  }

  function load(doc) {
    rows.innerHTML = "";
    var m = doc.match;
    var list = (m.type === "and" || m.type === "or") ? m.conditions : [m];
    form.querySelector("#comb-" + (m.type === "or" ? "or" : "and")).checked = true;
    list.forEach(function (c) {
      var negated = c.type === "not";
      var row = addRow(negated ? c.condition.type : c.type);
      write[row.dataset.kind](row, negated ? c.condition : c);
      $(row, "not").checked = negated;
      arrange(row);
    });
  }

  // -- row widgets ---------------------------------------------------------------------------
  function addRow(kind) {
    var row = document.getElementById("tpl-row").content.firstElementChild.cloneNode(true);
    var body = document.querySelector("template[data-kind='" + kind + "']").content.cloneNode(true);
    row.dataset.kind = kind;
    row.querySelector(".cond-kind").textContent = document.querySelector("#new-kind option[value='" + kind + "']").textContent;
    row.querySelector(".cond-body").appendChild(body);
    row.querySelector(".cond-remove").addEventListener("click", function () { row.remove(); serialise(); });
    rows.appendChild(row);
    arrange(row);
    return row;
  }

  // Show the inputs that apply to the current choices in a row.
  function arrange(row) {
    var kind = row.dataset.kind;
    row.querySelectorAll("[data-window]").forEach(function (w) {
      var mode = w.querySelector("[data-k='window']").value;
      w.querySelectorAll("[data-show]").forEach(function (el) { el.hidden = el.dataset.show !== mode; });
    });
    if (kind === "field") {
      var fieldSel = row.querySelector("[data-k='field']");
      var opt = fieldSel.options[fieldSel.selectedIndex];
      var op = row.querySelector("[data-k='op']").value;
      var value = row.querySelector("[data-k='value']");
      row.querySelector("[data-k='attr']").hidden = fieldSel.value !== "attributes";
      value.type = opt && opt.hasAttribute("data-date") && op !== "in" && op !== "not_in" ? "date" : "text";
      value.hidden = op === "is_set" || op === "not_set";
      if (fieldSel.value === "gender") value.setAttribute("list", "dl-gender"); else value.removeAttribute("list");
    } else if (kind === "reach") {
      var wecom = row.querySelector("[data-k='channel']").value === "wecom";
      row.querySelectorAll("[data-wecom]").forEach(function (el) { el.hidden = !wecom; });
    } else if (kind === "org") {
      var level = row.querySelector("[data-k='level']").value;
      row.querySelectorAll("[data-k='ids']").forEach(function (el) { el.hidden = el.dataset.level !== level; });
    } else if (kind === "orders") {
      var measure = row.querySelector("[data-k='measure']").value;
      var dated = measure === "first_order_date";
      row.querySelector("[data-k='value']").type = dated ? "date" : "number";
      row.querySelector("[data-window]").hidden = dated || measure === "days_since_last";
    } else if (kind === "layer") {
      var layerSel = row.querySelector("[data-k='layer']");
      var code = layerSel.options[layerSel.selectedIndex].hasAttribute("data-code");
      row.querySelectorAll("[data-for='code']").forEach(function (el) { el.hidden = !code; });
      row.querySelectorAll("[data-for='number']").forEach(function (el) { el.hidden = code; });
      row.querySelectorAll("[data-k='codes']").forEach(function (el) { el.hidden = !code || el.dataset.layer !== layerSel.value; });
    }
  }

  // -- errors from the preview: outline the row the field path points at ------------------------
  function markError() {
    rows.querySelectorAll(".cond-row").forEach(function (r) { r.classList.remove("border-danger"); });
    var el = document.querySelector("#preview [data-error-field], .alert [data-error-field]");
    var m = el && /^match\.conditions\.(\d+)/.exec(el.dataset.errorField);
    if (m && rows.children[Number(m[1])]) rows.children[Number(m[1])].classList.add("border-danger");
  }

  function setAdvanced(on) {
    advanced.hidden = !on;
    document.getElementById("builder").hidden = on;
    toggle.checked = on;
  }

  function init() {
    form = document.getElementById("segment-form");
    rows = document.getElementById("conditions");
    textarea = document.getElementById("rule-json");
    advanced = document.getElementById("advanced");
    toggle = document.getElementById("advanced-toggle");
    emptyText = document.querySelector("#preview .text-muted").textContent;
    var doc = null;
    try { doc = JSON.parse(textarea.value); } catch (e) { doc = null; }
    if (fits(doc)) {
      load(doc);
      document.getElementById("no-conditions").hidden = rows.children.length > 0;
      changed(rows.children.length > 0);
    } else {
      document.getElementById("builder-unfit").hidden = doc === null ? true : false;
      setAdvanced(true);
      changed(true);
    }
    markError();

    rows.addEventListener("change", function (e) { arrange(e.target.closest(".cond-row")); serialise(); });
    rows.addEventListener("input", function (e) { if (e.target.tagName === "INPUT") serialise(); });
    form.querySelectorAll("input[name=combinator]").forEach(function (r) { r.addEventListener("change", serialise); });
    document.getElementById("add-condition").addEventListener("click", function () {
      addRow(document.getElementById("new-kind").value);
      serialise();
    });
    textarea.addEventListener("input", function () { changed(true); });
    toggle.addEventListener("change", function () {
      if (toggle.checked) { setAdvanced(true); return; }
      var parsed = null;
      try { parsed = JSON.parse(textarea.value); } catch (e) { parsed = null; }
      if (!fits(parsed)) {
        document.getElementById("builder-unfit").hidden = false;
        toggle.checked = true;
        return;
      }
      load(parsed);
      setAdvanced(false);
      serialise();
    });
    document.body.addEventListener("htmx:afterSwap", markError);
  }

  document.addEventListener("DOMContentLoaded", init);
})();
