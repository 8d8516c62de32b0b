/* Tocsin templates list: deleting a template asks first (a prepared scenario is work). */
(function () {
  "use strict";
  const el = document.getElementById("templates-config");
  const cfg = el ? JSON.parse(el.textContent) : {};
  const ask = cfg.confirm || "Delete the template “{name}”? Campaigns already sent from it are kept.";
  document.querySelectorAll("form.template-delete").forEach((form) => {
    form.addEventListener("submit", (ev) => {
      if (!window.confirm(ask.replace("{name}", form.dataset.name || ""))) {
        ev.preventDefault();
      }
    });
  });
})();
