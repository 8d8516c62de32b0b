/* Tocsin campaign page: live progress per channel while sending (polls the report every
   2 seconds; a scheduled campaign every 30 seconds, only to notice when it starts), and the
   follow-up actions: cancel and all-clear (dialogs), update (the composer). */
(function () {
  "use strict";
  const cfg = JSON.parse(document.getElementById("campaign-config").textContent);
  const LOCALES = { fr: "fr-BE", nl: "nl-BE", de: "de-BE", en: "en-GB" };
  const fmt = new Intl.NumberFormat(LOCALES[cfg.lang] || "en-GB");
  const P = cfg.phrases;
  const say = (text, words) => text.replace(/\{(\w+)\}/g, (_, k) => String(words[k]));
  const statusName = (s) => cfg.status_names[s] || s.replace("_", " ");
  const statusEl = document.getElementById("campaign-status");
  const note = document.getElementById("live-note");
  const SENDING_POLL_MS = 2000;
  const SCHEDULED_POLL_MS = 30000;
  let failures = 0;

  function update(report) {
    Object.entries(report.channels || {}).forEach(([name, c]) => {
      const row = document.querySelector(`.progress-row[data-channel="${name}"]`);
      if (!row || !c.by_status) return;
      const st = c.by_status;
      const total = c.recipients || 0;
      const done = total - (st.queued || 0) - (st.in_flight || 0);
      const bar = row.querySelector("progress");
      bar.max = Math.max(total, 1);
      bar.value = total ? done : 0;
      row.querySelector('[data-role="text"]').textContent = say(P.processed, { done: fmt.format(done), total: fmt.format(total) });
      const states = row.querySelector('[data-role="states"]');
      states.replaceChildren();
      Object.entries(st).forEach(([s, n]) => {
        if (!n) return;
        const span = document.createElement("span");
        span.className = "state state-" + s;
        span.textContent = `${cfg.state_names[s] || s.replace("_", " ")}: ${fmt.format(n)}`;
        states.append(span, " ");
      });
    });
    // Location-based sends: the operators' counts (issue 11).
    const locStates = document.getElementById("progress-location-states");
    const locNames = locStates ? JSON.parse(locStates.textContent) : {};
    Object.entries(report.location || {}).forEach(([channel, loc]) => {
      Object.entries(loc.operators || {}).forEach(([op, o]) => {
        const row = document.querySelector(`#h-progress ~ .table-scroll tr[data-op="${channel}:${op}"]`);
        if (!row) return;
        row.querySelectorAll("[data-k]").forEach((cell) => {
          const v = o[cell.dataset.k];
          const k = cell.dataset.k;
          cell.textContent = k === "state" ? (locNames[v] || v)
            : k === "messages" ? ((v || []).join(", ") || "—") : fmt.format(Number(v || 0));
        });
      });
    });
    const cap = (report.channels || {}).cap;
    const capState = document.getElementById("cap-state");
    if (cap && capState) {
      capState.textContent = cap.published ? P.published : P.not_published;
      if (cap.published && cap.url && !document.getElementById("cap-link")) {
        const a = document.createElement("a");
        a.id = "cap-link"; a.href = cap.url; a.textContent = P.view_cap;
        capState.after(" — ", a);
      }
    }
    // A campaign can finish with deliveries that failed: say so, never a plain green "finished".
    statusEl.textContent = report.failed
      ? say(P.failed, { status: statusName(report.status), failed: fmt.format(report.failed) })
      : statusName(report.status);
    statusEl.className = "status status-" + (report.failed ? "failed" : report.status);
  }

  /* A final state reported by the polling: pause and stop no longer apply. Their buttons
     go, the reason takes their place, and the live region says it (WCAG 4.1.3). */
  const FINAL = ["finished", "stopped", "cancelled"];
  function ended(status) {
    const control = document.querySelector(".dispatch-control");
    if (control && !control.dataset.ended) {
      control.dataset.ended = "1";
      control.querySelectorAll("form, .hint").forEach((e) => e.remove());
      const p = document.createElement("p");
      p.id = "control-ended";
      p.textContent = say(P.ended, { status: statusName(status) });
      control.append(p);
    }
    if (note) note.textContent = say(P.ended, { status: statusName(status) });
  }

  async function showFinal() {
    const r = await fetch(`/campaigns/${encodeURIComponent(cfg.campaign_id)}/final?lang=${encodeURIComponent(cfg.lang)}`, { credentials: "same-origin" });
    if (!r.ok) return;
    document.getElementById("final").innerHTML = await r.text();
    if (note) note.textContent = P.finished + " " + say(P.ended, { status: statusName("finished") });
  }

  async function poll() {
    let wait = cfg.status === "scheduled" ? SCHEDULED_POLL_MS : SENDING_POLL_MS;
    try {
      const r = await fetch(`/api/campaigns/${encodeURIComponent(cfg.campaign_id)}/report`,
                            { credentials: "same-origin", cache: "no-store" });
      if (r.status === 401) { window.location.href = "/login"; return; }
      if (!r.ok) throw new Error("HTTP " + r.status);
      failures = 0;
      const report = await r.json();
      if (cfg.status === "scheduled") {
        // It started (or was cancelled elsewhere): the page for its new state.
        if (report.status !== "scheduled") window.location.reload();
        else setTimeout(poll, wait);
        return;
      }
      update(report);
      if (FINAL.includes(report.status)) ended(report.status);
      if (report.status === "finished") { await showFinal(); return; }
      if (report.status === "cancelled") { window.location.reload(); return; }
      if (report.status === "stopped") return;
      if (note) note.textContent = P.updating;
    } catch (e) {
      failures += 1;
      if (failures >= 3 && note) note.textContent = P.unreachable;
      wait = Math.max(wait, 5000);
    }
    setTimeout(poll, wait);
  }
  if (cfg.status === "sending") setTimeout(poll, SENDING_POLL_MS);
  else if (cfg.status === "scheduled") setTimeout(poll, SCHEDULED_POLL_MS);

  /* ---------- follow-up actions (cancel, all-clear) ---------- */
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
  const cleanReason = (s) => String(s || "").replace(/\s*\((?:SPEC )?F\d+(?:,\s*F\d+)*\)/g, "")
    .replace(/\s*\((?:texts?|content|fields)\.[\w.]+\)/g, "");

  function wireDialog(dialog, opener, go, send) {
    if (!dialog || !opener || !go) return;
    const typed = dialog.querySelector("[data-confirm-area]");
    const error = dialog.querySelector("[data-dialog-error]");
    const typedOk = () => !typed ||
      typed.value.trim().toLowerCase() === String(cfg.area_name).trim().toLowerCase();
    if (typed) typed.addEventListener("input", () => { go.disabled = !typedOk(); });
    opener.addEventListener("click", () => {
      error.hidden = true;
      if (typed) { typed.value = ""; go.disabled = true; }
      dialog.showModal();
      const first = dialog.querySelector("textarea, [data-confirm-area]") || go;
      first.focus();
    });
    dialog.querySelectorAll("[data-close]").forEach((b) => b.addEventListener("click", () => dialog.close()));
    go.addEventListener("click", async () => {
      if (!typedOk()) return;
      go.disabled = true;
      error.hidden = true;
      const extra = typed ? { confirm_area_name: typed.value } : {};
      try {
        const r = await send(extra);
        if (r.ok && r.data) {
          const next = r.data.cancel_campaign_id || r.data.campaign_id || cfg.campaign_id;
          window.location.href = "/campaigns/" + encodeURIComponent(next);
          return;
        }
        const err = (r.data && r.data.error) || { field: "", reason: say(P.error, { status: r.status }) };
        error.textContent = cleanReason(err.message || err.reason);
        error.hidden = false;
      } catch (e) {
        error.textContent = P.offline;
        error.hidden = false;
      }
      go.disabled = !typedOk();
    });
  }
  const base = `/api/campaigns/${encodeURIComponent(cfg.campaign_id)}`;
  wireDialog(document.getElementById("cancel-dialog"), document.getElementById("action-cancel"),
             document.getElementById("cancel-go"), (extra) => postJSON(base + "/cancel", extra));
  const allClear = document.getElementById("all-clear-dialog");
  wireDialog(allClear, document.getElementById("action-all-clear"),
             document.getElementById("all-clear-go"), (extra) => {
               const texts = {};
               allClear.querySelectorAll("[data-all-clear-lang]").forEach((t) => {
                 if (t.value.trim()) texts[t.dataset.allClearLang] = t.value;
               });
               return postJSON(base + "/all-clear", Object.assign({ texts: texts }, extra));
             });
})();
