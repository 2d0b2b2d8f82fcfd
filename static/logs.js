// The Logs page: an EventSource on /api/apps/{app}/logs whose ids are
// journal cursors, so a dropped connection, a pause or a restart of opsdeck
// resumes exactly where it stopped. Lines are colour-coded by priority and
// timed in UTC, like every time opsdeck shows; the page keeps at most MAX
// lines.
(function () {
  "use strict";
  var MAX = 5000;
  var PRIORITIES = ["emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"];
  var form = document.getElementById("log-filter");
  if (!form) {
    return;
  }
  var app = form.getAttribute("data-app");
  var backfill = form.getAttribute("data-backfill");
  var lines = document.getElementById("log-lines");
  var status = document.getElementById("log-status");
  var follow = document.getElementById("log-follow");
  var pause = document.getElementById("log-pause");
  var earlier = document.getElementById("log-earlier");
  var download = document.getElementById("log-download");
  var command = document.getElementById("log-command");
  var base = "/api/apps/" + encodeURIComponent(app) + "/logs";
  var source = null;
  var first = null; // cursor of the oldest line shown
  var last = null; // cursor of the newest line shown
  var paused = false;

  function params(extra) {
    var q = new URLSearchParams();
    ["unit", "priority", "grep"].forEach(function (name) {
      var value = form.elements[name].value;
      if (value) {
        q.set(name, value);
      }
    });
    Object.keys(extra || {}).forEach(function (k) {
      if (extra[k] !== null && extra[k] !== undefined) {
        q.set(k, extra[k]);
      }
    });
    return q;
  }

  // The Since/Until fields are UTC, like every time opsdeck shows.
  function seconds(name) {
    var value = form.elements[name].value;
    return value ? Math.floor(Date.parse(value + "Z") / 1000) : null;
  }

  // A file's lines carry their own time and level, if any: opsdeck only
  // knows when it read them, and gives every one priority 6. So for a file
  // the read time is a tooltip, the level comes from the line's words, and
  // the source shows only when several are mixed.
  var LEVELS = [[/\b(EMERG|ALERT|CRIT(ICAL)?|FATAL|PANIC)\b/, 2], [/\bERR(OR)?\b/, 3], [/\bWARN(ING)?\b/, 4]];

  function level(message) {
    for (var i = 0; i < LEVELS.length; i++) {
      if (LEVELS[i][0].test(message)) {
        return LEVELS[i][1];
      }
    }
    return 6;
  }

  function line(entry) {
    var file = entry.u.charAt(0) === "/";
    var div = document.createElement("div");
    div.className = "log-line p" + (file ? level(entry.m) : entry.p);
    div.setAttribute("data-cursor", entry.c);
    var at = new Date(entry.t / 1000);
    if (file) {
      div.title = "read at " + at.toISOString();
    } else {
      var time = document.createElement("time");
      time.dateTime = at.toISOString();
      time.title = at.toISOString();
      time.textContent = at.toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
      div.appendChild(time);
      div.appendChild(document.createTextNode(" "));
    }
    if (!form.elements.unit.value) {
      var unit = document.createElement("span");
      unit.className = "log-unit";
      unit.textContent = entry.u;
      div.appendChild(unit);
      div.appendChild(document.createTextNode(" "));
    }
    if (!file) {
      var prio = document.createElement("span");
      prio.className = "log-prio";
      prio.textContent = PRIORITIES[entry.p] || "";
      div.appendChild(prio);
      div.appendChild(document.createTextNode(" "));
    }
    var msg = document.createElement("span");
    msg.className = "log-msg";
    msg.textContent = entry.m;
    div.appendChild(msg);
    return div;
  }

  function note(text) {
    var div = document.createElement("div");
    div.className = "log-line log-note";
    div.textContent = text;
    lines.appendChild(div);
  }

  function append(entry) {
    lines.appendChild(line(entry));
    last = entry.c;
    if (!first) {
      first = entry.c;
    }
    while (lines.childElementCount > MAX) {
      lines.removeChild(lines.firstElementChild);
      var top = lines.querySelector("[data-cursor]");
      first = top ? top.getAttribute("data-cursor") : null;
    }
    if (follow.checked) {
      lines.scrollTop = lines.scrollHeight;
      window.scrollTo(0, document.body.scrollHeight);
    }
  }

  function connect() {
    if (source) {
      source.close();
    }
    var q = last ? params({ after: last }) : params({ backfill: backfill });
    source = new EventSource(base + "?" + q.toString());
    source.onopen = function () {
      status.textContent = "live";
    };
    source.onmessage = function (event) {
      append(JSON.parse(event.data));
    };
    // The command for what is shown, to copy into a terminal: the server
    // writes it for the filters it was asked for.
    source.addEventListener("command", function (event) {
      command.textContent = JSON.parse(event.data);
    });
    source.addEventListener("skipped", function (event) {
      note(JSON.parse(event.data).text);
    });
    source.addEventListener("ended", function (event) {
      status.textContent = "the follow stopped (" + JSON.parse(event.data).why + "); reconnecting…";
    });
    source.onerror = function () {
      // EventSource reconnects by itself, sending the last cursor.
      status.textContent = paused ? "paused" : "reconnecting…";
    };
  }

  function restart() {
    lines.textContent = "";
    first = null;
    last = null;
    var q = params({ since: seconds("since"), until: seconds("until") });
    download.href = base + "/download?" + q.toString();
    // Paused, nothing is shown yet: the command comes with the stream.
    command.textContent = paused ? "(resume to see the command for these filters)" : "";
    if (!paused) {
      connect();
    }
  }

  // A file source has neither priorities nor times: those fields rest.
  function fileSource() {
    var picked = form.elements.unit.selectedOptions[0];
    return picked && picked.hasAttribute("data-file") ? picked.value : null;
  }

  function sourceChanged() {
    var file = fileSource() !== null;
    ["priority", "since", "until"].forEach(function (name) {
      form.elements[name].disabled = file;
      if (file) {
        form.elements[name].value = "";
      }
    });
  }

  form.elements.unit.addEventListener("change", sourceChanged);
  sourceChanged();

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    restart();
  });

  pause.addEventListener("click", function () {
    paused = !paused;
    pause.setAttribute("aria-pressed", paused ? "true" : "false");
    pause.textContent = paused ? "Resume" : "Pause";
    if (paused) {
      if (source) {
        source.close();
        source = null;
      }
      status.textContent = "paused";
    } else {
      connect(); // from the last cursor: nothing written meanwhile is lost
    }
  });

  earlier.addEventListener("click", function () {
    var q = params({ before: first, lines: backfill });
    fetch(base + "/earlier?" + q.toString(), { credentials: "same-origin" })
      .then(function (res) {
        if (!res.ok) {
          return res.text().then(function (t) { throw new Error(t); });
        }
        return res.json();
      })
      .then(function (body) {
        var at = lines.firstChild;
        body.entries.forEach(function (entry) {
          lines.insertBefore(line(entry), at);
        });
        if (body.entries.length) {
          first = body.entries[0].c;
        } else {
          earlier.disabled = true;
          earlier.textContent = "No earlier lines";
        }
      })
      .catch(function (e) {
        status.textContent = "load earlier failed: " + e.message;
      });
  });

  restart();
})();
