// The citizen portal's only script (every page works without it). First: after a page
// load with errors, the focus goes to the error summary (role="alert", tabindex="-1"),
// so that the keyboard starts there, not at the top (WCAG 2.4.3); a page whose one task
// is a field puts it there itself (autofocus, the code page).
(function () {
  "use strict";
  var summary = document.getElementById("error-summary");
  if (!summary || document.querySelector("[autofocus]")) { return; }
  summary.focus();
})();

// Then: solves the registration form's proof of work
// (hashcash, subscribers/challenge.py) so that the code is sent without the no-script
// wait. SHA-256(challenge + ":" + n) must start with `difficulty` zero bits.
(function () {
  "use strict";
  var form = document.getElementById("code-form");
  if (!form || !window.crypto || !window.crypto.subtle || !window.TextEncoder) { return; }
  var challenge = form.querySelector("input[name=challenge]").value;
  var output = form.querySelector("input[name=solution]");
  var difficulty = parseInt(form.getAttribute("data-difficulty"), 10) || 0;
  var encoder = new TextEncoder();
  var done = false;
  var waiting = null;

  function zeroBits(bytes) {
    var bits = 0;
    for (var i = 0; i < bytes.length; i++) {
      if (bytes[i] === 0) { bits += 8; continue; }
      var b = bytes[i];
      while ((b & 0x80) === 0) { bits += 1; b <<= 1; }
      return bits;
    }
    return bits;
  }

  function search(start) {
    var tries = [];
    for (var n = start; n < start + 256; n++) {
      tries.push(window.crypto.subtle.digest("SHA-256", encoder.encode(challenge + ":" + n)));
    }
    return Promise.all(tries).then(function (digests) {
      for (var i = 0; i < digests.length; i++) {
        if (zeroBits(new Uint8Array(digests[i])) >= difficulty) { return start + i; }
      }
      return search(start + 256);
    });
  }

  search(0).then(function (n) {
    output.value = String(n);
    done = true;
    if (waiting) { waiting(); }
  });

  form.addEventListener("submit", function (event) {
    if (done) { return; }
    event.preventDefault();
    var button = form.querySelector("button[type=submit]");
    if (button) { button.setAttribute("aria-busy", "true"); }
    waiting = function () { form.submit(); };
  });
})();

// The profile form's extras (issue 10 point 4), both optional: the address fields suggest
// values from the official address register (native <datalist>: the browser's own
// keyboard handling and announcement), and a row the register missed gets a map to place
// the pin (Leaflet, when a tile server is configured); the latitude and longitude fields
// stay the way to do it without a pointer or without JavaScript.
(function () {
  "use strict";
  var node = document.getElementById("portal-config");
  if (!node) { return; }
  var cfg = JSON.parse(node.textContent);
  var PARTS = ["municipality", "street", "number", "box"];
  var status = document.createElement("p");
  status.className = "visually-hidden";
  status.setAttribute("role", "status");
  document.body.appendChild(status);

  function value(row, part) {
    var input = document.getElementById("addr-" + row + "-" + part);
    return input ? input.value.trim() : "";
  }

  function url(row, part, q) {
    var params = new URLSearchParams({ lang: cfg.lang, limit: "10" });
    if (part === "municipality") {
      params.set("q", q);
      return "/register/addresses/municipalities?" + params;
    }
    params.set("municipality", value(row, "municipality"));
    if (!params.get("municipality")) { return null; }
    if (part === "street") { params.set("q", q); return "/register/addresses/streets?" + params; }
    params.set("street", value(row, "street"));
    if (!params.get("street")) { return null; }
    if (part === "number") { params.set("q", q); return "/register/addresses/numbers?" + params; }
    params.set("number", value(row, "number"));
    return params.get("number") ? "/register/addresses/boxes?" + params : null;
  }

  function label(part, item) {
    if (part === "municipality") { return item.label; }
    if (part === "street") { return item.name; }
    return String(item);
  }

  function attach(input, row, part) {
    var list = document.createElement("datalist");
    list.id = input.id + "-options";
    input.parentNode.appendChild(list);
    input.setAttribute("list", list.id);
    var timer = null;
    var asked = 0;
    function suggest() {
      var target = url(row, part, input.value.trim());
      if (!target || (part === "municipality" && !input.value.trim())) { return; }
      var mine = ++asked;
      fetch(target, { headers: { Accept: "application/json" } })
        .then(function (r) { return r.ok ? r.json() : { items: [] }; })
        .then(function (data) {
          if (mine !== asked) { return; }
          list.textContent = "";
          data.items.forEach(function (item) {
            var option = document.createElement("option");
            option.value = label(part, item);
            list.appendChild(option);
          });
          var n = data.items.length;
          if (n && document.activeElement === input) {
            status.textContent = (n === 1 ? cfg.one : cfg.many).replace(/\d+/, String(n));
          }
        })
        .catch(function () { /* the field works as plain text */ });
    }
    input.addEventListener("input", function () {
      window.clearTimeout(timer);
      timer = window.setTimeout(suggest, 200);
    });
    input.addEventListener("focus", function () {
      if (part !== "municipality") { suggest(); }
    });
  }

  if (cfg.autocomplete) {
    for (var row = 0; row < 5; row++) {
      PARTS.forEach(function (part) {
        var input = document.getElementById("addr-" + row + "-" + part);
        if (input) { attach(input, row, part); }
      });
    }
  }

  if (!cfg.tile_url || !window.L) { return; }
  document.querySelectorAll("fieldset.pin").forEach(function (box) {
    var el = box.querySelector(".pin-map");
    var lat = box.querySelector("input[name$='-lat']");
    var lon = box.querySelector("input[name$='-lon']");
    if (!el || !lat || !lon) { return; }
    el.hidden = false;
    el.setAttribute("role", "region");
    el.setAttribute("aria-label", cfg.map);
    var start = [parseFloat(lat.value) || parseFloat(box.dataset.lat) || 50.64,
                 parseFloat(lon.value) || parseFloat(box.dataset.lon) || 4.67];
    var map = L.map(el, { scrollWheelZoom: false }).setView(start, box.dataset.lat ? 16 : 8);
    L.tileLayer(cfg.tile_url, { maxZoom: 19, attribution: cfg.map_tiles }).addTo(map);
    var pin = null;
    function place(at) {
      if (!pin) {
        pin = L.marker(at, { draggable: true, keyboard: false }).addTo(map);
        pin.on("dragend", function () { place(pin.getLatLng()); });
      }
      pin.setLatLng(at);
      lat.value = at.lat.toFixed(6);
      lon.value = at.lng.toFixed(6);
    }
    if (lat.value && lon.value) { place(L.latLng(start[0], start[1])); }
    map.on("click", function (e) { place(e.latlng); });
  });
})();
