/* Tocsin campaign composer: map area, texts, channels, live estimate, launch (F14, F16, F17, F34). */
(function () {
  "use strict";

  const cfg = JSON.parse(document.getElementById("compose-config").textContent);
  const form = document.getElementById("compose");
  const estimateBox = document.getElementById("estimate");
  const areaLabel = document.getElementById("area-label");
  const muniSelect = document.getElementById("municipality");
  const dialog = document.getElementById("confirm-dialog");
  const isLive = cfg.environment === "live";

  const state = { area: null, nis: null, label: "none", drawn: null, territory: null,
                  estimate: null, seq: 0 };
  const muniLayers = new Map();

  /* ---------- SMS length, encoding, segments (3GPP TS 23.038; 160/153 and 70/67) ---------- */
  const GSM_BASIC = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?" +
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
  const GSM_EXT = "^{}\\[~]|€\f";
  function smsInfo(text) {
    let septets = 0, gsm = true;
    for (const ch of text) {
      if (GSM_BASIC.includes(ch)) septets += 1;
      else if (GSM_EXT.includes(ch)) septets += 2;
      else { gsm = false; break; }
    }
    if (gsm) return { encoding: "GSM-7", units: septets,
                      segments: septets <= 160 ? 1 : Math.ceil(septets / 153) };
    const units = text.length; // UTF-16 code units
    return { encoding: "UCS-2", units: units, segments: units <= 70 ? 1 : Math.ceil(units / 67) };
  }
  function updateCount(ta) {
    const out = document.getElementById("count-" + ta.dataset.lang);
    const t = ta.value;
    if (!t) { out.textContent = "0 characters"; return; }
    const i = smsInfo(t);
    out.textContent = `${[...t].length} characters · ${i.encoding} · ${i.segments} SMS segment` +
      (i.segments > 1 ? "s" : "");
  }

  /* ---------- errors next to fields ---------- */
  function clearErrors() {
    document.querySelectorAll("[data-error-for]").forEach((el) => { el.hidden = true; el.textContent = ""; });
    document.querySelectorAll("[aria-invalid]").forEach((el) => el.removeAttribute("aria-invalid"));
  }
  function errorTarget(field) {
    field = field.replace(/^text(\.|$)/, "texts$1"); // the services say text / text.fr
    const candidates = [field];
    if (field.startsWith("area") || field.startsWith("municipality")) candidates.push("area");
    if (field.includes(".")) candidates.push(field.split(".")[0]);
    for (const c of candidates) {
      const found = document.querySelector(`[data-error-for="${CSS.escape(c)}"]`);
      if (found) return found;
    }
    return document.querySelector(dialog.open ? '[data-error-for="_dialog"]' : '[data-error-for="_general"]');
  }
  function showError(field, reason) {
    const el = errorTarget(field || "_general");
    el.textContent = reason;
    el.hidden = false;
    const lang = /^texts?\.(\w+)$/.exec(field || "");
    const input = lang ? document.getElementById("text-" + lang[1]) : null;
    if (input) {
      input.setAttribute("aria-invalid", "true");
      const det = input.closest("details");
      if (det) det.open = true;
    }
  }

  /* ---------- the request body ---------- */
  function body() {
    const texts = {};
    form.querySelectorAll("textarea[data-lang]").forEach((ta) => {
      if (ta.value.trim()) texts[ta.dataset.lang] = ta.value;
    });
    const channels = [...form.querySelectorAll('input[name="channels"]:checked')].map((c) => c.value);
    const cap = {};
    form.querySelectorAll("[data-cap]").forEach((el) => { if (el.value) cap[el.dataset.cap] = el.value; });
    return { texts: texts, channels: channels, kind: document.getElementById("kind").value,
             area_geojson: state.nis ? null : state.area, municipality_nis: state.nis, cap: cap };
  }

  async function postJSON(url, payload) {
    const r = await fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": cfg.csrf_token },
      body: JSON.stringify(payload),
    });
    if (r.status === 401) { window.location.href = "/login"; throw new Error("logged out"); }
    let data = null;
    try { data = await r.json(); } catch (e) { data = null; }
    return { ok: r.ok, status: r.status, data: data };
  }

  /* ---------- estimate ---------- */
  const fmt = new Intl.NumberFormat("en-GB");
  const LANG = { fr: "French", nl: "Dutch", de: "German", en: "English" };
  function el(tag, attrs, text) {
    const e = document.createElement(tag);
    Object.entries(attrs || {}).forEach(([k, v]) => e.setAttribute(k, v));
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function renderEstimate(est) {
    estimateBox.replaceChildren();
    const head = el("p", { class: "estimate-area" });
    head.append("Area: ", el("strong", {}, est.area_name),
      ` (${Number(est.area_km2).toLocaleString("en-GB", { maximumFractionDigits: 2 })} km²)`);
    estimateBox.append(head);
    const table = el("table", { class: "data estimate-table" });
    table.append(el("caption", { class: "visually-hidden" }, "Estimated recipients per channel and language"));
    const thead = el("thead"); const tr = el("tr");
    tr.append(el("th", { scope: "col" }, "Channel"), el("th", { scope: "col", class: "num" }, "Recipients"),
      el("th", { scope: "col" }, "By language"));
    thead.append(tr); table.append(thead);
    const tbody = el("tbody");
    const names = { sms: "SMS", email: "E-mail" };
    Object.entries(est.recipients || {}).forEach(([ch, n]) => {
      const row = el("tr");
      row.append(el("th", { scope: "row" }, names[ch] || ch), el("td", { class: "num big-number" }, fmt.format(n)));
      const langs = (est.by_language || {})[ch] || {};
      row.append(el("td", {}, Object.entries(langs).map(([l, k]) => `${LANG[l] || l}: ${fmt.format(k)}`).join(" · ") || "—"));
      tbody.append(row);
    });
    table.append(tbody);
    estimateBox.append(table);
    if (!Object.keys(est.recipients || {}).length) {
      table.remove();
      estimateBox.append(el("p", {}, "CAP feed only: no SMS or e-mail recipients."));
    }
    if (est.sms && "sms" in (est.recipients || {})) {
      const p = el("p", { class: "estimate-sms" });
      const cost = Number(est.sms.cost_eur);
      const money = (v) => v.toLocaleString("en-GB", { style: "currency", currency: "EUR",
                                                      minimumFractionDigits: 2, maximumFractionDigits: 3 });
      p.append(`SMS: ${est.sms.encoding}, ${est.sms.segments} segment${est.sms.segments > 1 ? "s" : ""} per message · cost `,
        el("strong", {}, isLive ? money(cost) : "none (simulation)"));
      if (!isLive) p.append(el("span", { class: "hint" }, ` — live it would be ${money(cost)}`));
      estimateBox.append(p);
    }
  }
  async function refreshEstimate() {
    clearErrors();
    if (!state.area && !state.nis) {
      state.estimate = null;
      estimateBox.replaceChildren(el("p", { class: "hint" }, "Choose an area to see how many people will be reached."));
      return null;
    }
    const seq = ++state.seq;
    estimateBox.setAttribute("aria-busy", "true");
    try {
      const r = await postJSON("/api/campaigns/estimate", body());
      if (seq !== state.seq) return null; // a newer estimate is on its way
      if (r.ok) { state.estimate = r.data; renderEstimate(r.data); return r.data; }
      state.estimate = null;
      estimateBox.replaceChildren(el("p", { class: "hint" }, "No estimate: correct the field marked in red."));
      const err = (r.data && r.data.error) || { field: "_general", reason: `Error ${r.status}` };
      showError(err.field, err.reason);
      return null;
    } catch (e) {
      if (seq === state.seq) showError("_general", "The server cannot be reached. Check the connection and try again.");
      return null;
    } finally {
      if (seq === state.seq) estimateBox.setAttribute("aria-busy", "false");
    }
  }
  let timer = null;
  function scheduleEstimate() { clearTimeout(timer); timer = setTimeout(refreshEstimate, 400); }

  /* ---------- map ---------- */
  const map = L.map("map", { zoomSnap: 0.25, keyboard: true });
  if (cfg.tile_url) {
    L.tileLayer(cfg.tile_url, { maxZoom: 19, attribution: "Map tiles" }).addTo(map);
  }
  const b = cfg.bbox;
  map.fitBounds([[b[1], b[0]], [b[3], b[2]]], { padding: [10, 10] });
  const MUNI_STYLE = { color: "#4a5568", weight: 1, fillColor: "#4a5568", fillOpacity: 0.04 };
  const MUNI_SELECTED = { color: "#b30000", weight: 3, fillColor: "#e53e3e", fillOpacity: 0.3 };

  function setArea(geometry, nis, label) {
    state.area = geometry; state.nis = nis; state.label = label;
    areaLabel.textContent = label;
    muniLayers.forEach((layer, code) => layer.setStyle(code === nis ? MUNI_SELECTED : MUNI_STYLE));
    muniSelect.value = nis || "";
    scheduleEstimate();
  }
  function removeDrawn() {
    if (state.drawn) { map.removeLayer(state.drawn); state.drawn = null; }
  }
  function clearArea() { removeDrawn(); setArea(null, null, "none"); }

  fetch("/api/authority/territory.geojson", { credentials: "same-origin" })
    .then((r) => r.json())
    .then((feature) => {
      state.territory = feature;
      L.geoJSON(feature, { pmIgnore: true, interactive: false,
        style: { color: "#1a365d", weight: 3, fill: false, dashArray: "6 4" } }).addTo(map);
    });
  fetch("/api/authority/municipalities.geojson", { credentials: "same-origin" })
    .then((r) => r.json())
    .then((fc) => {
      L.geoJSON(fc, {
        pmIgnore: true, style: MUNI_STYLE,
        onEachFeature: (feature, layer) => {
          const p = feature.properties;
          muniLayers.set(p.nis, layer);
          layer.feature = feature;
          layer.bindTooltip(p.name, { sticky: true });
          layer.on("click", () => {
            if (map.pm.globalDrawModeEnabled()) return; // the click is a polygon vertex
            removeDrawn();
            setArea(feature.geometry, p.nis, p.name);
          });
          muniSelect.append(new Option(p.name, p.nis));
        },
      }).addTo(map).bringToBack();
    });

  map.pm.setGlobalOptions({ pathOptions: { color: "#b30000", weight: 3, fillColor: "#e53e3e", fillOpacity: 0.3 } });
  map.pm.addControls({
    position: "topleft", drawMarker: false, drawCircleMarker: false, drawPolyline: false,
    drawText: false, drawCircle: false, cutPolygon: false, rotateMode: false,
    drawPolygon: true, drawRectangle: true, editMode: true, dragMode: true, removalMode: true,
  });
  function drawnChanged() {
    if (!state.drawn) return;
    setArea(state.drawn.toGeoJSON().geometry, null, "drawn area");
  }
  map.on("pm:create", (e) => {
    removeDrawn();
    state.drawn = e.layer;
    e.layer.on("pm:edit", drawnChanged);
    e.layer.on("pm:dragend", drawnChanged);
    drawnChanged();
  });
  map.on("pm:remove", (e) => { if (e.layer === state.drawn) { state.drawn = null; setArea(null, null, "none"); } });

  muniSelect.addEventListener("change", () => {
    const nis = muniSelect.value;
    removeDrawn();
    if (!nis) { setArea(null, null, "none"); return; }
    const layer = muniLayers.get(nis);
    setArea(layer.feature.geometry, nis, layer.feature.properties.name);
    map.fitBounds(layer.getBounds(), { padding: [20, 20] });
  });
  const whole = document.getElementById("whole-territory");
  if (whole) whole.addEventListener("click", () => {
    if (!state.territory) return;
    removeDrawn();
    setArea(state.territory.geometry, null, cfg.authority_name + " (whole territory)");
  });
  document.getElementById("clear-area").addEventListener("click", clearArea);

  /* ---------- texts, channels, kind ---------- */
  form.querySelectorAll("textarea[data-lang]").forEach((ta) => {
    ta.addEventListener("input", () => { updateCount(ta); scheduleEstimate(); });
    updateCount(ta);
  });
  form.querySelectorAll('input[name="channels"], #kind, [data-cap]').forEach((c) =>
    c.addEventListener("change", scheduleEstimate));

  /* ---------- launch (F34: live has its own typed confirmation) ---------- */
  const go = document.getElementById("confirm-go");
  const confirmInput = document.getElementById("confirm-area");
  function typedOk() {
    return !confirmInput || (state.estimate &&
      confirmInput.value.trim().toLowerCase() === String(state.estimate.area_name).trim().toLowerCase());
  }
  if (confirmInput) confirmInput.addEventListener("input", () => { go.disabled = !typedOk(); });
  document.getElementById("confirm-cancel").addEventListener("click", () => dialog.close());

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clearTimeout(timer);
    if (!state.area && !state.nis) { showError("area", "Choose an area first: draw it on the map or choose a municipality."); return; }
    const est = await refreshEstimate();
    if (!est) return;
    const total = Object.values(est.recipients || {}).reduce((a, n) => a + Number(n), 0);
    const summary = document.getElementById("confirm-summary");
    const kind = document.getElementById("kind");
    summary.replaceChildren(
      el("p", {}, `${kind.options[kind.selectedIndex].text}`),
      el("p", { class: "confirm-big" }, Object.keys(est.recipients || {}).length
        ? `${fmt.format(total)} recipients in ${est.area_name}`
        : `CAP feed only, for ${est.area_name}`),
      el("p", {}, Object.entries(est.recipients || {}).map(([c, n]) => `${c === "sms" ? "SMS" : "E-mail"}: ${fmt.format(n)}`).join(" · ")));
    if (confirmInput) {
      document.getElementById("confirm-area-name").textContent = est.area_name;
      confirmInput.value = "";
      go.disabled = true;
    }
    dialog.showModal();
    (confirmInput || go).focus();
  });

  go.addEventListener("click", async () => {
    if (!typedOk()) return;
    go.disabled = true;
    const payload = body();
    if (confirmInput) payload.confirm_area_name = confirmInput.value;
    try {
      const r = await postJSON("/api/campaigns", payload);
      if (r.ok && r.data && r.data.campaign_id) {
        window.location.href = "/campaigns/" + encodeURIComponent(r.data.campaign_id);
        return;
      }
      const err = (r.data && r.data.error) || { field: "_general", reason: `Error ${r.status}` };
      if (err.field !== "confirm_area_name") dialog.close();
      showError(err.field, err.reason);
    } catch (e) {
      dialog.close();
      showError("_general", "The server cannot be reached. Nothing was launched; try again.");
    }
    go.disabled = !typedOk();
  });
})();
