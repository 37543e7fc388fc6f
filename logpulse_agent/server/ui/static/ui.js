// Fleet pages: refresh live regions without a full reload, and copy buttons.
// Served by the server itself (no CDN, no build step); the pages work without it, only
// staying still until reloaded.
"use strict";

(function () {
  function refresh(region) {
    var url = region.getAttribute("data-refresh");
    var seconds = parseFloat(region.getAttribute("data-interval") || "5");
    var busy = false;

    function tick() {
      if (busy || document.hidden) {
        return;
      }
      busy = true;
      // Keep what the operator ticked and where the keyboard focus is across the swap.
      var ticked = {};
      region.querySelectorAll("input[type=checkbox]:checked").forEach(function (box) {
        ticked[box.value] = true;
      });
      var focused = document.activeElement;
      var focusKey = focused && region.contains(focused) ? focused.getAttribute("value") || focused.getAttribute("href") : null;
      fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } })
        .then(function (response) {
          if (response.status === 401) {
            region.setAttribute("data-stale", "session");
            stop();
            showStale(region, "Your session has ended: sign in again to see live data.");
            return null;
          }
          return response.ok ? response.text() : null;
        })
        .then(function (html) {
          if (html === null) {
            return;
          }
          region.innerHTML = html;
          region.querySelectorAll("input[type=checkbox]").forEach(function (box) {
            if (ticked[box.value]) {
              box.checked = true;
            }
          });
          if (focusKey) {
            var again = region.querySelector('[value="' + CSS.escape(focusKey) + '"], [href="' + CSS.escape(focusKey) + '"]');
            if (again) {
              again.focus();
            }
          }
        })
        .catch(function () { /* the server is away: try again at the next tick */ })
        .finally(function () {
          busy = false;
        });
    }

    var timer = window.setInterval(tick, Math.max(1, seconds) * 1000);
    function stop() {
      window.clearInterval(timer);
    }
  }

  function showStale(region, text) {
    var note = document.createElement("p");
    note.className = "error";
    note.setAttribute("role", "alert");
    note.textContent = text;
    region.parentNode.insertBefore(note, region);
  }

  function copyButtons() {
    document.querySelectorAll("button[data-copy]").forEach(function (button) {
      button.addEventListener("click", function () {
        var source = document.getElementById(button.getAttribute("data-copy"));
        var status = document.querySelector(".copied");
        var text = source ? source.textContent.trim() : "";
        function said(message) {
          if (status) {
            status.textContent = message;
          }
        }
        function selectIt() {
          var range = document.createRange();
          range.selectNodeContents(source);
          var selection = window.getSelection();
          selection.removeAllRanges();
          selection.addRange(range);
          said("Selected: press Ctrl+C to copy.");
        }
        if (navigator.clipboard && window.isSecureContext) {
          navigator.clipboard.writeText(text).then(function () { said("Copied."); }, selectIt);
        } else {
          selectIt();
        }
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-refresh]").forEach(refresh);
    copyButtons();
  });
})();
