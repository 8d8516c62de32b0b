/* Tocsin live monitor (F26): one campaign's counters from server-sent events, every
   second until the campaign is final. The summary line is the only live region, and it is
   re-announced at most every 10 seconds (and at the end), so a screen reader is not
   flooded. Without JavaScript the page refreshes itself every 5 seconds. */
(function () {
  "use strict";
  const cfg = JSON.parse(document.getElementById("monitor-config").textContent);
  const LOCALE = { fr: "fr-BE", nl: "nl-BE", de: "de-BE", en: "en-GB" }[cfg.lang] || "en-GB";
  const fmt = new Intl.NumberFormat(LOCALE);
  const timeLeft = (d) => (d.seconds_left === null || d.seconds_left === undefined
    ? cfg.phrases.unknown : d.time_left);
  const ANNOUNCE_MS = 10000;
  let lastAnnounce = Date.now();

  function drawMap() {
    const el = document.getElementById("monitor-map");
    if (!el || !window.L || !cfg.area) return;
    const map = L.map(el, { zoomControl: true, attributionControl: !!cfg.tile_url,
                            keyboard: false, scrollWheelZoom: false });
    if (cfg.tile_url) {
      L.tileLayer(cfg.tile_url, { maxZoom: 19, attribution: cfg.phrases.map_tiles }).addTo(map);
    }
    const layer = L.geoJSON(cfg.area, { style: { color: "#b00020", weight: 3, fillOpacity: 0.2 } })
      .addTo(map);
    map.fitBounds(layer.getBounds(), { padding: [16, 16] });
  }

  function phrase(name, d) {
    const status = cfg.status_names[d.status] || d.status.replace("_", " ");
    const words = {
      done: fmt.format(d.done), total: fmt.format(d.total), percent: fmt.format(d.percent),
      failed: fmt.format(d.failed), time_left: timeLeft(d),
      status: status.charAt(0).toUpperCase() + status.slice(1),
    };
    return cfg.phrases[name].replace(/\{(\w+)\}/g, (_, k) => String(words[k]));
  }

  function setText(selector, text) {
    document.querySelectorAll(selector).forEach((el) => { el.textContent = text; });
  }

  function update(d) {
    setText('[data-figure="done"]', fmt.format(d.done));
    setText('[data-figure="total"]', fmt.format(d.total));
    setText('[data-figure="percent"]', fmt.format(d.percent));
    setText('[data-figure="throughput_per_s"]', fmt.format(d.throughput_per_s));
    setText('[data-figure="time_left"]', timeLeft(d));
    setText('[data-figure="failed"]', fmt.format(d.failed));
    document.getElementById("figure-failed").classList.toggle("has-failed", d.failed > 0);
    const bar = document.getElementById("monitor-bar");
    bar.max = Math.max(d.total, 1);
    bar.value = d.done;
    Object.entries(d.channels || {}).forEach(([ch, c]) => {
      Object.entries(c.states).forEach(([st, n]) => setText(`[data-cell="${ch}.${st}"]`, fmt.format(n)));
      setText(`[data-cell="${ch}.total"]`, fmt.format(c.total));
    });
    const body = document.querySelector("#monitor-failures tbody");
    body.replaceChildren();
    (d.failures.length ? d.failures : [null]).forEach((f) => {
      const tr = document.createElement("tr");
      const cells = f ? [cfg.channel_names[f.channel] || f.channel, f.reason, fmt.format(f.count)]
                      : [cfg.phrases.no_failures];
      cells.forEach((text, i) => {
        const td = document.createElement("td");
        td.textContent = text;
        if (!f) td.colSpan = 3;
        if (f && i === 2) td.className = "num";
        tr.appendChild(td);
      });
      body.appendChild(tr);
    });
    const when = new Date(d.updated_at);
    setText("#monitor-updated", when.toLocaleTimeString(LOCALE, { timeZone: "Europe/Brussels" }));
    if (d.final || Date.now() - lastAnnounce >= ANNOUNCE_MS) {
      lastAnnounce = Date.now();
      const name = d.final ? "final" : (d.status === "sending" ? "sending" : "other");
      setText("#monitor-summary", phrase(name, d));
    }
    document.getElementById("monitor").dataset.status = d.status;
  }

  drawMap();
  if (cfg.final || !window.EventSource) return;
  const source = new EventSource(cfg.events);
  source.addEventListener("progress", (e) => {
    const d = JSON.parse(e.data);
    update(d);
    if (d.final) source.close();
  });
})();
