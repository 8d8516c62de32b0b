/* Tocsin campaign composer: map area, content, channels, live estimate, launch
   (F12, F13, F14, F15, F16, F17, F19, F34). The message tools (language tabs, SMS preview,
   voice, language warnings, placeholders) are in message-tools.js. */
(function () {
  "use strict";

  const cfg = JSON.parse(document.getElementById("compose-config").textContent);
  const form = document.getElementById("compose");
  const estimateBox = document.getElementById("estimate");
  const areaLabel = document.getElementById("area-label");
  const muniSelect = document.getElementById("municipality");
  const dialog = document.getElementById("confirm-dialog");
  const isLive = cfg.environment === "live";
  const tools = window.TocsinMessageTools;
  const prefill = cfg.prefill || {};
  const kindSelect = document.getElementById("kind");
  const kindSentence = document.getElementById("kind-sentence");

  const state = { area: null, nis: null, label: "none", drawn: null, territory: null,
                  estimate: null, seq: 0 };
  const muniLayers = new Map();

  /* ---------- errors next to fields ---------- */
  function clearErrors() {
    document.querySelectorAll("[data-error-for]").forEach((el) => { el.hidden = true; el.textContent = ""; });
    document.querySelectorAll("[aria-invalid]").forEach((el) => el.removeAttribute("aria-invalid"));
  }
  function errorTarget(field) {
    field = field.replace(/^text(\.|$)/, "texts$1"); // the services say text / text.fr
    const candidates = [field];
    if (field.startsWith("schedul")) candidates.push("scheduled_for");
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
    const lang = /^(?:texts?|content)\.(\w+)(?:\.(\w+))?$/.exec(field || "");
    let input = null;
    if (lang) {
      tools.reveal(lang[1]);
      input = document.getElementById(lang[2] ? `content-${lang[1]}-${lang[2]}` : "text-" + lang[1]);
    }
    const fieldName = /^fields\.(\w+)$/.exec(field || "");
    if (fieldName) input = document.getElementById("field-" + fieldName[1]);
    if (input) {
      input.setAttribute("aria-invalid", "true");
      const det = input.closest("details");
      if (det) det.open = true;
    }
  }

  /* ---------- the request body ---------- */
  function texts() {
    const out = {};
    form.querySelectorAll("textarea[data-lang]").forEach((ta) => {
      if (ta.value.trim()) out[ta.dataset.lang] = ta.value;
    });
    return out;
  }
  function scheduledFor() {
    const later = form.querySelector('input[name="when"][value="later"]');
    if (!later || !later.checked) return null;
    const v = document.getElementById("schedule-at").value; // local Europe/Brussels time
    return v ? v.replace("T", " ") : "";
  }
  function body() {
    const channels = [...form.querySelectorAll('input[name="channels"]:checked')].map((c) => c.value);
    const cap = {};
    form.querySelectorAll("[data-cap]").forEach((el) => { if (el.value) cap[el.dataset.cap] = el.value; });
    const b = { texts: texts(), content: tools.content(), fields: tools.fields(), channels: channels,
                kind: kindSelect.value, area_geojson: state.nis ? null : state.area,
                municipality_nis: state.nis, cap: cap };
    if (prefill.template_id) b.template_id = prefill.template_id;
    if (prefill.draft_id) b.draft_id = prefill.draft_id;
    const when = scheduledFor();
    if (when !== null) b.scheduled_for = when;
    return b;
  }
  const postJSON = tools.postJSON;

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
    tools.showRecipients(est);
    tools.refreshAll(); // the previews fill {area_name} with the estimated area's name
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
      tools.showRecipients(null);
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
  function scheduleEstimate() { clearTimeout(timer); timer = setTimeout(refreshEstimate, 300); }

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
      applyPrefillArea();
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

  /* The template's or draft's saved area (step 2 of a template launch: the estimate follows). */
  function applyPrefillArea() {
    if (prefill.municipality_nis && muniLayers.has(prefill.municipality_nis)) {
      const layer = muniLayers.get(prefill.municipality_nis);
      setArea(layer.feature.geometry, prefill.municipality_nis, layer.feature.properties.name);
      map.fitBounds(layer.getBounds(), { padding: [20, 20] });
    } else if (prefill.area_geojson) {
      removeDrawn();
      const layer = L.geoJSON(prefill.area_geojson, { style: { color: "#b30000", weight: 3, fillColor: "#e53e3e", fillOpacity: 0.3 } });
      const drawn = layer.getLayers()[0];
      if (!drawn) return;
      drawn.addTo(map);
      state.drawn = drawn;
      drawn.on("pm:edit", drawnChanged);
      drawn.on("pm:dragend", drawnChanged);
      setArea(prefill.area_geojson, null, prefill.area_label || "saved area");
      map.fitBounds(drawn.getBounds(), { padding: [20, 20] });
    }
  }

  /* ---------- texts, channels, kind (F12: the sentence the operator confirms) ---------- */
  tools.init({
    csrf: cfg.csrf_token, authorityId: cfg.authority_id, environment: cfg.environment,
    maxSegments: cfg.sms_max_segments, required: cfg.required_languages,
    areaName: () => (state.estimate ? state.estimate.area_name : ""),
    onChange: scheduleEstimate,
  });
  function kindText() {
    const sentence = (cfg.kind_sentences || {})[kindSelect.value] || "";
    return sentence + (isLive ? "" : " In simulation nothing is really sent.");
  }
  function showKind() {
    kindSentence.textContent = kindText();
    kindSentence.className = "kind-sentence kind-sentence-" + kindSelect.value;
  }
  kindSelect.addEventListener("change", showKind);
  showKind();
  form.querySelectorAll('input[name="channels"], #kind, [data-cap]').forEach((c) =>
    c.addEventListener("change", scheduleEstimate));
  form.querySelectorAll('input[name="when"]').forEach((r) => r.addEventListener("change", () => {
    document.getElementById("schedule-field").hidden = scheduledFor() === null;
  }));

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
    if (scheduledFor() === "") { showError("scheduled_for", "Choose the date and time to send it, or choose Now."); return; }
    const est = await refreshEstimate();
    if (!est) return;
    const total = Object.values(est.recipients || {}).reduce((a, n) => a + Number(n), 0);
    const summary = document.getElementById("confirm-summary");
    const kind = kindSelect;
    const when = scheduledFor();
    summary.replaceChildren(
      el("p", { class: "confirm-kind kind-sentence-" + kind.value }, kindText()),
      el("p", {}, when ? `Scheduled for ${when} (Brussels time).` : "Sent now."),
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

  /* ---------- save as template (F15) ---------- */
  const tDialog = document.getElementById("template-dialog");
  if (tDialog) {
    const nameInput = document.getElementById("template-name");
    const saved = document.getElementById("template-saved");
    const tError = tDialog.querySelector('[data-error-for="_template"]');
    document.getElementById("save-template").addEventListener("click", () => {
      tError.hidden = true; saved.hidden = true;
      nameInput.value = prefill.template_name && prefill.source !== "template" ? prefill.template_name : "";
      tDialog.showModal();
      nameInput.focus();
    });
    document.getElementById("template-cancel").addEventListener("click", () => tDialog.close());
    document.getElementById("template-save").addEventListener("click", async () => {
      const b = body();
      const payload = { name: nameInput.value, kind: b.kind, channels: b.channels, texts: b.texts,
                        content: b.content, fields: Object.keys(b.fields), cap: b.cap,
                        area_geojson: b.area_geojson, municipality_nis: b.municipality_nis };
      tError.hidden = true;
      try {
        const r = await postJSON("/api/templates", payload);
        if (r.ok) {
          saved.hidden = false;
          saved.replaceChildren(`Saved as “${r.data.name}” (area: ${r.data.area_label}). `,
            el("a", { href: "/templates" }, "See the templates"));
          return;
        }
        const err = (r.data && r.data.error) || { field: "", reason: `Error ${r.status}` };
        tError.textContent = (err.field && err.field !== "name" ? err.field + ": " : "") + err.reason;
        tError.hidden = false;
      } catch (e) {
        tError.textContent = "The server cannot be reached: nothing was saved.";
        tError.hidden = false;
      }
    });
  }
})();
