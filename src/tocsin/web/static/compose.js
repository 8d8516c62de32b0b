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
  const i18n = window.TocsinI18n;
  const t = i18n.t;
  /* A sending time in SI units, like campaigns.control._duration: 45 s, 1 min 22 s, 2 h 05 min. */
  function sendDuration(seconds) {
    const s = Math.floor(seconds), pad = (n) => String(n).padStart(2, "0");
    if (s < 60) return `${seconds ? Math.max(s, 1) : 0} s`;
    if (s < 3600) return `${Math.floor(s / 60)} min ${pad(s % 60)} s`;
    return `${Math.floor(s / 3600)} h ${pad(Math.floor((s % 3600) / 60))} min`;
  }
  const LANG_NAMES = i18n.dict.lang_names || {};
  // in running text ("Texte en néerlandais": no capital in French)
  const LANG_IN_TEXT = i18n.dict.lang_names_text || LANG_NAMES;
  const CHANNEL_NAMES = i18n.dict.channel_names || {};
  const langError = document.getElementById("lang-error");
  /* Server reasons may cite specification items or field paths in brackets: operators need neither. */
  const cleanReason = (s) => String(s || "").replace(/\s*\((?:SPEC )?F\d+(?:,\s*F\d+)*\)/g, "")
    .replace(/\s*\((?:texts?|content|fields)\.[\w.]+\)/g, "");

  /* ---------- errors next to fields ---------- */
  /* The area pickers' own errors (a name that is no municipality, a circle's centre,
     pasted GeoJSON) stay until their field changes or an area is chosen. */
  const PICKER_ERRORS = '[data-error-for="municipality_name"], [data-error-for^="circle."], [data-error-for="geojson"]';
  const PICKER_INPUTS = "#municipality-name, #circle-center, #circle-radius, #area-geojson";
  function clearErrors() {
    document.querySelectorAll("[data-error-for]").forEach((el) => {
      if (!el.matches(PICKER_ERRORS)) { el.hidden = true; el.textContent = ""; }
    });
    document.querySelectorAll("[aria-invalid]").forEach((el) => {
      if (el.matches(PICKER_INPUTS)) return;
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
        langError.textContent = t("lang_error", { language: LANG_IN_TEXT[lang[1]] || lang[1],
                                                  code: lang[1].toUpperCase(), reason: reason });
        langError.hidden = false;
      }
      if (explicit) tools.reveal(lang[1]);
    }
    const fieldName = /^fields\.(\w+)$/.exec(field || "");
    if (fieldName) input = document.getElementById("field-" + fieldName[1]);
    if (field === "expires_at") input = document.getElementById("expires-at");
    const areaInputs = { "circle.center": "circle-center", "circle.radius_km": "circle-radius",
                         geojson: "area-geojson", municipality_name: "municipality-name",
                         scheduled_for: "schedule-at" };
    if (areaInputs[field]) input = document.getElementById(areaInputs[field]);
    if (explicit && !input && /^(area|municipality)/.test(field || "")) input = muniName;
    if (input) {
      input.setAttribute("aria-invalid", "true");
      const det = input.closest("details");
      if (det && explicit) det.open = true;
      if (explicit) input.focus();
    } else if (explicit && !el.closest("dialog")) {
      // No field to focus (e.g. a rule of the authority): the message itself takes it,
      // so that a screen reader reads it and the keyboard starts from there.
      if (!el.hasAttribute("tabindex")) el.setAttribute("tabindex", "-1");
      el.scrollIntoView({ block: "center" });
      el.focus();
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
  /* Groups and contact lists picked (issue 10), and the answer options of a group message. */
  function picked(name) {
    return [...form.querySelectorAll('input[name="' + name + '"]:checked')].map((c) => c.value);
  }
  function hasTargets() { return picked("groups").length > 0 || picked("lists").length > 0; }
  function addAnswers(b) {
    b.groups = picked("groups");
    b.lists = picked("lists");
    const options = document.getElementById("answer-options");
    if (!options) return;
    const lines = options.value.split("\n").map((s) => s.trim()).filter(Boolean);
    if (lines.length) b.answers = lines;
    const quota = document.getElementById("answer-quota");
    if (quota && quota.value.trim()) b.quota = Number(quota.value);
    const timeout = document.getElementById("answer-timeout");
    if (timeout && timeout.value.trim()) b.answer_timeout_minutes = Number(timeout.value);
  }
  function body() {
    const channels = [...form.querySelectorAll('input[name="channels"]:checked')].map((c) => c.value);
    const cap = {};
    form.querySelectorAll("[data-cap]").forEach((el) => { if (el.value) cap[el.dataset.cap] = el.value; });
    const b = { texts: texts(), content: tools.content(), fields: tools.fields(), channels: channels,
                kind: kindSelect.value, area_geojson: state.nis ? null : state.area,
                municipality_nis: state.nis, cap: cap };
    const why = document.getElementById("justification");
    if (why && channels.includes("lbsms") && why.value.trim()) b.justification = why.value.trim();
    addAnswers(b);
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
  const fmt = { format: (n) => i18n.number(Number(n)) };
  const LANG = LANG_NAMES;
  function el(tag, attrs, text) {
    const e = document.createElement(tag);
    Object.entries(attrs || {}).forEach(([k, v]) => e.setAttribute(k, v));
    if (text !== undefined) e.textContent = text;
    return e;
  }
  const warningsBox = document.getElementById("estimate-warnings");
  function fieldWords(field, message) {
    const m = /^(?:texts?|content)\.(\w+)/.exec(field || "");
    const name = m && LANG_IN_TEXT[m[1]];
    return name && !String(message || "").includes(name) ? t("lang_text", { language: name }) : "";
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
    const segs = (n) => t("segments", { n: Number(n) });
    const per = Object.entries(sms.by_language || {});
    if (!per.length) return t("sms_per_message", { encoding: sms.encoding, segments: segs(sms.segments) });
    return per.map(([lang, f]) => t("sms_one_language", { code: lang, encoding: f.encoding,
                                                          segments: segs(f.segments) })).join(" · ");
  }
  function renderEstimate(est) {
    estimateBox.replaceChildren();
    showWarnings(est);
    showUsedArea(est);
    showExpires(est);
    const head = el("p", { class: "estimate-area" });
    // Groups and lists only: no area, so no km² (issue 10 trial).
    if (est.targets_only) head.append(...i18n.tNodes("estimate_targets", { name: el("strong", {}, est.area_name) }));
    else head.append(...i18n.tNodes("estimate_area", { name: el("strong", {}, est.area_name),
      km2: Number(est.area_km2).toLocaleString(i18n.locale, { maximumFractionDigits: 2 }) }));
    estimateBox.append(head);
    const table = el("table", { class: "data estimate-table" });
    table.append(el("caption", { class: "visually-hidden" }, t("estimate_caption")));
    const thead = el("thead"); const tr = el("tr");
    tr.append(el("th", { scope: "col" }, t("col_channel")), el("th", { scope: "col", class: "num" }, t("col_recipients")),
      el("th", { scope: "col", class: "by-language" }, t("col_by_language")));
    thead.append(tr); table.append(thead);
    const tbody = el("tbody");
    const names = CHANNEL_NAMES;
    Object.entries(est.recipients || {}).forEach(([ch, n]) => {
      const row = el("tr");
      const langs = (est.by_language || {})[ch] || {};
      const byLanguage = Object.entries(langs).map(([l, k]) => t("language_count", { language: LANG[l] || l, n: Number(k) })).join(" · ") || "—";
      // On a phone the languages go under the channel's name (the third column is hidden).
      const head = el("th", { scope: "row" }, names[ch] || ch);
      head.append(el("span", { class: "by-language-inline" }, byLanguage));
      row.append(head, el("td", { class: "num big-number" }, fmt.format(n)));
      row.append(el("td", { class: "by-language" }, byLanguage));
      tbody.append(row);
    });
    table.append(tbody);
    estimateBox.append(table);
    if (!Object.keys(est.recipients || {}).length) {
      table.remove();
      estimateBox.append(el("p", {}, t("cap_only")));
    }
    // How long each channel takes at the configured rates and workers (issue 13).
    const times = Object.entries(est.send_time || {}).filter(([, st]) => st.count > 0);
    if (times.length) {
      estimateBox.append(el("p", { class: "estimate-send-time" },
        times.map(([ch, st]) => `${names[ch] || ch}: ` + t("send_time", {
          count: Number(st.count), duration: sendDuration(Number(st.seconds)),
          rate: Math.round(Number(st.per_second)) })).join(" · ")));
    }
    renderLocation(est);
    tools.showRecipients(est);
    tools.refreshAll(); // the previews fill {area_name} with the estimated area's name
    if (est.sms && "sms" in (est.recipients || {})) {
      const p = el("p", { class: "estimate-sms" });
      const cost = Number(est.sms.cost_eur);
      const money = (v) => i18n.money(v, 2);
      p.append(...i18n.tNodes("sms_cost", { per_language: smsPerLanguage(est.sms),
        cost: el("strong", {}, isLive ? money(cost) : t("cost_none")) }));
      if (!isLive) p.append(el("span", { class: "hint" }, t("cost_live", { cost: money(cost) })));
      estimateBox.append(p);
    }
  }
  /* Location-based channels (F17, F18, F31): phones expected inside and outside the area
     (low – high), the bleed, the cells, labelled with the cell model; and their map layer. */
  function renderLocation(est) {
    const loc = Object.entries(est.channels || {}).filter(([ch, e]) => e && e.phones_inside);
    showCells(loc.length ? est : null);
    if (!loc.length) return;
    const n = (v) => fmt.format(Number(v));
    const range = (r) => t("loc_range", { low: n(r[0]), high: n(r[1]) });
    const table = el("table", { class: "data estimate-table estimate-location" });
    table.append(el("caption", {}, t("loc_caption")));
    const head = el("tr");
    head.append(el("th", { scope: "col" }, t("col_channel")), el("th", { scope: "col", class: "num" }, t("loc_inside")),
      el("th", { scope: "col", class: "num" }, t("loc_outside")));
    const thead = el("thead"); thead.append(head); table.append(thead);
    const tbody = el("tbody");
    loc.forEach(([ch, e]) => {
      const row = el("tr");
      row.append(el("th", { scope: "row" }, CHANNEL_NAMES[ch] || ch),
        el("td", { class: "num" }, range(e.phones_inside)), el("td", { class: "num" }, range(e.phones_outside)));
      tbody.append(row);
    });
    table.append(tbody);
    const first = loc[0][1];
    const badge = first.model === "synthetic" ? el("span", { class: "badge badge-synthetic" }, t("loc_model")) : null;
    const facts = el("p", { class: "estimate-bleed" }, t("loc_bleed", {
      km2: Number(first.bleed_km2).toLocaleString(i18n.locale, { maximumFractionDigits: 2 }),
      km: Number(first.max_bleed_km).toLocaleString(i18n.locale, { maximumFractionDigits: 1 }),
      cells: n(first.cells) }));
    if (badge) facts.prepend(badge, " ");
    estimateBox.append(table, facts);
    if (first.model === "synthetic") estimateBox.append(el("p", { class: "hint" }, t("loc_model_note")));
    const lb = (est.channels || {}).lbsms;
    if (lb && lb.registered != null) estimateBox.append(el("p", { class: "hint" }, t("loc_registered", { n: n(lb.registered) })));
  }
  /* The cells used and the bleed, from the API (GeoJSON), under the area. */
  const CELL_STYLE = { color: "#2b6cb0", weight: 1, opacity: 0.6, fillOpacity: 0.02 };
  const BLEED_STYLE = { color: "#c05621", weight: 1, dashArray: "4 4", fillColor: "#ed8936", fillOpacity: 0.25 };
  let cellsLayer = null; let cellsSeq = 0;
  const cellsLegend = document.getElementById("cells-legend");
  async function showCells(est) {
    const seq = ++cellsSeq;
    if (!est) {
      if (cellsLayer) { map.removeLayer(cellsLayer); cellsLayer = null; }
      if (cellsLegend) cellsLegend.hidden = true;
      return;
    }
    try {
      const r = await postJSON("/api/campaigns/estimate/cells", body());
      if (seq !== cellsSeq || !r.ok) return;
      if (cellsLayer) map.removeLayer(cellsLayer);
      cellsLayer = L.geoJSON(r.data, { pmIgnore: true, interactive: false,
        style: (f) => (f.properties.kind === "bleed" ? BLEED_STYLE : CELL_STYLE) }).addTo(map);
      cellsLayer.bringToBack();
      if (cellsLegend) {
        cellsLegend.replaceChildren(el("span", { class: "legend-cells", "aria-hidden": "true" }), t("legend_cells") + " ",
          el("span", { class: "legend-bleed", "aria-hidden": "true" }), t("legend_bleed") + " ",
          el("span", { class: "badge badge-synthetic" }, r.data.tocsin_cell_model && r.data.tocsin_cell_model.synthetic === false
            ? String(r.data.tocsin_cell_model.label || "") : t("loc_model")));
        cellsLegend.hidden = false;
      }
    } catch (e) { /* the table above still says the reach */ }
  }
  async function refreshEstimate(explicit) {
    explicit = explicit === true;
    clearErrors();
    if (!state.area && !state.nis && !hasTargets()) {
      state.estimate = null;
      showUsedArea(null);
      tools.showRecipients(null);
      estimateBox.replaceChildren(el("p", { class: "hint" }, t("choose_area_hint")));
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
      const err = (r.data && r.data.error) || { field: "_general", reason: t("error_status", { status: String(r.status) }) };
      // Said in words where the estimate would be: the reason may concern no field at all.
      estimateBox.replaceChildren(el("p", { class: "hint" }, t("no_estimate", { reason: cleanReason((err.message || err.reason)) })));
      showError(err.field, (err.message || err.reason), explicit);
      return null;
    } catch (e) {
      if (seq === state.seq) showError("_general", t("server_unreachable"), explicit);
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
    L.tileLayer(cfg.tile_url, { maxZoom: 19, attribution: t("map_tiles") }).addTo(map);
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
      legend.append(el("span", { class: "legend-used", "aria-hidden": "true" }), t("legend_used") + " ",
        el("span", { class: "legend-drawn", "aria-hidden": "true" }), t("legend_drawn"));
      areaCutBox.append(el("p", { class: "area-cut-message" }, "⚠ " + cleanReason(cut.message)), legend);
    }
  }

  function setArea(geometry, nis, label) {
    state.area = geometry; state.nis = nis; state.label = label;
    areaLabel.textContent = label;
    muniLayers.forEach((layer, code) => layer.setStyle(code === nis ? MUNI_SELECTED : MUNI_STYLE));
    muniSelect.value = nis || "";
    if (muniName && !nis && document.activeElement !== muniName) muniName.value = "";
    if (geometry || nis) {
      document.querySelectorAll(PICKER_ERRORS).forEach((e) => { e.hidden = true; e.textContent = ""; });
      document.querySelectorAll(PICKER_INPUTS).forEach((i) => i.removeAttribute("aria-invalid"));
    }
    saveDraft();
    scheduleEstimate();
  }
  function removeDrawn() {
    if (state.drawn) { map.removeLayer(state.drawn); state.drawn = null; }
  }
  function clearArea() { removeDrawn(); setArea(null, null, t("area_none")); }

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
          (p.names && p.names.length ? p.names : [p.name]).forEach((n) => {
            muniNames.push([n, p.nis]);
          });
        },
      }).addTo(map).bringToBack();
      muniNames.sort((a, b) => a[0].localeCompare(b[0], i18n.locale));
      muniNames.forEach(([n]) => muniList.append(new Option(n)));
      applyPrefillArea();
    });

  // Geoman's own translations of its button titles and tooltips (fr, nl, de built in).
  const pageLang = (document.documentElement.lang || "en").slice(0, 2);
  if (["fr", "nl", "de"].includes(pageLang)) map.pm.setLang(pageLang);
  map.pm.setGlobalOptions({ pathOptions: { color: "#b30000", weight: 3, fillColor: "#e53e3e", fillOpacity: 0.3 } });
  map.pm.addControls({
    position: "topleft", drawMarker: false, drawCircleMarker: false, drawPolyline: false,
    drawText: false, drawCircle: false, cutPolygon: false, rotateMode: false,
    drawPolygon: true, drawRectangle: true, editMode: true, dragMode: true, removalMode: true,
  });
  // Geoman's buttons are empty links titled on their parent: name them (WCAG 4.1.2).
  map.getContainer().querySelectorAll(".button-container[title] > [role=button]")
    .forEach((a) => a.setAttribute("aria-label", a.parentElement.title));
  function drawnChanged() {
    if (!state.drawn) return;
    setArea(state.drawn.toGeoJSON().geometry, null, t("area_drawn"));
  }
  map.on("pm:create", (e) => {
    removeDrawn();
    state.drawn = e.layer;
    e.layer.on("pm:edit", drawnChanged);
    e.layer.on("pm:dragend", drawnChanged);
    drawnChanged();
  });
  map.on("pm:remove", (e) => { if (e.layer === state.drawn) { state.drawn = null; setArea(null, null, t("area_none")); } });

  muniSelect.addEventListener("change", () => {
    const nis = muniSelect.value;
    removeDrawn();
    if (!nis) { setArea(null, null, t("area_none")); return; }
    chooseMunicipality(nis);
  });
  function chooseMunicipality(nis, typed) {
    const layer = muniLayers.get(nis);
    if (!layer) return;
    removeDrawn();
    const p = layer.feature.properties;
    // The name the operator typed when it is one of the municipality's names (Hal, Halle).
    setArea(layer.feature.geometry, nis, typed && (p.names || []).includes(typed) ? typed : p.name);
    map.fitBounds(layer.getBounds(), { padding: [20, 20] });
  }

  /* ---------- the area without the map (WCAG 2.1.1): by name, circle, GeoJSON ---------- */
  const muniName = document.getElementById("municipality-name");
  const muniList = document.getElementById("municipality-names");
  const muniNames = []; // [name, nis], every official name of every municipality
  const fold = (v) => String(v || "").normalize("NFKD").replace(/[\u0300-\u036f]/g, "")
    .toLowerCase().replace(/[^a-z0-9]+/g, " ").trim();
  function matchingNames(value) {
    const v = fold(value);
    if (!v) return { exact: [], prefix: [] };
    const exact = muniNames.filter(([n]) => fold(n) === v);
    const prefix = muniNames.filter(([n]) => fold(n).startsWith(v));
    return { exact: exact, prefix: prefix };
  }
  function fieldError(field, reason) {
    const box = document.querySelector(`[data-error-for="${CSS.escape(field)}"]`);
    if (!box) return;
    box.textContent = reason || "";
    box.hidden = !reason;
  }
  if (muniName) {
    // A name picked from the list or typed in full chooses the municipality at once.
    muniName.addEventListener("input", () => {
      fieldError("municipality_name", "");
      muniName.removeAttribute("aria-invalid");
      const m = matchingNames(muniName.value);
      const codes = new Set(m.exact.map(([, nis]) => nis));
      if (codes.size === 1 && state.nis !== m.exact[0][1]) chooseMunicipality(m.exact[0][1], m.exact[0][0]);
    });
    // Enter: the one municipality whose name starts with what is typed, or say why not.
    muniName.addEventListener("keydown", (ev) => {
      if (ev.key !== "Enter") return;
      ev.preventDefault();
      const m = matchingNames(muniName.value);
      const hits = m.exact.length ? m.exact : m.prefix;
      const codes = new Set(hits.map(([, nis]) => nis));
      if (codes.size === 1) {
        muniName.value = hits[0][0];
        chooseMunicipality(hits[0][1], hits[0][0]);
        return;
      }
      const reason = t(codes.size ? "municipality_several" : "municipality_unknown", { name: muniName.value.trim() });
      fieldError("municipality_name", reason);
      muniName.setAttribute("aria-invalid", "true");
    });
  }
  async function areaFromServer(url, payload, errorFields, label) {
    errorFields.forEach((f) => fieldError(f, ""));
    let r;
    try { r = await postJSON(url, payload); } catch (e) {
      showError("_general", t("server_unreachable"), true);
      return;
    }
    if (!r.ok) {
      const err = (r.data && r.data.error) || { field: errorFields[0], reason: t("error_status", { status: String(r.status) }) };
      showError(errorFields.includes(err.field) ? err.field : errorFields[0], (err.message || err.reason), true);
      return;
    }
    removeDrawn();
    const layer = L.geoJSON(r.data.geometry, { style: DRAWN_STYLE }).getLayers()[0];
    if (layer) {
      layer.addTo(map);
      state.drawn = layer;
      map.fitBounds(layer.getBounds(), { padding: [20, 20] });
    }
    setArea(r.data.geometry, null, label(r.data));
  }
  const circleUse = document.getElementById("circle-use");
  if (circleUse) circleUse.addEventListener("click", () => {
    const center = document.getElementById("circle-center").value;
    const radius = document.getElementById("circle-radius").value;
    areaFromServer("/api/areas/circle", { center: center, radius_km: radius },
      ["circle.center", "circle.radius_km"], (d) => d.place
        ? t("area_circle_place", { km: Number(d.radius_km), place: d.place })
        : t("area_circle", { km: Number(d.radius_km), center: `${i18n.number(d.lat)}, ${i18n.number(d.lon)}` }));
  });
  ["circle-center", "circle-radius"].forEach((id) => {
    const input = document.getElementById(id);
    if (input) input.addEventListener("keydown", (ev) => {
      if (ev.key === "Enter") { ev.preventDefault(); circleUse.click(); }
    });
  });
  [["circle-center", "circle.center"], ["circle-radius", "circle.radius_km"], ["area-geojson", "geojson"]]
    .forEach(([id, field]) => {
      const input = document.getElementById(id);
      if (input) input.addEventListener("input", () => { fieldError(field, ""); input.removeAttribute("aria-invalid"); });
    });
  const geojsonUse = document.getElementById("geojson-use");
  if (geojsonUse) geojsonUse.addEventListener("click", () => {
    areaFromServer("/api/areas/geojson", { geojson: document.getElementById("area-geojson").value },
      ["geojson"], () => t("area_geojson"));
  });
  const whole = document.getElementById("whole-territory");
  if (whole) whole.addEventListener("click", () => {
    if (!state.territory) return;
    removeDrawn();
    setArea(state.territory.geometry, null, t("area_whole", { name: cfg.authority_name }));
  });
  document.getElementById("clear-area").addEventListener("click", clearArea);

  /* The template's or draft's saved area (step 2 of a template launch: the estimate follows). */
  function applyPrefillArea() {
    if (restoredArea) {
      const a = restoredArea;
      restoredArea = null;
      restoring = false;
      if (a.nis && muniLayers.has(a.nis)) { chooseMunicipality(a.nis, a.label); return; }
      if (a.area) {
        const layer = L.geoJSON(a.area, { style: DRAWN_STYLE }).getLayers()[0];
        if (layer) { removeDrawn(); layer.addTo(map); state.drawn = layer; map.fitBounds(layer.getBounds(), { padding: [20, 20] }); }
        setArea(a.area, null, a.label || t("area_saved"));
        return;
      }
    }
    restoring = false;
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
      setArea(prefill.area_geojson, null, prefill.area_label || t("area_saved"));
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
    onLoggedOut: saveDraft,
  });
  function kindText() {
    const sentence = (cfg.kind_sentences || {})[kindSelect.value] || "";
    return sentence + (isLive ? "" : " " + t("simulation_nothing_sent"));
  }
  function showKind() {
    kindSentence.textContent = kindText();
    kindSentence.className = "kind-sentence kind-sentence-" + kindSelect.value;
    const defaults = (cfg.cap_defaults || {})[kindSelect.value] || {};
    const capWord = (v) => (i18n.dict.cap_values || {})[v] || v;
    document.querySelectorAll("[data-default-for]").forEach((o) => {
      const v = defaults[o.dataset.defaultFor];
      o.textContent = v ? t("default_value", { value: capWord(v) }) : t("default_plain");
    });
    document.querySelectorAll("[data-default-text]").forEach((o) => {
      o.textContent = capWord(defaults[o.dataset.defaultText] || "");
    });
    const event = (prefill.cap || {}).event;
    document.querySelectorAll("[data-event-placeholder]").forEach((input) => {
      const label = ((cfg.kind_labels || {})[kindSelect.value] || {})[input.dataset.contentLang];
      input.placeholder = t("default_placeholder", { value: event || label || t("the_type") });
    });
  }
  kindSelect.addEventListener("change", showKind);
  showKind();
  form.querySelectorAll('input[name="channels"], #kind, [data-cap], input[name="groups"], '
    + 'input[name="lists"]').forEach((c) => c.addEventListener("change", scheduleEstimate));
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

  /* ---------- the draft survives the end of the session (WCAG 2.2.5, issue 9.2) ----------
     Everything typed is kept in this tab's sessionStorage as it is typed; when the session
     ends (time limit, logout elsewhere) the next composer opened in this tab after the
     login gives it back, with a note. A launch clears it. Nothing leaves the browser. */
  const DRAFT_KEY = cfg.draft_key;
  let restoring = false;
  let restoredArea = null;
  function saveDraft() {
    if (restoring || !DRAFT_KEY) return;
    try {
      const values = {}, checks = {};
      form.querySelectorAll("input[id], textarea[id], select[id]").forEach((c) => {
        if (c.type !== "checkbox" && c.type !== "radio") values[c.id] = c.value;
      });
      form.querySelectorAll('input[type="checkbox"], input[type="radio"]').forEach((c) => {
        checks[c.name + "=" + c.value] = c.checked;
      });
      const written = [...form.querySelectorAll("textarea[data-lang]")].some((ta) => ta.value.trim());
      if (!written && !state.area && !state.nis) { sessionStorage.removeItem(DRAFT_KEY); return; }
      sessionStorage.setItem(DRAFT_KEY, JSON.stringify({
        values: values, checks: checks, area: state.nis ? null : state.area, nis: state.nis,
        label: state.label }));
    } catch (e) { /* storage full or refused: the page still works */ }
  }
  function clearDraft() { try { sessionStorage.removeItem(DRAFT_KEY); } catch (e) { /* none */ } }
  function restoreDraft() {
    let d = null;
    try { d = JSON.parse(sessionStorage.getItem(DRAFT_KEY) || "null"); } catch (e) { d = null; }
    if (!d || !d.values) return;
    restoring = true;
    const set = (c, v) => { if (c && c.value !== v) { c.value = v; c.dispatchEvent(new Event("input", { bubbles: true })); } };
    // Texts first: they create the inputs of their {placeholders}, filled in next.
    form.querySelectorAll("textarea[data-lang], [data-content-field]").forEach((c) => {
      if (c.id in d.values) set(c, d.values[c.id]);
    });
    Object.entries(d.values).forEach(([id, v]) => {
      const c = document.getElementById(id);
      if (c && form.contains(c) && !c.matches("textarea[data-lang], [data-content-field]")) {
        set(c, v);
        if (c.tagName === "SELECT" || c.type === "datetime-local") c.dispatchEvent(new Event("change", { bubbles: true }));
      }
    });
    Object.entries(d.checks || {}).forEach(([key, on]) => {
      const [name, value] = key.split("=");
      const c = form.querySelector(`input[name="${CSS.escape(name)}"][value="${CSS.escape(value)}"]`);
      if (c && c.checked !== on) { c.checked = on; c.dispatchEvent(new Event("change", { bubbles: true })); }
    });
    restoredArea = (d.area || d.nis) ? { area: d.area, nis: d.nis, label: d.label } : null;
    if (!restoredArea) restoring = false;
    const note = el("div", { class: "from-template draft-restored", role: "status", id: "draft-restored" });
    const discard = el("button", { type: "button", class: "button-secondary" }, t("draft_discard"));
    discard.addEventListener("click", () => { clearDraft(); window.location.reload(); });
    note.append(el("p", {}, t("draft_restored")), discard);
    form.before(note);
  }
  form.addEventListener("input", () => saveDraft());
  form.addEventListener("change", () => saveDraft());
  restoreDraft();

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
    if (!state.area && !state.nis && !hasTargets()) {
      showError("area", t("choose_area_first"), true);
      return;
    }
    if (scheduledFor() === "") { showError("scheduled_for", t("choose_time"), true); return; }
    const est = await refreshEstimate(true);
    if (!est) return;
    const total = Object.values(est.recipients || {}).reduce((a, n) => a + Number(n), 0);
    const summary = document.getElementById("confirm-summary");
    const kind = kindSelect;
    const when = scheduledFor();
    const display = est.display || {};
    const whenText = when ? (display.scheduled_for || when) : "";
    /* Who it goes to, per channel, exactly (issue 10 trial): the area's registered
       subscribers, each group and list with its size, the phones in and around the area
       for the location-based channels, the CAP feed; the kind's sentence without its
       "everyone registered in the area", which is not true of every campaign. */
    const shortKind = ((i18n.dict.kind_short || {})[kind.value]);
    const kindLine = shortKind ? shortKind + (isLive ? "" : " " + t("simulation_nothing_sent")) : kindText();
    const chosen = [...form.querySelectorAll('input[name="channels"]:checked')].map((c) => c.value);
    const locChannels = Object.entries(est.channels || {}).filter(([, e]) => e && e.phones_inside);
    const n = (v) => fmt.format(Number(v));
    const range = (r) => t("loc_range", { low: n(r[0]), high: n(r[1]) });
    let big;
    if (Object.keys(est.recipients || {}).length) {
      big = (est.targets_only ? t("deliveries", { n: total })
        : t("deliveries_in", { n: total, area: est.area_name })) + (isUpdate ? t("plus_original") : "");
    } else if (locChannels.length && est.location_reach != null) {
      big = t("phones_about", { n: n(est.location_reach), area: est.area_name });
    } else {
      big = t("cap_only_for", { area: est.area_name });
    }
    summary.replaceChildren(
      el("p", { class: "confirm-kind kind-sentence-" + kind.value }, kindLine),
      el("p", {}, isUpdate ? t("confirm_update")
        : est.approval_required ? t("confirm_approval")
        : (when ? t("confirm_scheduled", { when: whenText }) : t("confirm_now"))),
      el("p", { class: "confirm-big" }, big),
      el("p", {}, Object.entries(est.recipients || {}).map(([c, k]) => t("channel_count", { channel: CHANNEL_NAMES[c] || c, n: Number(k) })).join(" · ")));
    const who = el("ul", { class: "confirm-who", id: "confirm-who", "aria-label": t("who") });
    const personal = chosen.filter((c) => ["sms", "email", "voice"].includes(c));
    if (!est.targets_only && personal.length) {
      who.append(el("li", {}, t("who_registered", { channels: personal.map((c) => CHANNEL_NAMES[c] || c).join(", "),
        area: est.area_name, km2: Number(est.area_km2).toLocaleString(i18n.locale, { maximumFractionDigits: 2 }) })));
    }
    (est.targets || []).forEach((g) => {
      who.append(el("li", {}, g.contacts === null || g.contacts === undefined
        ? t("who_group_area", { name: g.name })
        : t(g.type === "list" ? "who_list" : "who_group", { name: g.name, n: Number(g.contacts) })));
    });
    locChannels.forEach(([ch, e]) => {
      who.append(el("li", {}, t("who_location", { channel: CHANNEL_NAMES[ch] || ch, area: est.area_name,
        inside: range(e.phones_inside), outside: range(e.phones_outside) })));
    });
    if (chosen.includes("cap")) who.append(el("li", {}, t("who_cap", { area: est.area_name })));
    const b = body();
    if (b.answers && b.answers.length) {
      who.append(el("li", { id: "confirm-answers" }, t("who_answers", { options: b.answers.join(" / ") })
        + (b.quota ? t("who_quota", { n: b.quota, yes: b.answers[0] }) : "")));
    }
    if (who.children.length) summary.append(who);
    const channelsReached = Object.keys(est.recipients || {});
    if (channelsReached.length && total === 0) {
      // A drawn area (or a type) that reaches nobody at all: said before the per-channel lines.
      summary.append(el("p", { class: "confirm-nobody" }, t("nobody")));
    }
    /* Every warning the estimate gives (wrong or missing language, a channel that reaches
       nobody, an area cut at the border…), whatever its code: nothing the composer
       showed is dropped from the confirmation. */
    const warnings = est.warnings || [];
    if (warnings.length) {
      const ul = el("ul", { class: "confirm-warnings", "aria-label": t("warnings") });
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
      summary.append(el("p", {}, t("expires", { when: display.expires_at || expiresInput.value.replace("T", " ") })));
    }
    if (confirmInput) {
      document.getElementById("confirm-area-name").textContent = confirmName();
      confirmInput.value = "";
      go.disabled = true;
    }
    if (est.approval_required && !isUpdate) go.textContent = t("send_for_approval");
    /* A live location-based alert reaches every phone in and around the area: its own
       screen, and the expected reach is typed instead of the deliveries (F34). */
    const reach = est.location_reach;
    const locBox = document.getElementById("confirm-location");
    const located = isLive && reach !== undefined && reach !== null;
    if (locBox) {
      locBox.hidden = !located;
      dialog.classList.toggle("confirm-live-location", located);
      if (located) {
        const e = (est.channels || {}).lbsms || (est.channels || {}).cb;
        document.getElementById("confirm-location-reach").textContent = t("loc_reach", {
          n: fmt.format(reach), inside: fmt.format(e.phones_inside_expected),
          outside: fmt.format(e.phones_outside_expected) });
      }
    }
    if (countInput) {
      expectedCount = located ? Number(reach) : total;
      document.getElementById("confirm-count-deliveries").hidden = located;
      document.getElementById("confirm-count-reach").hidden = !located;
      document.getElementById("confirm-count-value").textContent = fmt.format(expectedCount);
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
        clearDraft();
        window.location.href = "/campaigns/" + encodeURIComponent(r.data.campaign_id);
        return;
      }
      const err = (r.data && r.data.error) || { field: "_general", reason: t("error_status", { status: String(r.status) }) };
      if (err.field !== "confirm_area_name" && err.field !== "confirm_recipients") dialog.close();
      showError(err.field, (err.message || err.reason), true);
    } catch (e) {
      dialog.close();
      showError("_general", t("launch_unreachable"), true);
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
          saved.replaceChildren(t("template_saved", { name: r.data.name, area: r.data.area_label }),
            el("a", { href: "/templates" }, t("see_templates")));
          (r.data.warnings || []).forEach((w) => saved.append(el("span", { class: "template-warning" }, " ⚠ " + cleanReason(w.message))));
          return;
        }
        const err = (r.data && r.data.error) || { field: "", reason: t("error_status", { status: String(r.status) }) };
        tError.textContent = (err.field && err.field !== "name" ? err.field + ": " : "") + (err.message || err.reason);
        tError.hidden = false;
      } catch (e) {
        tError.textContent = t("template_unreachable");
        tError.hidden = false;
      }
    });
  }
})();
