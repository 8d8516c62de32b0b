/* Tocsin composer message tools: language tabs, live SMS preview with a one-click GSM-7
   rewrite (and, separately, the removal of accents GSM-7 lacks), invisible characters made
   visible, voice estimate and audio preview, wrong-language warnings, placeholders to fill
   in. Used by compose.js through window.TocsinMessageTools. */
(function () {
  "use strict";

  const DEBOUNCE_MS = 300;
  /* The words, in the page's language: the JSON dictionary the template renders
     (_compose_i18n.html). t(key, {name: value}) fills {name}; numbers by the locale. */
  const dictEl = document.getElementById("compose-i18n");
  const I18N = dictEl ? JSON.parse(dictEl.textContent) : {};
  const LOCALE = I18N.locale || "en-GB";
  const NUMBER = new Intl.NumberFormat(LOCALE);
  const PLURAL = new Intl.PluralRules(LOCALE);
  const fmtValue = (v) => (typeof v === "number" ? NUMBER.format(v) : String(v));
  function t(key, params) {
    let s = I18N[key];
    if (s && typeof s === "object") s = s[PLURAL.select(Number((params || {}).n))] || s.other;
    if (typeof s !== "string") return key;
    return s.replace(/\{(\w+)\}/g, (m, k) => (params && k in params ? fmtValue(params[k]) : m));
  }
  /* The same, as a list of strings and nodes: a parameter that is a DOM node (e.g. a
     <strong>) is put in its place. */
  function tNodes(key, params) {
    const out = [];
    t(key, Object.fromEntries(Object.entries(params || {}).map(([k, v]) =>
      [k, v instanceof Node ? "\u0000" + k + "\u0000" : v]))).split("\u0000").forEach((part, i) => {
      if (i % 2) out.push(params[part]); else if (part) out.push(part);
    });
    return out;
  }
  const money = (v, digits) => Number(v).toLocaleString(LOCALE, { style: "currency", currency: "EUR",
    minimumFractionDigits: digits || 3, maximumFractionDigits: 3 });
  // language names in running text ("Texte en néerlandais": no capital in French)
  const LANG = I18N.lang_names_text || I18N.lang_names || {};
  const BUILTIN = ["area_name", "time"];
  const PLACEHOLDER = /\{([A-Za-z_][A-Za-z0-9_]*)\}/g;

  let opts = null;
  const timers = new Map();
  const seqs = new Map();
  const fieldValues = {};
  let errorLangs = [];
  let previewApi = true;   // false once the server says it has no preview API (404)
  let voiceApi = true;
  let ttsAvailable = true;

  function debounce(key, fn, ms) {
    clearTimeout(timers.get(key));
    timers.set(key, setTimeout(fn, ms === undefined ? DEBOUNCE_MS : ms));
  }
  function nextSeq(key) { const n = (seqs.get(key) || 0) + 1; seqs.set(key, n); return n; }
  function isLatest(key, n) { return seqs.get(key) === n; }

  function el(tag, attrs, text) {
    const e = document.createElement(tag);
    Object.entries(attrs || {}).forEach(([k, v]) => e.setAttribute(k, v));
    if (text !== undefined) e.textContent = text;
    return e;
  }

  // Several requests in flight can meet the ended session at once: the first one leads
  // to the login page; a second assignment would abort that navigation and start it again.
  let leaving = false;

  async function postJSON(url, payload) {
    const r = await fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": opts.csrf },
      body: JSON.stringify(payload),
    });
    if (r.status === 401) {
      // The session ended (time limit or logout elsewhere): the draft is kept in this
      // tab's sessionStorage and comes back after the next login (WCAG 2.2.5).
      try { opts.onLoggedOut(); } catch (e) { /* the draft is saved as typed anyway */ }
      if (!leaving) { leaving = true; window.location.href = "/login"; }
      throw new Error("logged out");
    }
    let data = null;
    try { data = await r.json(); } catch (e) { data = null; }
    return { ok: r.ok, status: r.status, data: data };
  }


  /* ---------- local fallback (3GPP TS 23.038) when the preview API is unreachable ---------- */
  const GSM_BASIC = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?" +
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
  const GSM_EXT = "^{}\\[~]|€\f";
  function localInfo(text) {
    let septets = 0, gsm = true;
    const nonGsm = [];
    for (const ch of text) {
      if (GSM_BASIC.includes(ch)) septets += 1;
      else if (GSM_EXT.includes(ch)) septets += 2;
      else { gsm = false; if (!nonGsm.includes(ch)) nonGsm.push(ch); }
    }
    if (gsm) return { encoding: "GSM-7", units: septets, non_gsm_chars: [],
                      segments: septets <= 160 ? 1 : Math.ceil(septets / 153) };
    const units = text.length; // UTF-16 code units
    return { encoding: "UCS-2", units: units, non_gsm_chars: nonGsm,
             segments: units <= 70 ? 1 : Math.ceil(units / 67) };
  }

  /* ---------- placeholders ---------- */
  function placeholdersIn(text) {
    const out = [];
    for (const m of text.matchAll(PLACEHOLDER)) if (!out.includes(m[1])) out.push(m[1]);
    return out;
  }
  function brusselsTime() {
    return new Intl.DateTimeFormat(LOCALE, { timeZone: "Europe/Brussels", hour: "2-digit",
                                              minute: "2-digit", hourCycle: "h23" }).format(new Date());
  }
  /* The text as a recipient in `lang` would get it (the area named in that language;
     placeholders without a value are left as they are). */
  function substitute(text, lang) {
    const values = Object.assign({}, fieldValues, { time: brusselsTime() });
    const area = opts.areaName(lang);
    if (area) values.area_name = area;
    return text.replace(PLACEHOLDER, (whole, name) =>
      (values[name] !== undefined && String(values[name]).trim()) ? values[name] : whole);
  }
  function freeFields() {
    const names = [];
    document.querySelectorAll("textarea[data-lang], [data-content-field]").forEach((t) => {
      placeholdersIn(t.value).forEach((n) => { if (!BUILTIN.includes(n) && !names.includes(n)) names.push(n); });
    });
    return names;
  }
  /* One input per free placeholder used in any text (templates declare them; operators may type new ones). */
  function syncFields() {
    const box = document.getElementById("fill-fields");
    const list = document.getElementById("fill-fields-list");
    if (!box || !list) return;
    const wanted = freeFields();
    list.querySelectorAll("[data-field]").forEach((div) => {
      if (!wanted.includes(div.dataset.field)) div.remove();
    });
    wanted.forEach((name) => {
      if (list.querySelector(`[data-field="${CSS.escape(name)}"]`)) return;
      const div = el("div", { class: "field", "data-field": name });
      const label = el("label", { for: "field-" + name }, name.replace(/_/g, " ") + " ");
      label.append(el("code", {}, "{" + name + "}"));
      const input = el("input", { type: "text", id: "field-" + name, "data-field-input": name,
                                  autocomplete: "off" });
      input.value = fieldValues[name] || "";
      bindField(input);
      div.append(label, input, el("p", { class: "field-error", "data-error-for": "fields." + name,
                                         role: "alert", hidden: "" }));
      list.append(div);
    });
    box.hidden = wanted.length === 0;
  }
  function bindField(input) {
    input.addEventListener("input", () => {
      fieldValues[input.dataset.fieldInput] = input.value;
      languages().forEach((lang) => schedulePreview(lang));
      opts.onChange();
    });
  }
  function fields() {
    const out = {};
    freeFields().forEach((n) => { out[n] = (fieldValues[n] || "").trim(); });
    return out;
  }

  /* ---------- language tabs (WAI-ARIA Authoring Practices "Tabs", manual focus = selection) ---------- */
  function tabs() { return [...document.querySelectorAll('.lang-tabs [role="tab"]')]; }
  function languages() { return tabs().map((t) => t.dataset.lang); }
  function selectTab(lang, focus) {
    tabs().forEach((t) => {
      const on = t.dataset.lang === lang;
      t.setAttribute("aria-selected", on ? "true" : "false");
      t.tabIndex = on ? 0 : -1;
      document.getElementById("panel-" + t.dataset.lang).hidden = !on;
      if (on && focus) t.focus();
    });
  }
  function initTabs() {
    const list = tabs();
    list.forEach((t, i) => {
      t.addEventListener("click", () => selectTab(t.dataset.lang, false));
      t.addEventListener("keydown", (ev) => {
        let j = null;
        if (ev.key === "ArrowRight") j = (i + 1) % list.length;
        else if (ev.key === "ArrowLeft") j = (i - 1 + list.length) % list.length;
        else if (ev.key === "Home") j = 0;
        else if (ev.key === "End") j = list.length - 1;
        if (j !== null) { ev.preventDefault(); selectTab(list[j].dataset.lang, true); }
      });
    });
  }
  function updateTabState(lang) {
    const state = document.getElementById("tab-state-" + lang);
    const ta = document.getElementById("text-" + lang);
    if (!state || !ta) return;
    const required = (opts.required || []).includes(lang);
    const warn = !document.getElementById("langwarn-" + lang).hidden;
    const over = document.getElementById("preview-" + lang).classList.contains("over");
    // A compact mark on the tab; the words for screen readers and as a tooltip.
    let icon = "", words = "", cls = "";
    if (errorLangs.includes(lang)) { icon = "⚠"; words = t("tab_fix"); cls = "bad"; }
    else if (over) { icon = "⚠"; words = t("tab_too_long"); cls = "bad"; }
    else if (warn) { icon = "⚠"; words = t("tab_check_language"); cls = "warn"; }
    else if (ta.value.trim()) { icon = "✓"; words = t("tab_written"); cls = "ok"; }
    else if (required) { icon = "○"; words = t("tab_empty"); cls = "bad"; }
    state.replaceChildren();
    if (icon) state.append(el("span", { "aria-hidden": "true" }, icon), el("span", { class: "visually-hidden" }, " " + words));
    state.title = words;
    state.className = "lang-tab-state " + cls;
  }
  /* Show the tab of a field that has an error (e.g. texts.nl while French is shown). Only
     after an explicit action (Launch): never while the operator types. */
  function reveal(lang) { if (languages().includes(lang)) selectTab(lang, false); }
  function selectedLanguage() {
    const t = tabs().find((x) => x.getAttribute("aria-selected") === "true");
    return t ? t.dataset.lang : null;
  }
  /* Mark the tabs of the languages with an error (the estimate's), without selecting them. */
  function setErrorLanguages(langs) {
    const before = errorLangs;
    errorLangs = (langs || []).slice();
    new Set([...before, ...errorLangs]).forEach((lang) => updateTabState(lang));
  }

  /* ---------- SMS preview (H6 API: POST /api/messages/sms-preview) ---------- */
  function schedulePreview(lang) { debounce("sms-" + lang, () => refreshPreview(lang)); }
  function explain(p) {
    return t(p.encoding === "GSM-7" ? "explain_gsm7" : "explain_ucs2");
  }
  /* Characters that print as nothing (or as a plain space): shown as a named badge. */
  const INVISIBLE_CODES = {
    "\u00a0": "NBSP", "\u202f": "NNBSP", "\u2007": "FIGSP", "\u2009": "THINSP", "\u200a": "HAIRSP",
    "\u2002": "ENSP", "\u2003": "EMSP", "\u200b": "ZWSP", "\u200c": "ZWNJ", "\u200d": "ZWJ",
    "\u2060": "WJ", "\ufeff": "BOM", "\u00ad": "SHY", "\t": "TAB",
  };
  const INVISIBLE = Object.fromEntries(Object.entries(INVISIBLE_CODES).map(
    ([ch, code]) => [ch, [code, (I18N.invisible || {})[code] || code]]));
  function codePoint(ch) { return "U+" + ch.codePointAt(0).toString(16).toUpperCase().padStart(4, "0"); }
  /* One character as shown to the operator: visible ones as they are, invisible ones as a
     badge naming them (a blank box tells nothing). */
  function charBadge(ch) {
    const inv = INVISIBLE[ch];
    if (inv) {
      return el("mark", { class: "invisible-char", title: `${inv[1]} (${codePoint(ch)})`, "aria-label": inv[1] }, "⍽" + inv[0]);
    }
    return el("mark", { title: codePoint(ch) }, ch === " " ? "␠" : ch);
  }
  function charWords(ch) {
    const inv = INVISIBLE[ch];
    return inv ? inv[0] : (ch === " " ? t("space") : ch);
  }
  function markedText(text, chars) {
    const frag = document.createDocumentFragment();
    let plain = "";
    for (const ch of text) {
      if (chars.includes(ch) || INVISIBLE[ch]) {
        if (plain) { frag.append(plain); plain = ""; }
        frag.append(charBadge(ch));
      } else plain += ch;
    }
    if (plain) frag.append(plain);
    return frag;
  }
  /* What the GSM-7 rewrite does to each character that forces UCS-2 ("’ → '"), asked of the
     preview API one character at a time (cached): the hint lists this text's characters. */
  const charRewrites = new Map();
  async function rewriteOf(ch) {
    if (charRewrites.has(ch)) return charRewrites.get(ch);
    let out = null;
    try {
      const r = await postJSON("/api/messages/sms-preview", { text: "a" + ch + "a", authority_id: opts.authorityId });
      if (r.ok && r.data && typeof r.data.gsm7_rewrite === "string") {
        const w = r.data.gsm7_rewrite;
        out = w.startsWith("a") && w.endsWith("a") ? w.slice(1, -1) : w;
      }
    } catch (e) { out = null; }
    charRewrites.set(ch, out);
    return out;
  }
  /* ``long``: invisible characters by their full name ("no-break space → space"). */
  async function describeRewrite(span, text, chars, prefix, long) {
    const words = long ? (ch) => { const inv = INVISIBLE[ch]; return inv ? inv[1] : charWords(ch); } : charWords;
    const pairs = [];
    for (const ch of chars) {
      const to = await rewriteOf(ch);
      if (to !== null && to !== ch) {
        const shown = to === "" ? t("removed") : [...to].map(words).join("");
        pairs.push(`${words(ch)} → ${long && to === " " ? t("space") : shown}`);
      }
    }
    if (/«[\s\u00a0\u202f]|[\s\u00a0\u202f]»/.test(text)) pairs.push(t("guillemet_spaces"));
    if (pairs.length) span.prepend(t(prefix || "changes", { list: pairs.join(", ") }));
    else if (long) span.remove();
  }
  /* The text before the last rewrite of each language, to undo it (with the e-mail and CAP
     fields the rewrite filled). */
  const undoState = {};
  /* Fields that default from the SMS text and keep accents at no cost. */
  const KEEP_SPELLING = ["email_text", "cap_description"];
  function spellingFields(lang) {
    return KEEP_SPELLING.map((f) => document.getElementById(`content-${lang}-${f}`)).filter(Boolean);
  }
  async function refreshPreview(lang) {
    const ta = document.getElementById("text-" + lang);
    const box = document.getElementById("preview-" + lang);
    if (!ta || !box) return;
    const count = document.getElementById("count-" + lang);
    const detail = box.querySelector('[data-role="detail"]');
    const raw = ta.value;
    const text = substitute(raw, lang);
    const n = nextSeq("sms-" + lang);
    if (!raw.trim()) {
      count.textContent = t("characters", { n: 0 });
      detail.replaceChildren();
      box.classList.remove("over", "ucs2");
      ta.removeAttribute("aria-invalid");
      updateTabState(lang);
      return;
    }
    let p = null;
    if (previewApi) {
      try {
        const r = await postJSON("/api/messages/sms-preview", { text: text, authority_id: opts.authorityId });
        if (r.ok) p = r.data;
        else if (r.status === 404 && !(r.data && r.data.error && r.data.error.field === "authority_id")) previewApi = false;
      } catch (e) { p = null; }
    }
    if (!isLatest("sms-" + lang, n)) return;
    if (!p) {
      const i = localInfo(text);
      p = Object.assign(i, { part_units: [], cost_eur: null, max_segments: opts.maxSegments,
                             over_max: i.segments > opts.maxSegments, gsm7_rewrite: null,
                             rewrite_segments: null });
    }
    renderPreview(lang, raw, text, p);
  }
  function renderPreview(lang, raw, text, p) {
    const ta = document.getElementById("text-" + lang);
    const box = document.getElementById("preview-" + lang);
    const count = document.getElementById("count-" + lang);
    const detail = box.querySelector('[data-role="detail"]');
    const unitName = t(p.encoding === "GSM-7" ? "unit_septets" : "unit_utf16");
    let line = t("count_line", { encoding: p.encoding, units: p.units, unit: unitName,
                                 segments: t("sms_segments", { n: p.segments }) });
    if (p.cost_eur !== null && p.cost_eur !== undefined) {
      line += t(opts.environment === "live" ? "per_recipient" : "per_recipient_sim", { cost: money(p.cost_eur) });
    }
    count.textContent = line;
    box.classList.toggle("over", !!p.over_max);
    box.classList.toggle("ucs2", p.encoding === "UCS-2");
    if (p.over_max) ta.setAttribute("aria-invalid", "true"); else ta.removeAttribute("aria-invalid");
    const parts = [];
    parts.push(el("p", { class: "sms-explain hint" }, explain(p)));
    if (p.part_units && p.part_units.length > 1) {
      parts.push(el("p", { class: "hint" }, t("parts", { list: p.part_units.map(fmtValue).join(" + "), unit: unitName })));
    }
    if (p.over_max) {
      parts.push(el("p", { class: "sms-over", role: "alert" },
        t("too_long", { n: p.segments, max: p.max_segments })));
    }
    const nonGsm = p.non_gsm_chars || [];
    const invisible = [...new Set([...text].filter((ch) => INVISIBLE[ch]))];
    if (nonGsm.length) {
      const why = el("p", { class: "sms-ucs2" });
      why.append(t("force_ucs2") + " ");
      nonGsm.forEach((ch, i) => {
        if (i) why.append(" ");
        why.append(charBadge(ch));
      });
      parts.push(why);
    }
    if (nonGsm.length || invisible.length) {
      const shown = el("p", { class: "sms-marked", "aria-label": t("marked_text") });
      shown.append(markedText(text, nonGsm));
      parts.push(shown);
    }
    if (nonGsm.length) {
      const segs = (k) => t("segments", { n: k });
      const plain = p.gsm7_rewrite !== null && p.gsm7_rewrite !== undefined;
      if (plain) {
        const same = p.rewrite_segments && p.rewrite_segments >= p.segments;
        const btn = el("button", { type: "button", class: "button-secondary sms-rewrite" },
                       t(same ? "rewrite_same" : "rewrite"));
        btn.addEventListener("click", () => applyRewrite(lang, raw, text, p.gsm7_rewrite, "gsm7_rewrite"));
        const row = el("div", { class: "sms-rewrite-row" });
        const after = p.rewrite_segments
          ? (same ? t("same_cost", { segments: segs(p.rewrite_segments) })
                  : t("fewer", { before: segs(p.segments), after: segs(p.rewrite_segments) })) : "";
        const hint = el("span", { class: "hint sms-rewrite-changes" }, after);
        row.append(btn, hint);
        describeRewrite(hint, text, nonGsm);
        parts.push(row);
      }
      const accent = p.accent_rewrite !== null && p.accent_rewrite !== undefined;
      if (accent) {
        const same = p.accent_rewrite_segments && p.accent_rewrite_segments >= p.segments;
        const box = el("div", { class: "sms-accent" });
        const btn = el("button", { type: "button", class: "button-secondary sms-accent-rewrite" },
                       t(same ? "accents_same" : "accents"));
        btn.addEventListener("click", () => applyRewrite(lang, raw, text, p.accent_rewrite, "accent_rewrite"));
        const after = p.accent_rewrite_segments
          ? (same ? t("same_cost", { segments: segs(p.accent_rewrite_segments) })
                  : t("fewer", { before: segs(p.segments), after: segs(p.accent_rewrite_segments) })) : "";
        box.append(el("p", { class: "hint" }, t("accents_hint") + after));
        const words = p.accent_changes || [];
        if (words.length) {
          const ul = el("ul", { class: "accent-changes", "aria-label": t("words_changed") });
          words.forEach((w) => {
            const li = el("li");
            li.append(el("span", { lang: lang }, w.from), " → ", el("strong", { lang: lang }, w.to));
            ul.append(li);
          });
          box.append(ul);
        }
        const also = el("p", { class: "hint accent-also" });
        box.append(also);
        describeRewrite(also, text, nonGsm.filter((ch) => !/\p{L}/u.test(ch)), "also_changed", true);
        if (spellingFields(lang).some((f) => !f.value.trim())) {
          box.append(el("p", { class: "hint accent-keep" }, t("keep_spelling")));
        }
        box.append(btn);
        parts.push(box);
      }
      if (!plain && !accent) {
        parts.push(el("p", { class: "hint" }, t("no_rewrite")));
      }
    }
    const undo = undoState[lang];
    if (undo && ta.value === undo.after) {
      const row = el("div", { class: "sms-undo-row" });
      const btn = el("button", { type: "button", class: "button-secondary sms-undo" }, t("undo"));
      btn.addEventListener("click", () => {
        delete undoState[lang];
        undo.filled.forEach((f) => { f.value = ""; f.dispatchEvent(new Event("input", { bubbles: true })); });
        ta.value = undo.before;
        ta.dispatchEvent(new Event("input", { bubbles: true }));
        ta.focus();
      });
      row.append(btn, el("span", { class: "hint" }, t("undo_hint")));
      parts.push(row);
    } else if (undo) {
      delete undoState[lang];
    }
    detail.replaceChildren(...parts);
    updateTabState(lang);
  }
  /* The rewrite must keep the placeholders: it is asked for the raw text when it has any. */
  async function applyRewrite(lang, raw, text, rewritten, key) {
    const ta = document.getElementById("text-" + lang);
    let value = rewritten;
    if (raw !== text) {
      value = null;
      try {
        const r = await postJSON("/api/messages/sms-preview", { text: raw, authority_id: opts.authorityId });
        if (r.ok && r.data) value = r.data[key];
      } catch (e) { value = null; }
      if (value === null || value === undefined) return;
    }
    const before = ta.value;
    const filled = [];
    if (key === "accent_rewrite") {
      // E-mail and CAP carry accents at no cost: they keep the text as it was.
      spellingFields(lang).forEach((f) => {
        if (f.value.trim()) return;
        f.value = before;
        filled.push(f);
        f.dispatchEvent(new Event("input", { bubbles: true }));
      });
    }
    undoState[lang] = { before: before, after: value, filled: filled };
    ta.value = value;
    ta.dispatchEvent(new Event("input", { bubbles: true }));
    ta.focus();
  }

  /* ---------- voice: estimate and audio preview (H6 API) ---------- */
  function voiceScript(lang) {
    const v = document.getElementById(`content-${lang}-voice`);
    const t = document.getElementById("text-" + lang);
    return substitute((v && v.value.trim()) ? v.value : (t ? t.value : ""), lang);
  }
  function scheduleVoice(lang) { debounce("voice-" + lang, () => refreshVoice(lang)); }
  async function refreshVoice(lang) {
    const out = document.getElementById("voice-est-" + lang);
    if (!out || !voiceApi) return;
    const script = voiceScript(lang);
    const n = nextSeq("voice-" + lang);
    if (!script.trim()) { out.textContent = ""; return; }
    try {
      const r = await postJSON("/api/messages/voice-estimate", { script: script, language: lang });
      if (!isLatest("voice-" + lang, n)) return;
      if (r.status === 404) { voiceApi = false; out.textContent = ""; return; }
      if (!r.ok) { out.textContent = (r.data && r.data.error && (r.data.error.message || r.data.error.reason)) || ""; return; }
      const d = r.data;
      out.textContent = t("voice_estimate", { n: Number(d.billed_minutes), seconds: Number(d.seconds),
        words: Number(d.words), minutes: Number(d.billed_minutes), cost: money(d.cost_eur) });
    } catch (e) { /* the estimate is a help, not a condition */ }
  }
  function ttsUnavailable(reason) {
    ttsAvailable = false;
    document.querySelectorAll(".voice-listen").forEach((b) => {
      b.disabled = true;
      const note = document.getElementById("voice-note-" + b.dataset.lang);
      if (note) { note.hidden = false; note.textContent = reason; }
    });
  }
  async function listen(lang, button) {
    if (!ttsAvailable) return;
    const script = voiceScript(lang);
    const note = document.getElementById("voice-note-" + lang);
    if (!script.trim()) { note.hidden = false; note.textContent = t("write_first"); return; }
    button.disabled = true;
    const label = button.textContent;
    button.textContent = t("preparing");
    try {
      const r = await fetch("/api/messages/voice-preview", {
        method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": opts.csrf },
        body: JSON.stringify({ script: script, language: lang }),
      });
      if (r.ok && (r.headers.get("Content-Type") || "").startsWith("application/json")) {
        const d = await r.json();
        ttsUnavailable(d.message || t("no_tts"));
        return;
      }
      if (r.status === 503 || r.status === 404) {
        ttsUnavailable(t("no_tts"));
        return;
      }
      if (!r.ok) {
        let reason = t("error_status", { status: String(r.status) });
        try { const d = await r.json(); reason = (d.error && (d.error.message || d.error.reason || d.error)) || reason; } catch (e) { /* keep */ }
        note.hidden = false; note.textContent = String(reason);
        return;
      }
      const audio = document.getElementById("audio-" + lang);
      if (audio.src) URL.revokeObjectURL(audio.src);
      audio.src = URL.createObjectURL(await r.blob());
      audio.hidden = false;
      note.hidden = true;
      try { await audio.play(); } catch (e) { /* autoplay refused: the controls are there */ }
    } finally {
      button.textContent = label;
      if (ttsAvailable) button.disabled = false;
    }
  }

  /* ---------- wrong-language warnings (H6 API: POST /api/messages/language-check) ---------- */
  let languageApi = true;
  function scheduleLanguageCheck() { debounce("language", refreshLanguageCheck, 800); }
  async function refreshLanguageCheck() {
    if (!languageApi) return;
    const texts = {};
    languages().forEach((lang) => {
      const t = document.getElementById("text-" + lang).value;
      if (t.trim()) texts[lang] = t;
    });
    const n = nextSeq("language");
    let warnings = [];
    if (Object.keys(texts).length) {
      try {
        const r = await postJSON("/api/messages/language-check", { texts: texts });
        if (r.status === 404) { languageApi = false; return; }
        if (r.ok && r.data) warnings = r.data.warnings || [];
      } catch (e) { return; }
    }
    if (!isLatest("language", n)) return;
    languages().forEach((lang) => {
      const out = document.getElementById("langwarn-" + lang);
      const w = warnings.find((x) => x.language === lang);
      out.hidden = !w;
      out.textContent = w ? "⚠ " + languageWarning(w) : "";
      updateTabState(lang);
    });
  }

  /* "The Dutch text reads as French": the text box named in words, not as a field path. */
  function languageWarning(w) {
    const here = LANG[w.language], there = LANG[w.detected];
    if (here && there) {
      return t("wrong_language", { here: here, there: there });
    }
    return String(w.message || "").replace(/\btexts?\.(\w\w)\b/g, (m, l) => t("lang_text", { language: LANG[l] || l }));
  }

  /* ---------- who gets which language (from the estimate's by_language) ---------- */
  function showRecipients(est) {
    const names = I18N.channel_names || {};
    languages().forEach((lang) => {
      const out = document.getElementById("who-" + lang);
      if (!out) return;
      if (!est) { out.textContent = ""; return; }
      const parts = Object.entries(est.by_language || {})
        .map(([ch, langs]) => [ch, (langs || {})[lang] || 0])
        .filter(([, k]) => k > 0)
        .map(([ch, k]) => t("by_channel", { n: Number(k), channel: names[ch] || ch }));
      const has = document.getElementById("text-" + lang).value.trim();
      out.textContent = parts.length ? t("gets_text", { language: LANG[lang] || lang, list: parts.join(", ") })
        : (has ? t("nobody_gets", { language: LANG[lang] || lang }) : "");
    });
  }

  /* ---------- content per language and field ---------- */
  function content() {
    const out = {};
    document.querySelectorAll("[data-content-field]").forEach((f) => {
      if (!f.value.trim()) return;
      const lang = f.dataset.contentLang;
      (out[lang] = out[lang] || {})[f.dataset.contentField] = f.value;
    });
    return out;
  }

  function refreshAll() {
    languages().forEach((lang) => { schedulePreview(lang); scheduleVoice(lang); });
  }

  function init(options) {
    opts = Object.assign({ onChange: () => {}, onLoggedOut: () => {}, areaName: () => "", required: [],
                           maxSegments: 6 }, options);
    initTabs();
    document.querySelectorAll("[data-field-input]").forEach(bindField);
    document.querySelectorAll("textarea[data-lang]").forEach((ta) => {
      const lang = ta.dataset.lang;
      ta.addEventListener("input", () => {
        schedulePreview(lang); scheduleVoice(lang); scheduleLanguageCheck(); syncFields();
        opts.onChange();
      });
    });
    document.querySelectorAll("[data-content-field]").forEach((f) => {
      f.addEventListener("input", () => {
        if (f.dataset.contentField === "voice") scheduleVoice(f.dataset.contentLang);
        syncFields();
        opts.onChange();
      });
    });
    document.querySelectorAll(".voice-listen").forEach((b) =>
      b.addEventListener("click", () => listen(b.dataset.lang, b)));
    syncFields();
    languages().forEach((lang) => { updateTabState(lang); refreshPreview(lang); refreshVoice(lang); });
    refreshLanguageCheck();
  }

  window.TocsinMessageTools = {
    init: init, postJSON: postJSON, content: content, fields: fields, reveal: reveal,
    showRecipients: showRecipients, refreshAll: refreshAll, languages: languages,
    placeholdersIn: placeholdersIn, selectedLanguage: selectedLanguage,
    setErrorLanguages: setErrorLanguages,
  };
  window.TocsinI18n = { t: t, tNodes: tNodes, money: money, number: fmtValue, locale: LOCALE,
                        dict: I18N };
})();
