// CloudSentinel dashboard: progressive enhancement over server-rendered pages. Every action is a
// plain form that works without this file; this adds the live stream, the theme switch,
// bulk selection, raw records on demand and a few keyboard shortcuts.
(function () {
  "use strict";
  var doc = document.documentElement;

  // ---- theme ----------------------------------------------------------------------------
  var themeBtn = document.getElementById("theme");
  if (themeBtn) {
    themeBtn.addEventListener("click", function () {
      var next = doc.getAttribute("data-theme") === "dark" ? "light" : "dark";
      doc.setAttribute("data-theme", next);
      document.cookie = "cs_theme=" + next + "; Path=/; Max-Age=31536000; SameSite=Strict";
      themeBtn.setAttribute("aria-pressed", next === "dark" ? "true" : "false");
    });
  }

  // ---- times in the browser's time zone, when the user chose that in the settings -----------
  // The server writes every time in UTC (`time.abs` written out, other `time`s as an age with the
  // written-out time as their title); this rewrites them in the browser's zone.
  var localZone = doc.getAttribute("data-tz") === "local";
  function pad(n) { return (n < 10 ? "0" : "") + n; }
  function localText(d) {
    var off = -d.getTimezoneOffset();
    var zone = "UTC" + (off >= 0 ? "+" : "-") + pad(Math.floor(Math.abs(off) / 60)) + (Math.abs(off) % 60 ? ":" + pad(Math.abs(off) % 60) : "");
    return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + " " +
      pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds()) + " " + zone;
  }
  function localTimes(root) {
    if (!localZone) return;
    root.querySelectorAll("time[datetime]").forEach(function (t) {
      var d = new Date(t.getAttribute("datetime"));
      if (isNaN(d.getTime())) return;
      if (t.classList.contains("abs")) t.textContent = localText(d);
      else t.title = localText(d);
    });
  }
  localTimes(document);
  var tzName = document.getElementById("browser-tz");
  if (tzName && window.Intl) {
    try { tzName.textContent = " (" + Intl.DateTimeFormat().resolvedOptions().timeZone + ")"; } catch (err) { /* no zone name */ }
  }

  // ---- bulk selection in the alert queue ------------------------------------------------
  function selection() {
    return Array.prototype.slice.call(document.querySelectorAll("input[name=id]:checked"));
  }
  function syncBulk() {
    var n = selection().length;
    var count = document.getElementById("selected-count");
    if (count) count.textContent = n ? n + " selected" : "none selected";
    document.querySelectorAll("[data-needs-selection]").forEach(function (b) { b.disabled = n === 0; });
  }
  document.addEventListener("change", function (e) {
    var t = e.target;
    if (t.id === "select-all") {
      document.querySelectorAll("input[name=id]").forEach(function (c) { c.checked = t.checked; });
    }
    if (t.name === "id" || t.id === "select-all") syncBulk();
  });
  syncBulk();

  // ---- confirm what cannot be undone ------------------------------------------------------
  document.addEventListener("submit", function (e) {
    var b = e.submitter;
    var msg = b && b.getAttribute("data-confirm");
    if (msg && !window.confirm(msg)) e.preventDefault();
  });

  // ---- raw records on demand -------------------------------------------------------------
  document.addEventListener("toggle", function (e) {
    var d = e.target;
    if (!d.matches || !d.matches("details[data-raw]") || !d.open || d.dataset.loaded) return;
    var pre = d.querySelector("pre");
    pre.textContent = "loading…";
    fetch(d.dataset.raw, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } })
      .then(function (r) { if (r.status === 401) { signIn(); } return r.text(); })
      .then(function (t) { pre.textContent = t; d.dataset.loaded = "1"; })
      .catch(function (err) { pre.textContent = "could not load: " + err; });
  }, true);

  // ---- keyboard ------------------------------------------------------------------------------
  var SHORTCUTS = [
    ["?", "show or hide this list"],
    ["/", "go to the search box"],
    ["j", "next row (alert, incident, event)"],
    ["k", "previous row"],
    ["Enter", "open the selected row"],
    ["Esc", "close this list"]
  ];
  var help = null;
  var helpFrom = null;
  function closeHelp() {
    if (!help || help.hidden) return;
    help.hidden = true;
    if (helpFrom && helpFrom.focus) helpFrom.focus();
  }
  function toggleHelp() {
    if (help && !help.hidden) { closeHelp(); return; }
    if (!help) {
      help = document.createElement("div");
      help.id = "help";
      help.className = "help";
      help.setAttribute("role", "dialog");
      help.setAttribute("aria-modal", "true");
      help.setAttribute("aria-labelledby", "help-title");
      var h = document.createElement("h2");
      h.id = "help-title";
      h.textContent = "Keyboard shortcuts";
      help.appendChild(h);
      var dl = document.createElement("dl");
      dl.className = "kv";
      SHORTCUTS.forEach(function (k) {
        var dt = document.createElement("dt");
        var kbd = document.createElement("kbd");
        kbd.className = "kbd";
        kbd.textContent = k[0];
        dt.appendChild(kbd);
        var dd = document.createElement("dd");
        dd.textContent = k[1];
        dl.appendChild(dt);
        dl.appendChild(dd);
      });
      help.appendChild(dl);
      var close = document.createElement("button");
      close.type = "button";
      close.id = "help-close";
      close.textContent = "Close";
      close.addEventListener("click", closeHelp);
      help.appendChild(close);
      document.body.appendChild(help);
    }
    helpFrom = document.activeElement;
    help.hidden = false;
    help.querySelector("#help-close").focus();
  }
  var keysBtn = document.getElementById("keys");
  if (keysBtn) keysBtn.addEventListener("click", toggleHelp);
  document.addEventListener("keydown", function (e) {
    if (e.key === "Escape" && help && !help.hidden) { e.preventDefault(); closeHelp(); return; }
    var tag = (e.target.tagName || "").toLowerCase();
    if (tag === "input" || tag === "textarea" || tag === "select" || e.ctrlKey || e.metaKey || e.altKey) return;
    if (e.key === "?") {
      e.preventDefault();
      toggleHelp();
    } else if (e.key === "/") {
      var q = document.querySelector("input[type=search]");
      if (q) { e.preventDefault(); q.focus(); q.select(); }
    } else if (e.key === "j" || e.key === "k") {
      var links = Array.prototype.slice.call(document.querySelectorAll("[data-row-link]"));
      if (!links.length) return;
      var i = links.indexOf(document.activeElement);
      i = e.key === "j" ? Math.min(links.length - 1, i + 1) : Math.max(0, i - 1);
      links.forEach(function (l) {
        var row = l.closest("tr, li, article");
        if (row) row.classList.remove("selected");
      });
      var row = links[i].closest("tr, li, article");
      if (row) { row.classList.add("selected"); row.scrollIntoView({ block: "nearest" }); }
      links[i].focus();
      e.preventDefault();
    }
  });

  function signIn() {
    location.href = "/ui/login?expired=1&next=" + encodeURIComponent(location.pathname + location.search);
  }

  // ---- live updates --------------------------------------------------------------------------
  var body = document.body;
  var liveMode = body.getAttribute("data-live");
  var indicator = document.getElementById("live");
  if (!liveMode || !window.EventSource) return;

  var toast = document.getElementById("toast");
  var toastTimer = null;
  function announce(text) {
    if (!toast) return;
    toast.textContent = text;
    toast.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(function () { toast.hidden = true; }, 6000);
  }

  var pending = null;
  var fresh = {};
  function refresh() {
    pending = null;
    fetch(location.href, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } })
      .then(function (r) {
        if (r.status === 401) { signIn(); throw new Error("signed out"); }
        return r.text();
      })
      .then(function (html) {
        var next = new DOMParser().parseFromString(html, "text/html");
        var checked = {};
        selection().forEach(function (c) { checked[c.value] = true; });
        document.querySelectorAll("[data-region]").forEach(function (old) {
          var repl = next.getElementById(old.id);
          if (repl) old.replaceWith(document.importNode(repl, true));
        });
        document.querySelectorAll("input[name=id]").forEach(function (c) {
          if (checked[c.value]) c.checked = true;
        });
        document.querySelectorAll("tr[data-alert]").forEach(function (tr) {
          if (fresh[tr.getAttribute("data-alert")]) tr.classList.add("fresh");
        });
        fresh = {};
        localTimes(document);
        syncBulk();
      })
      .catch(function () {});
  }

  // Browsers allow six connections per host over HTTP/1.1, and every open stream holds one: a
  // page that is left, or a tab that is hidden, gives its stream back (and catches up on return).
  var source = null;
  function disconnect() {
    if (source) { source.close(); source = null; }
    if (indicator) { indicator.classList.remove("on"); indicator.textContent = "Live updates: paused"; }
  }
  window.addEventListener("pagehide", disconnect);
  window.addEventListener("pageshow", function (e) { if (e.persisted && !source) { connect(); refresh(); } });
  document.addEventListener("visibilitychange", function () {
    if (document.hidden) disconnect();
    else if (!source) { connect(); refresh(); }
  });
  function connect() {
    source = new EventSource("/ui/live");
    source.addEventListener("open", function () { if (indicator) { indicator.classList.add("on"); indicator.textContent = "Live updates: on"; } });
    source.addEventListener("alert", function (e) {
      var a;
      try { a = JSON.parse(e.data); } catch (err) { return; }
      // One alert's page follows that alert only; the lists follow them all.
      var only = liveMode.indexOf("alert:") === 0 ? liveMode.slice(6) : null;
      if (only !== null && String(a.id) !== only && !a.lagged) return;
      if (a.new) {
        fresh[String(a.id)] = true;
        announce("New " + a.level + " alert: " + a.title + " — " + a.entity);
      } else if (only !== null) {
        announce("This alert was changed: " + a.status + (a.count ? ", " + a.count + " events" : ""));
      }
      if (!pending) pending = setTimeout(refresh, 400);
    });
    source.addEventListener("error", function () {
      if (!source) return;
      if (indicator) { indicator.classList.remove("on"); indicator.textContent = "Live updates: reconnecting"; }
      if (source.readyState === EventSource.CLOSED) {
        source = null;
        // The stream ends when the access token does; a plain request renews the session.
        fetch("/ui/session", { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } })
          .then(function (r) { if (r.status === 401) signIn(); else setTimeout(connect, 1000); })
          .catch(function () { setTimeout(connect, 5000); });
      }
    });
  }
  connect();

  // A region whose content changes without alerts (source health: lags, last polls) is also
  // fetched again every data-refresh seconds, while the page is shown.
  var timed = document.querySelector("[data-refresh]");
  if (timed) {
    var every = Math.max(5, parseInt(timed.getAttribute("data-refresh"), 10) || 30);
    setInterval(function () { if (source && !pending) refresh(); }, every * 1000);
  }
})();
