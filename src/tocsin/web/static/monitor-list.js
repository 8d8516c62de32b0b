/* Tocsin live monitor, list of running campaigns (F26): figures from server-sent events;
   the page reloads itself when a campaign appears or leaves the list. */
(function () {
  "use strict";
  const cfg = JSON.parse(document.getElementById("monitor-list-config").textContent);
  const fmt = new Intl.NumberFormat({ fr: "fr-BE", nl: "nl-BE", de: "de-BE", en: "en-GB" }[cfg.lang] || "en-GB");
  if (!window.EventSource) return;
  const source = new EventSource(cfg.events);
  source.addEventListener("campaigns", (e) => {
    const rows = JSON.parse(e.data).campaigns;
    const ids = rows.map((c) => c.campaign_id);
    if (ids.join() !== cfg.ids.join()) { source.close(); window.location.reload(); return; }
    rows.forEach((c) => {
      const tr = document.querySelector(`tr[data-campaign="${c.campaign_id}"]`);
      if (!tr) return;
      const set = (f, v) => { const el = tr.querySelector(`[data-field="${f}"]`); if (el) el.textContent = v; };
      set("status", cfg.status_names[c.status] || c.status);
      set("done", fmt.format(c.done));
      set("total", fmt.format(c.total));
      set("failed", fmt.format(c.failed));
      set("throughput_per_s", fmt.format(c.throughput_per_s));
      set("time_left", c.seconds_left === null || c.seconds_left === undefined ? cfg.unknown : c.time_left);
    });
  });
})();
