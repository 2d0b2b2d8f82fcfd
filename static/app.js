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

  // <time datetime="…" title="2026-12-06 02:25:57 UTC">3 min ago</time>
  // is written by the server (web/page.rs `relative`, the one rule); a page
  // left open asks the server for the words again (GET /times/ago), so it
  // does not read as it did an hour ago. The UTC time stays on hover.
  function refreshTimes(root) {
    var found = root.querySelectorAll ? root.querySelectorAll("time[datetime][title]") : [];
    var times = Array.prototype.slice.call(found, 0, 500);
    if (!times.length) {
      return;
    }
    var at = times.map(function (time) {
      return time.getAttribute("datetime");
    });
    fetch("/times/ago?at=" + encodeURIComponent(at.join(",")), {
      credentials: "same-origin",
      headers: { accept: "application/json" },
    })
      .then(function (res) {
        return res.ok ? res.json() : null;
      })
      .then(function (words) {
        if (!words || words.length !== times.length) {
          return;
        }
        for (var i = 0; i < times.length; i++) {
          times[i].textContent = words[i];
        }
      })
      .catch(function () {});
  }

  window.setInterval(function () {
    refreshTimes(document);
  }, 30000);

  // The job page: the output scrolls in its own box and follows its tail,
  // so the state and Cancel stay in view; scrolling up pauses following,
  // scrolling back to the end (or the checkbox) resumes it. A running
  // job's clock ticks every second between the server's refreshes.
  var output = document.getElementById("output");
  var follow = document.getElementById("output-follow");
  if (output && follow) {
    var atEnd = function () {
      return output.scrollHeight - output.scrollTop - output.clientHeight < 24;
    };
    new MutationObserver(function () {
      if (follow.checked) {
        output.scrollTop = output.scrollHeight;
      }
    }).observe(output, { childList: true, characterData: true, subtree: true });
    output.addEventListener("scroll", function () {
      follow.checked = atEnd();
    });
    follow.addEventListener("change", function () {
      if (follow.checked) {
        output.scrollTop = output.scrollHeight;
      }
    });
  }

  // The server's rule for durations (web/page.rs `span`), for a clock
  // that ticks.
  function clock(ms) {
    var s = Math.max(0, Math.floor(ms / 1000));
    var two = function (n) { return String(n).padStart(2, "0"); };
    if (s < 60) return (Math.max(0, ms) / 1000).toFixed(1) + "s";
    if (s < 3600) return Math.floor(s / 60) + "m " + two(s % 60) + "s";
    if (s < 86400) return Math.floor(s / 3600) + "h " + two(Math.floor(s / 60) % 60) + "m";
    return Math.floor(s / 86400) + "d " + two(Math.floor(s / 3600) % 24) + "h";
  }
  window.setInterval(function () {
    var running = document.querySelectorAll(".elapsed[data-since]");
    for (var i = 0; i < running.length; i++) {
      var since = Date.parse(running[i].getAttribute("data-since"));
      if (!isNaN(since)) {
        running[i].textContent = clock(Date.now() - since);
      }
    }
  }, 1000);

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
  // The sentence goes where the answer would have gone (a bad ref's
  // problem replaces the old "what ships" and its Deploy button), so it
  // shows next to the click; the banner is for requests with no target.
  document.addEventListener("htmx:responseError", function (event) {
    var xhr = event.detail.xhr;
    var message = (xhr && xhr.responseText) || "The request failed.";
    var target = event.detail.target;
    if (target && target !== document.body && target.id) {
      var problem = document.createElement("p");
      problem.className = "problem";
      problem.setAttribute("role", "alert");
      problem.textContent = message;
      target.replaceChildren(problem);
      return;
    }
    show(message);
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
