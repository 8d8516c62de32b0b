/* Tocsin templates list: deleting a template asks first (a prepared scenario is work). */
(function () {
  "use strict";
  document.querySelectorAll("form.template-delete").forEach((form) => {
    form.addEventListener("submit", (ev) => {
      const name = form.dataset.name || "this template";
      if (!window.confirm(`Delete the template “${name}”? Campaigns already sent from it are kept.`)) {
        ev.preventDefault();
      }
    });
  });
})();
