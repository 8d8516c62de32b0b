/* Tocsin campaign page: live progress per channel (polls the report every second, F26). */
(function () {
  "use strict";
  const cfg = JSON.parse(document.getElementById("campaign-config").textContent);
  const fmt = new Intl.NumberFormat("en-GB");
  const statusEl = document.getElementById("campaign-status");
  const note = document.getElementById("live-note");
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
      row.querySelector('[data-role="text"]').textContent = `${fmt.format(done)} / ${fmt.format(total)} processed`;
      const states = row.querySelector('[data-role="states"]');
      states.replaceChildren();
      Object.entries(st).forEach(([s, n]) => {
        if (!n) return;
        const span = document.createElement("span");
        span.className = "state state-" + s;
        span.textContent = `${s.replace("_", " ")}: ${fmt.format(n)}`;
        states.append(span, " ");
      });
    });
    const cap = (report.channels || {}).cap;
    const capState = document.getElementById("cap-state");
    if (cap && capState) capState.textContent = cap.published ? "published" : "not published yet";
    // A campaign can finish with deliveries that failed: say so, never a plain green "finished".
    statusEl.textContent = report.failed ? `${report.status} — ${fmt.format(report.failed)} failed` : report.status;
    statusEl.className = "status status-" + (report.failed ? "failed" : report.status);
  }

  async function showFinal() {
    const r = await fetch(`/campaigns/${encodeURIComponent(cfg.campaign_id)}/final`, { credentials: "same-origin" });
    if (!r.ok) return;
    document.getElementById("final").innerHTML = await r.text();
    note.textContent = "Campaign finished. The final report is below.";
  }

  async function poll() {
    try {
      const r = await fetch(`/api/campaigns/${encodeURIComponent(cfg.campaign_id)}/report`,
                            { credentials: "same-origin", cache: "no-store" });
      if (r.status === 401) { window.location.href = "/login"; return; }
      if (!r.ok) throw new Error("HTTP " + r.status);
      failures = 0;
      const report = await r.json();
      update(report);
      if (report.status === "finished") { await showFinal(); return; }
      note.textContent = "Updating every second…";
    } catch (e) {
      failures += 1;
      if (failures >= 3) note.textContent = "Cannot reach the server; still trying…";
    }
    setTimeout(poll, 1000);
  }
  if (cfg.status !== "finished") setTimeout(poll, 1000);
})();
