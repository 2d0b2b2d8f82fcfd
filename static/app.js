// opsdeck's only script besides htmx. The CSP forbids inline script, so
// every behaviour a page needs is declared with data- attributes and wired
// up here.
(function () {
  "use strict";

  // Ask before a form with data-confirm="question" is sent. Forms that htmx
  // sends are asked through the htmx:confirm event below instead.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute && form.getAttribute("data-confirm");
    if (!question || sentByHtmx(form)) {
      return;
    }
    if (!window.confirm(question)) {
      event.preventDefault();
    }
  }, true);

  document.addEventListener("htmx:confirm", function (event) {
    var elt = event.detail.elt;
    var question = elt.getAttribute("data-confirm") ||
      (elt.form && elt.form.getAttribute("data-confirm"));
    if (!question) {
      return;
    }
    event.preventDefault();
    if (window.confirm(question)) {
      event.detail.issueRequest(true);
    }
  });

  function sentByHtmx(form) {
    return form.hasAttribute("hx-post") || form.hasAttribute("hx-put") ||
      form.hasAttribute("hx-delete") || !!form.closest("[hx-boost=true]");
  }

  // <time datetime="2026-12-03T07:48:38Z">…</time> is rendered in UTC by
  // the server; show it in the reader's own time zone, keeping UTC as the
  // tooltip.
  function localTimes(root) {
    var times = root.querySelectorAll ? root.querySelectorAll("time[datetime]") : [];
    for (var i = 0; i < times.length; i++) {
      var el = times[i];
      if (el.hasAttribute("data-local")) {
        continue;
      }
      var at = new Date(el.getAttribute("datetime"));
      if (isNaN(at.getTime())) {
        continue;
      }
      el.title = at.toISOString();
      el.textContent = at.toLocaleString();
      el.setAttribute("data-local", "");
    }
  }

  localTimes(document);
  document.addEventListener("htmx:load", function (event) {
    localTimes(event.target);
  });

  // htmx does not swap error responses; the server sends htmx a plain
  // sentence, shown here so a refused click never fails silently.
  var flash = document.getElementById("flash");
  function show(message) {
    if (!flash) {
      window.alert(message);
      return;
    }
    flash.textContent = message;
    flash.hidden = false;
  }
  document.addEventListener("htmx:responseError", function (event) {
    var xhr = event.detail.xhr;
    show((xhr && xhr.responseText) || "The request failed.");
  });
  document.addEventListener("htmx:sendError", function () {
    show("opsdeck cannot be reached; check your connection and try again.");
  });
  if (flash) {
    flash.addEventListener("click", function () {
      flash.hidden = true;
    });
  }
})();
