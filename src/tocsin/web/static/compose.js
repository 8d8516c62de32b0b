/* Tocsin campaign composer: map area, content, channels, expiry, live estimate, launch, and
   the update of a sent campaign (?update=<id>). The message tools (language tabs, SMS
   preview, voice, language warnings, placeholders) are in message-tools.js.
   Automatic (debounced) estimates never move the focus nor switch the language tab: they
   only mark the tab and say what is wrong next to the tabs. Only an explicit Launch click
   shows the first problem's field. */
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

  const isUpdate = prefill.source === "update" && !!prefill.update_id;
  const LANG_NAMES = { fr: "French", nl: "Dutch", de: "German", en: "English" };
  const langError = document.getElementById("lang-error");
  /* Server reasons may cite specification items or field paths in brackets: operators need neither. */
  const cleanReason = (s) => String(s || "").replace(/\s*\((?:SPEC )?F\d+(?:,\s*F\d+)*\)/g, "")
    .replace(/\s*\((?:texts?|content|fields)\.[\w.]+\)/g, "");

  /* ---------- errors next to fields ---------- */
  function clearErrors() {
    document.querySelectorAll("[data-error-for]").forEach((el) => { el.hidden = true; el.textContent = ""; });
    document.querySelectorAll("[aria-invalid]").forEach((el) => {
      if (!el.closest(".sms-preview.over") && !(el.matches("textarea[data-lang]") &&
          document.getElementById("preview-" + el.dataset.lang).classList.contains("over"))) {
        el.removeAttribute("aria-invalid");
      }
    });
    if (langError) { langError.hidden = true; langError.textContent = ""; }
    tools.setErrorLanguages([]);
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
  /* ``explicit``: the operator clicked Launch, so the first problem is shown (its tab
     selected, its field focused). Otherwise (an automatic estimate while typing) nothing
     moves: the language's tab is marked and the reason shown next to the tabs. */
  function showError(field, reason, explicit) {
    reason = cleanReason(reason);
    const el = errorTarget(field || "_general");
    el.textContent = reason;
    el.hidden = false;
    const lang = /^(?:texts?|content)\.(\w+)(?:\.(\w+))?$/.exec(field || "");
    let input = null;
    if (lang) {
      input = document.getElementById(lang[2] ? `content-${lang[1]}-${lang[2]}` : "text-" + lang[1]);
      tools.setErrorLanguages([lang[1]]);
      const shown = tools.selectedLanguage();
      if (langError && (lang[1] !== shown || !explicit)) {
        langError.textContent = `${LANG_NAMES[lang[1]] || lang[1]} text (${lang[1].toUpperCase()} tab): ${reason}`;
        langError.hidden = false;
      }
      if (explicit) tools.reveal(lang[1]);
    }
    const fieldName = /^fields\.(\w+)$/.exec(field || "");
    if (fieldName) input = document.getElementById("field-" + fieldName[1]);
    if (field === "expires_at") input = document.getElementById("expires-at");
    if (input) {
      input.setAttribute("aria-invalid", "true");
      const det = input.closest("details");
      if (det && explicit) det.open = true;
      if (explicit) input.focus();
    } else if (explicit && !el.closest("dialog")) {
      el.scrollIntoView({ block: "center" });
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
    // An update always says its expiry (the one shown): the original's may be past.
    if (expiresInput && (expiresInput.dataset.touched || isUpdate) && expiresInput.value) {
      b.expires_at = expiresInput.value.replace("T", " ");
    }
    return b;
  }
  /* The expiry: the estimate's default (expires_local) until the operator changes it. */
  const expiresInput = document.getElementById("expires-at");
  if (expiresInput) {
    expiresInput.addEventListener("change", () => {
      expiresInput.dataset.touched = expiresInput.value ? "1" : "";
      scheduleEstimate();
    });
  }
  function showExpires(est) {
    if (!expiresInput || expiresInput.dataset.touched) return;
    const local = est && (est.expires_local || "");
    if (local) expiresInput.value = String(local).replace(" ", "T").slice(0, 16);
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
  const warningsBox = document.getElementById("estimate-warnings");
  function fieldWords(field, message) {
    const m = /^(?:texts?|content)\.(\w+)/.exec(field || "");
    const name = m && LANG_NAMES[m[1]];
    return name && !String(message || "").includes(name) ? `${name} text` : "";
  }
  /* The estimate's warnings (e.g. an official language without a text), next to the tabs. */
  function showWarnings(est) {
    // Said elsewhere: a text in another language in its own tab, the area cut beside the
    // map (showUsedArea); the launch dialog repeats all of them.
    const list = ((est && est.warnings) || []).filter(
      (w) => !w || (w.code !== "wrong_language" && w.code !== "area_cut"));
    if (!warningsBox) return;
    warningsBox.replaceChildren();
    warningsBox.hidden = !list.length;
    if (!list.length) return;
    const ul = el("ul");
    list.forEach((w) => {
      const words = fieldWords(w.field, w.message);
      ul.append(el("li", {}, "⚠ " + (words ? words + ": " : "") + cleanReason(w.message || w)));
    });
    warningsBox.append(ul);
  }
  /* Encoding and segments of each language's SMS ("fr: GSM-7, 1 segment · nl: UCS-2,
     2 segments"): languages are encoded separately, never mixed on one line. */
  function smsPerLanguage(sms) {
    const segs = (n) => `${n} segment${Number(n) === 1 ? "" : "s"}`;
    const per = Object.entries(sms.by_language || {});
    if (!per.length) return `${sms.encoding}, ${segs(sms.segments)} per message`;
    return per.map(([lang, f]) => `${lang}: ${f.encoding}, ${segs(f.segments)}`).join(" · ");
  }
  function renderEstimate(est) {
    estimateBox.replaceChildren();
    showWarnings(est);
    showUsedArea(est);
    showExpires(est);
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
    // How long each channel takes at the configured rates and workers (issue 13).
    const times = Object.entries(est.send_time || {}).filter(([, t]) => t.count > 0);
    if (times.length) {
      estimateBox.append(el("p", { class: "estimate-send-time" },
        times.map(([ch, t]) => `${names[ch] || ch}: ${t.text}`).join(" · ")));
    }
    tools.showRecipients(est);
    tools.refreshAll(); // the previews fill {area_name} with the estimated area's name
    if (est.sms && "sms" in (est.recipients || {})) {
      const p = el("p", { class: "estimate-sms" });
      const cost = Number(est.sms.cost_eur);
      const money = (v) => v.toLocaleString("en-GB", { style: "currency", currency: "EUR",
                                                      minimumFractionDigits: 2, maximumFractionDigits: 3 });
      p.append(`SMS: ${smsPerLanguage(est.sms)} · cost `,
        el("strong", {}, isLive ? money(cost) : "none (simulation)"));
      if (!isLive) p.append(el("span", { class: "hint" }, ` — live it would be ${money(cost)}`));
      estimateBox.append(p);
    }
  }
  async function refreshEstimate(explicit) {
    explicit = explicit === true;
    clearErrors();
    if (!state.area && !state.nis) {
      state.estimate = null;
      showUsedArea(null);
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
      showUsedArea(null);
      estimateBox.replaceChildren(el("p", { class: "hint" }, "No estimate: correct the field marked in red."));
      const err = (r.data && r.data.error) || { field: "_general", reason: `Error ${r.status}` };
      showError(err.field, err.reason, explicit);
      return null;
    } catch (e) {
      if (seq === state.seq) showError("_general", "The server cannot be reached. Check the connection and try again.", explicit);
      return null;
    } finally {
      if (seq === state.seq) estimateBox.setAttribute("aria-busy", "false");
    }
  }
  let timer = null;
  function scheduleEstimate() { clearTimeout(timer); timer = setTimeout(() => refreshEstimate(false), 300); }

  /* ---------- map ---------- */
  const map = L.map("map", { zoomSnap: 0.25, keyboard: true });
  if (cfg.tile_url) {
    L.tileLayer(cfg.tile_url, { maxZoom: 19, attribution: "Map tiles" }).addTo(map);
  }
  const b = cfg.bbox;
  map.fitBounds([[b[1], b[0]], [b[3], b[2]]], { padding: [10, 10] });
  const MUNI_STYLE = { color: "#4a5568", weight: 1, fillColor: "#4a5568", fillOpacity: 0.04 };
  const MUNI_SELECTED = { color: "#b30000", weight: 3, fillColor: "#e53e3e", fillOpacity: 0.3 };

  /* The area really used (the estimate's, clipped to the territory and to Belgium) when
     the drawing was cut at the border: drawn filled over the drawing, which is then only
     outlined (dashed), and the cut said beside the map in the estimate's words. */
  const DRAWN_STYLE = { color: "#b30000", weight: 3, dashArray: null, fillColor: "#e53e3e", fillOpacity: 0.3 };
  const DRAWN_CUT_STYLE = { color: "#b30000", weight: 2, dashArray: "6 5", fillColor: "#e53e3e", fillOpacity: 0.04 };
  const USED_STYLE = { color: "#b30000", weight: 3, fillColor: "#e53e3e", fillOpacity: 0.45, className: "area-used" };
  const areaCutBox = document.getElementById("area-cut");
  let usedLayer = null;
  function showUsedArea(est) {
    if (usedLayer) { map.removeLayer(usedLayer); usedLayer = null; }
    const cut = est && (est.warnings || []).find((w) => w.code === "area_cut");
    if (state.drawn && state.drawn.setStyle) state.drawn.setStyle(cut ? DRAWN_CUT_STYLE : DRAWN_STYLE);
    if (areaCutBox) {
      areaCutBox.replaceChildren();
      areaCutBox.hidden = !cut;
    }
    if (!cut) return;
    if (est.area) {
      usedLayer = L.geoJSON(est.area, { pmIgnore: true, interactive: false, style: USED_STYLE }).addTo(map);
    }
    if (areaCutBox) {
      const legend = el("p", { class: "hint" });
      legend.append(el("span", { class: "legend-used", "aria-hidden": "true" }), "Area used ",
        el("span", { class: "legend-drawn", "aria-hidden": "true" }), "what you drew");
      areaCutBox.append(el("p", { class: "area-cut-message" }, "⚠ " + cleanReason(cut.message)), legend);
    }
  }

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
    areaName: (lang) => (state.estimate
      ? ((state.estimate.area_names || {})[lang] || state.estimate.area_name) : ""),
    onChange: scheduleEstimate,
  });
  function kindText() {
    const sentence = (cfg.kind_sentences || {})[kindSelect.value] || "";
    return sentence + (isLive ? "" : " In simulation nothing is really sent.");
  }
  function showKind() {
    kindSentence.textContent = kindText();
    kindSentence.className = "kind-sentence kind-sentence-" + kindSelect.value;
    const defaults = (cfg.cap_defaults || {})[kindSelect.value] || {};
    document.querySelectorAll("[data-default-for]").forEach((o) => {
      const v = defaults[o.dataset.defaultFor];
      o.textContent = v ? `default (${v})` : "default";
    });
    document.querySelectorAll("[data-default-text]").forEach((o) => {
      o.textContent = defaults[o.dataset.defaultText] || "";
    });
    const event = (prefill.cap || {}).event;
    document.querySelectorAll("[data-event-placeholder]").forEach((input) => {
      const label = ((cfg.kind_labels || {})[kindSelect.value] || {})[input.dataset.contentLang];
      input.placeholder = "Default: " + (event || label || "the type of message");
    });
  }
  kindSelect.addEventListener("change", showKind);
  showKind();
  form.querySelectorAll('input[name="channels"], #kind, [data-cap]').forEach((c) =>
    c.addEventListener("change", scheduleEstimate));
  /* The send time moves the default expiry (the estimate's expires_local follows it). */
  form.querySelectorAll('input[name="when"]').forEach((r) => r.addEventListener("change", () => {
    document.getElementById("schedule-field").hidden = scheduledFor() === null;
    if (scheduledFor() !== "") scheduleEstimate();
  }));
  const scheduleAt = document.getElementById("schedule-at");
  if (scheduleAt) {
    ["input", "change"].forEach((t) => scheduleAt.addEventListener(t, () => {
      if (scheduledFor()) scheduleEstimate();
    }));
  }

  /* ---------- launch (F34: live has its own typed confirmation) ---------- */
  const go = document.getElementById("confirm-go");
  const confirmInput = document.getElementById("confirm-area");
  /* Live launch: the number of deliveries shown, typed too (an update types the area only). */
  const countInput = isUpdate ? null : document.getElementById("confirm-count");
  let expectedCount = 0;
  /* Live: the area name to type; an update names the original's area (the API checks it). */
  function confirmName() {
    if (isUpdate) return String(prefill.area_label || "");
    return state.estimate ? String(state.estimate.area_name) : "";
  }
  function typedOk() {
    const nameOk = !confirmInput || (!!state.estimate &&
      confirmInput.value.trim().toLowerCase() === confirmName().trim().toLowerCase());
    const countOk = !countInput ||
      Number(countInput.value.replace(/\D/g, "") || "-1") === expectedCount;
    return nameOk && countOk;
  }
  if (confirmInput) confirmInput.addEventListener("input", () => { go.disabled = !typedOk(); });
  if (countInput) countInput.addEventListener("input", () => { go.disabled = !typedOk(); });
  document.getElementById("confirm-cancel").addEventListener("click", () => dialog.close());

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clearTimeout(timer);
    if (!state.area && !state.nis) { showError("area", "Choose an area first: draw it on the map or choose a municipality.", true); return; }
    if (scheduledFor() === "") { showError("scheduled_for", "Choose the date and time to send it, or choose Now.", true); return; }
    const est = await refreshEstimate(true);
    if (!est) return;
    const total = Object.values(est.recipients || {}).reduce((a, n) => a + Number(n), 0);
    const summary = document.getElementById("confirm-summary");
    const kind = kindSelect;
    const when = scheduledFor();
    summary.replaceChildren(
      el("p", { class: "confirm-kind kind-sentence-" + kind.value }, kindText()),
      el("p", {}, isUpdate ? "An update of the message sent before, sent now to everyone who received it."
        : est.approval_required ? "It waits for a second user's approval: nothing is sent until another user of your authority approves it."
        : (when ? `Scheduled for ${when} (Brussels time).` : "Sent now.")),
      el("p", { class: "confirm-big" }, Object.keys(est.recipients || {}).length
        ? `${fmt.format(total)} ${total === 1 ? "delivery" : "deliveries"} in ${est.area_name}${isUpdate ? " (plus the original's recipients)" : ""}`
        : `CAP feed only, for ${est.area_name}`),
      el("p", {}, Object.entries(est.recipients || {}).map(([c, n]) => `${c === "sms" ? "SMS" : "E-mail"}: ${fmt.format(n)}`).join(" · ")));
    const channelsReached = Object.keys(est.recipients || {});
    if (channelsReached.length && total === 0) {
      // A drawn area (or a type) that reaches nobody at all: said before the per-channel lines.
      summary.append(el("p", { class: "confirm-nobody" },
        "⚠ Nobody in this area will receive an SMS or an e-mail. Check the area (and the " +
        "type of message) before launching."));
    }
    /* Every warning the estimate gives (wrong or missing language, a channel that reaches
       nobody, an area cut at the border…), whatever its code: nothing the composer
       showed is dropped from the confirmation. */
    const warnings = est.warnings || [];
    if (warnings.length) {
      const ul = el("ul", { class: "confirm-warnings", "aria-label": "Warnings" });
      warnings.forEach((w) => {
        const code = String((w && w.code) || "other").replace(/[^\w-]/g, "");
        const words = fieldWords(w.field, w.message);
        ul.append(el("li", { class: `confirm-warning confirm-warning-${code}` +
                                   (code === "no_recipients" ? " confirm-zero" : "") },
                     "⚠ " + (words ? words + ": " : "") + cleanReason((w && w.message) || w)));
      });
      summary.append(ul);
    }
    if (expiresInput && expiresInput.value) {
      summary.append(el("p", {}, `Expires ${expiresInput.value.replace("T", " ")} (Brussels time).`));
    }
    if (confirmInput) {
      document.getElementById("confirm-area-name").textContent = confirmName();
      confirmInput.value = "";
      go.disabled = true;
    }
    if (est.approval_required && !isUpdate) go.textContent = "Send for approval";
    if (countInput) {
      expectedCount = total;
      document.getElementById("confirm-count-value").textContent = fmt.format(total);
      countInput.value = "";
    }
    dialog.showModal();
    (confirmInput || go).focus();
  });

  go.addEventListener("click", async () => {
    if (!typedOk()) return;
    go.disabled = true;
    const payload = body();
    if (confirmInput) payload.confirm_area_name = confirmInput.value;
    if (countInput) payload.confirm_recipients = countInput.value;
    try {
      const url = isUpdate ? `/api/campaigns/${encodeURIComponent(prefill.update_id)}/update` : "/api/campaigns";
      const r = await postJSON(url, payload);
      if (r.ok && r.data && r.data.campaign_id) {
        window.location.href = "/campaigns/" + encodeURIComponent(r.data.campaign_id);
        return;
      }
      const err = (r.data && r.data.error) || { field: "_general", reason: `Error ${r.status}` };
      if (err.field !== "confirm_area_name" && err.field !== "confirm_recipients") dialog.close();
      showError(err.field, err.reason, true);
    } catch (e) {
      dialog.close();
      showError("_general", "The server cannot be reached. Nothing was launched; try again.", true);
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
          (r.data.warnings || []).forEach((w) => saved.append(el("span", { class: "template-warning" }, " ⚠ " + cleanReason(w.message))));
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
