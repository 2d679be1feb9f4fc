// Dashboard behaviour without inline script (the CSP forbids it): confirmations, printing,
// and refreshing parts of pages (new unanswered questions, campaign progress) without reloading.
(function () {
  "use strict";

  document.addEventListener("click", function (event) {
    var target = event.target.closest("[data-confirm]");
    if (target && !window.confirm(target.getAttribute("data-confirm"))) {
      event.preventDefault();
    }
    if (event.target.closest("[data-print]")) {
      window.print();
    }
  });

  // Any element with data-refresh="<url>" is replaced by that URL's HTML every data-every seconds
  // (the unanswered list, a campaign's progress), unless the user is working inside it.
  function autoRefresh(box) {
    var url = box.getAttribute("data-refresh");
    var every = parseInt(box.getAttribute("data-every") || "20", 10) * 1000;
    var busy = false;

    function userIsWorking() {
      var active = document.activeElement;
      return active && box.contains(active) && /INPUT|SELECT|TEXTAREA|BUTTON/.test(active.tagName);
    }

    function refresh() {
      if (busy || document.hidden || userIsWorking()) { return; }
      busy = true;
      fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } })
        .then(function (r) { return r.ok && !r.redirected ? r.text() : null; })
        .then(function (html) {
          if (html === null || userIsWorking()) { return; }
          var doc = new DOMParser().parseFromString(html, "text/html");
          var fresh = doc.body;
          if (fresh && fresh.innerHTML.trim() !== box.innerHTML.trim()) {
            box.replaceChildren.apply(box, Array.prototype.slice.call(fresh.childNodes));
          }
        })
        .catch(function () { /* offline for a moment: try again next time */ })
        .then(function () { busy = false; });
    }

    window.setInterval(refresh, every);
  }

  Array.prototype.forEach.call(document.querySelectorAll("[data-refresh]"), autoRefresh);
})();
