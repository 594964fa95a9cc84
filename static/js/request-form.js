/* Request form, progressive enhancement: dependent region selects and organisation search.
   Without this file the form still works: "Update the choices" and "Search" reload it. */
(function () {
  "use strict";
  var form = document.getElementById("request-form");
  if (!form || !window.fetch) { return; }
  document.documentElement.classList.add("js");

  var province = form.querySelector("[name=province]");
  var city = form.querySelector("[name=city]");
  var district = form.querySelector("[name=district]");
  var category = form.querySelector("[name=category]");
  var orgQuery = form.querySelector("[name=org_q]");
  var org = form.querySelector("[name=requested_org]");

  function fill(select, rows, keepFirst) {
    var first = keepFirst ? select.options[0] : null;
    while (select.options.length) { select.remove(0); }
    if (first) { select.add(first); }
    rows.forEach(function (row) { select.add(new Option(row[1], row[0])); });
  }

  function load(url, params) {
    var query = new URLSearchParams(params).toString();
    return fetch(url + "?" + query, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); });
  }

  function regionsUnder(code, select, next) {
    fill(select, [], true);
    if (next) { fill(next, [], true); }
    if (!code) { return; }
    load(form.dataset.regionsUrl, { parent: code }).then(function (data) {
      fill(select, data.regions.map(function (r) { return [r.code, r.name]; }), true);
    }).catch(function () { /* the reload button still works */ });
  }

  if (province && city && district) {
    province.addEventListener("change", function () { regionsUnder(province.value, city, district); });
    city.addEventListener("change", function () { regionsUnder(city.value, district, null); });
  }

  var timer = null;
  function searchOrgs() {
    if (!org) { return; }
    var chosen = org.value;
    load(form.dataset.orgsUrl, { q: orgQuery ? orgQuery.value : "", category: category ? category.value : "" })
      .then(function (data) {
        fill(org, data.orgs.map(function (o) { return [String(o.id), o.name]; }), true);
        if (chosen) { org.value = chosen; }
        if (org.value !== chosen) { org.selectedIndex = 0; }
      }).catch(function () { /* keep the current list */ });
  }
  if (orgQuery) {
    orgQuery.addEventListener("input", function () {
      window.clearTimeout(timer);
      timer = window.setTimeout(searchOrgs, 250);
    });
    orgQuery.addEventListener("keydown", function (event) {
      if (event.key === "Enter") { event.preventDefault(); searchOrgs(); }
    });
  }
  if (category) { category.addEventListener("change", searchOrgs); }

  var errors = document.getElementById("form-errors");
  if (errors) { errors.focus(); }
})();
