/* CAP gateway keys: revoking a key asks first (a dialog naming the key). */
(function () {
  "use strict";
  const dialog = document.getElementById("revoke-dialog");
  if (!dialog) return;
  const go = document.getElementById("revoke-go");
  const cfgEl = document.getElementById("gateway-config");
  const words = cfgEl ? JSON.parse(cfgEl.textContent) : {};
  const name = dialog.querySelector('[data-role="key-name"]');
  let pending = null;
  document.querySelectorAll("form[data-revoke]").forEach((form) => {
    form.addEventListener("submit", (ev) => {
      if (form.dataset.confirmed) return;
      ev.preventDefault();
      pending = form;
      name.textContent = form.dataset.keyName || words.this_key || "this key";
      dialog.showModal();
      dialog.querySelector("[data-close]").focus();
    });
  });
  dialog.querySelectorAll("[data-close]").forEach((b) => b.addEventListener("click", () => dialog.close()));
  go.addEventListener("click", () => {
    if (!pending) return;
    pending.dataset.confirmed = "1";
    go.disabled = true;
    pending.submit();
  });
})();
