/* Tocsin response board (issue 10): counts per answer from server-sent events, every second
   while the call is open. The summary line is the live region (aria-live polite), re-announced
   only when it changes. Without JavaScript the page refreshes itself every 5 seconds. */
(function () {
  "use strict";
  const cfg = JSON.parse(document.getElementById("board-config").textContent);
  if (!cfg.open || !window.EventSource) return;
  const LOCALE = { fr: "fr-BE", nl: "nl-BE", de: "de-BE", en: "en-GB" }[cfg.lang] || "en-GB";
  const fmt = new Intl.NumberFormat(LOCALE);
  const fill = (s, words) => s.replace(/\{(\w+)\}/g, (_, k) => String(words[k]));

  function update(d) {
    d.options.forEach((o) => {
      const cell = document.querySelector('[data-count="' + o.n + '"]');
      if (cell) cell.textContent = fmt.format(o.count);
    });
    const none = document.querySelector('[data-count="none"]');
    if (none) none.textContent = fmt.format(d.no_answer);
    const summary = document.getElementById("board-summary");
    const text = fill(cfg.phrases.summary, { answered: fmt.format(d.answered),
      asked: fmt.format(d.asked), waiting: fmt.format(d.no_answer) });
    if (summary.textContent !== text) summary.textContent = text;
    const followUp = document.getElementById("follow-up-count");
    if (followUp && d.follow_up_text) {  // the server words it: plural forms per language
      if (followUp.textContent !== d.follow_up_text) followUp.textContent = d.follow_up_text;
      followUp.closest("section").hidden = d.no_answer === 0;
    }
    const quota = document.getElementById("board-quota");
    if (quota && d.quota && quota.firstChild) {
      quota.firstChild.textContent = fill(cfg.phrases.quota, {
        accepted: fmt.format(d.quota.accepted), wanted: fmt.format(d.quota.wanted) }) + " ";
    }
  }

  const source = new EventSource(cfg.events);
  source.addEventListener("answers", (e) => {
    const d = JSON.parse(e.data);
    update(d);
    if (d.call_status !== "open") source.close();
  });
})();
