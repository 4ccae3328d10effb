// Passkeys (WebAuthn) for Consensus: registration on the account page, login without a
// password, the second factor, and re-authentication before a platform-held signature.
// A [data-passkey] block names its JSON endpoints (data-options-url, data-url) and carries
// the CSRF token (data-csrf); the server checks everything (consensus/web/passkeys.py).
// Without WebAuthn in the browser the blocks stay hidden; every other way in still works.
(function () {
  "use strict";

  function supported() {
    return !!(window.PublicKeyCredential &&
      PublicKeyCredential.parseCreationOptionsFromJSON &&
      PublicKeyCredential.parseRequestOptionsFromJSON);
  }

  function reveal(root) {
    if (!supported()) { return; }
    (root || document).querySelectorAll("[data-passkey][hidden]").forEach(function (block) {
      block.hidden = false;
    });
  }

  function post(url, csrf, body) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf },
      body: JSON.stringify(body || {})
    }).then(function (response) {
      return response.json().then(function (data) {
        if (!response.ok) { throw new Error(data.error || block_message); }
        return data;
      });
    });
  }

  var block_message = "";

  function run(block) {
    var status = block.querySelector("[data-passkey-status]");
    var csrf = block.getAttribute("data-csrf") || "";
    var kind = block.getAttribute("data-passkey");
    var nameField = block.querySelector("[data-passkey-name]");
    block_message = block.getAttribute("data-failed") || "";
    var name = nameField ? nameField.value.trim() : "";
    if (kind === "register" && !name) {
      status.textContent = block.getAttribute("data-name-missing") || "";
      nameField.focus();
      return;
    }
    status.textContent = block.getAttribute("data-working") || "";
    post(block.getAttribute("data-options-url"), csrf).then(function (options) {
      if (kind === "register") {
        var creation = PublicKeyCredential.parseCreationOptionsFromJSON(options.publicKey);
        return navigator.credentials.create({ publicKey: creation });
      }
      var request = PublicKeyCredential.parseRequestOptionsFromJSON(options.publicKey);
      return navigator.credentials.get({ publicKey: request });
    }).then(function (credential) {
      return post(block.getAttribute("data-url"), csrf, { credential: credential.toJSON(), name: name });
    }).then(function (answer) {
      window.location.assign(answer.redirect);
    }).catch(function (error) {
      var cancelled = error && (error.name === "NotAllowedError" || error.name === "AbortError");
      status.textContent = cancelled ? (block.getAttribute("data-cancelled") || "") :
        ((error && error.message) || block_message);
    });
  }

  document.addEventListener("click", function (event) {
    var start = event.target.closest && event.target.closest("[data-passkey-start]");
    if (!start) { return; }
    event.preventDefault();
    run(start.closest("[data-passkey]"));
  });
  document.addEventListener("DOMContentLoaded", function () { reveal(document); });
  document.addEventListener("htmx:load", function (event) { reveal(event.target); });
}());
