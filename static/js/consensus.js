/*
 * Consensus — small, optional enhancements. Every page works without this file and
 * without htmx; nothing here is needed for correctness.
 *
 *  - focus the error summary (or, after an htmx-boosted navigation, <main>) so keyboard
 *    and screen-reader users land where the page changed;
 *  - confirm before submitting a form or button marked data-confirm="question";
 *  - error summary links focus the field they point to (radio groups: the first option);
 *  - keep the X-CSRFToken header fresh for htmx requests (the token on <body> is not
 *    replaced by boosted navigation, so read the one rendered in the current page);
 *  - let htmx swap error pages for boosted navigation (so a 404/403/500 page shows
 *    instead of nothing), and show a short message when a partial update fails;
 *  - never let htmx boost a download link (a[download]).
 *
 * No inline scripts, no eval: compatible with the Content-Security-Policy.
 */
(function () {
  "use strict";

  function focusTarget(root) {
    var scope = root || document;
    var summary = scope.querySelector("[data-error-summary]");
    if (summary) {
      summary.focus();
      return true;
    }
    return false;
  }

  function focusMain() {
    var main = document.getElementById("main");
    if (main) {
      main.focus({ preventScroll: true });
    }
  }

  /* Confirmation for destructive actions: <form data-confirm="…"> or
     <button data-confirm="…">. Runs in the capture phase so a cancelled submit never
     reaches htmx's boosted-form handler. */
  document.addEventListener(
    "submit",
    function (event) {
      var form = event.target;
      if (!(form instanceof HTMLFormElement)) {
        return;
      }
      var submitter = event.submitter;
      var question =
        (submitter && submitter.getAttribute("data-confirm")) || form.getAttribute("data-confirm");
      if (question && !window.confirm(question)) {
        event.preventDefault();
        event.stopImmediatePropagation();
      }
    },
    true
  );

  /* Error summary links: focus the field itself (for a group of radios: its first option)
     and scroll so that its label or legend is visible too. */
  document.addEventListener("click", function (event) {
    var link = event.target instanceof Element ? event.target.closest("[data-error-summary] a[href^='#']") : null;
    if (!link) {
      return;
    }
    var target = document.getElementById(decodeURIComponent(link.getAttribute("href").slice(1)));
    if (!target) {
      return;
    }
    var control = target.matches("input, select, textarea, button")
      ? target
      : target.querySelector("input:not([type=hidden]), select, textarea");
    if (!control) {
      return;
    }
    event.preventDefault();
    var fieldset = control.closest("fieldset");
    var label = (fieldset && fieldset.querySelector("legend")) ||
      document.querySelector("label[for='" + CSS.escape(control.id) + "']") || control;
    label.scrollIntoView();
    control.focus({ preventScroll: true });
  });

  /* Download links must be real navigations, not boosted AJAX requests. */
  document.addEventListener(
    "click",
    function (event) {
      var link = event.target instanceof Element ? event.target.closest("a[download]") : null;
      if (link) {
        event.stopPropagation();
      }
    },
    true
  );

  function onReady() {
    focusTarget(document);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", onReady);
  } else {
    onReady();
  }

  /* Everything below only matters when htmx is present. */
  document.addEventListener("htmx:configRequest", function (event) {
    var input = document.querySelector("#language-switch input[name='csrf_token']") ||
      document.querySelector("input[name='csrf_token']");
    if (input && input.value) {
      event.detail.headers["X-CSRFToken"] = input.value;
    }
  });

  document.addEventListener("htmx:beforeSwap", function (event) {
    var detail = event.detail;
    var status = detail.xhr ? detail.xhr.status : 0;
    if (status >= 400 && detail.boosted) {
      /* A boosted navigation that ends on an error page should show that page. */
      detail.shouldSwap = true;
      detail.isError = false;
    }
  });

  document.addEventListener("htmx:afterSettle", function (event) {
    var detail = event.detail || {};
    var target = detail.target || event.target;
    if (detail.boosted) {
      if (!focusTarget(document)) {
        focusMain();
      }
    } else if (target instanceof Element) {
      focusTarget(target);
    }
  });

  function showRequestProblem() {
    var main = document.getElementById("main");
    var message = document.body.getAttribute("data-request-failed-message");
    if (!main || !message || document.getElementById("c-request-problem")) {
      return;
    }
    var box = document.createElement("div");
    box.id = "c-request-problem";
    box.className = "utrecht-alert utrecht-alert--error";
    box.setAttribute("role", "alert");
    var content = document.createElement("div");
    content.className = "utrecht-alert__content";
    var text = document.createElement("p");
    text.textContent = message;
    content.appendChild(text);
    box.appendChild(content);
    main.insertBefore(box, main.firstChild);
  }

  document.addEventListener("htmx:responseError", function (event) {
    if (!(event.detail && event.detail.boosted)) {
      showRequestProblem();
    }
  });
  document.addEventListener("htmx:sendError", showRequestProblem);
})();
