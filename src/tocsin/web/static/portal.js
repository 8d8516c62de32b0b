// The citizen portal's only script: solves the registration form's proof of work
// (hashcash, subscribers/challenge.py) so that the code is sent without the no-script
// wait. SHA-256(challenge + ":" + n) must start with `difficulty` zero bits.
(function () {
  "use strict";
  var form = document.getElementById("code-form");
  if (!form || !window.crypto || !window.crypto.subtle || !window.TextEncoder) { return; }
  var challenge = form.querySelector("input[name=challenge]").value;
  var output = form.querySelector("input[name=solution]");
  var difficulty = parseInt(form.getAttribute("data-difficulty"), 10) || 0;
  var encoder = new TextEncoder();
  var done = false;
  var waiting = null;

  function zeroBits(bytes) {
    var bits = 0;
    for (var i = 0; i < bytes.length; i++) {
      if (bytes[i] === 0) { bits += 8; continue; }
      var b = bytes[i];
      while ((b & 0x80) === 0) { bits += 1; b <<= 1; }
      return bits;
    }
    return bits;
  }

  function search(start) {
    var tries = [];
    for (var n = start; n < start + 256; n++) {
      tries.push(window.crypto.subtle.digest("SHA-256", encoder.encode(challenge + ":" + n)));
    }
    return Promise.all(tries).then(function (digests) {
      for (var i = 0; i < digests.length; i++) {
        if (zeroBits(new Uint8Array(digests[i])) >= difficulty) { return start + i; }
      }
      return search(start + 256);
    });
  }

  search(0).then(function (n) {
    output.value = String(n);
    done = true;
    if (waiting) { waiting(); }
  });

  form.addEventListener("submit", function (event) {
    if (done) { return; }
    event.preventDefault();
    var button = form.querySelector("button[type=submit]");
    if (button) { button.setAttribute("aria-busy", "true"); }
    waiting = function () { form.submit(); };
  });
})();
