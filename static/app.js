// opsdeck's only script besides htmx. The CSP forbids inline script, so
// every behaviour a page needs is declared with data- attributes and wired
// up here.
(function () {
  "use strict";

  // A risky form carries its question in a hidden "ask" field and the
  // server lets it through only with confirmed=yes (without JavaScript it
  // answers with a confirmation page). Here the question is a dialog, and
  // a yes is sent along so that page is skipped.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var ask = form.elements && form.elements.namedItem("ask");
    if (!ask || !ask.value) {
      return;
    }
    if (!window.confirm(ask.value)) {
      event.preventDefault();
      return;
    }
    var yes = form.elements.namedItem("confirmed");
    if (!yes) {
      yes = document.createElement("input");
      yes.type = "hidden";
      yes.name = "confirmed";
      form.appendChild(yes);
    }
    yes.value = "yes";
  }, true);

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
