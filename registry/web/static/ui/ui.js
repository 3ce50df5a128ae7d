// The web UI's only script of its own: copy buttons, and confirmations in a <dialog>.
// Every page works without it (a confirmation is then a page of its own).
(function () {
  "use strict";
  function ready() {
    document.querySelectorAll("button[data-copy]").forEach(function (b) { b.hidden = !navigator.clipboard; });
  }
  document.addEventListener("DOMContentLoaded", ready);
  document.addEventListener("htmx:afterSettle", ready);

  document.addEventListener("click", function (event) {
    var copy = event.target.closest("button[data-copy]");
    if (copy) {
      var source = document.getElementById(copy.dataset.copy);
      navigator.clipboard.writeText(source.innerText.trim()).then(function () {
        var label = copy.firstChild.nodeValue;
        copy.firstChild.nodeValue = "Copied";
        setTimeout(function () { copy.firstChild.nodeValue = label; }, 1500);
      });
      return;
    }
    var dialog = document.getElementById("confirm-dialog");
    var close = event.target.closest("[data-close]");
    if (close && dialog && dialog.open) {
      event.preventDefault();
      dialog.close();
      return;
    }
    var link = event.target.closest("a[data-confirm]");
    if (!link || !dialog || typeof dialog.showModal !== "function" || event.ctrlKey || event.metaKey) return;
    event.preventDefault();
    fetch(link.href, { credentials: "same-origin", headers: { "HX-Request": "true" } })
      .then(function (r) { return r.text(); })
      .then(function (html) {
        var part = new DOMParser().parseFromString(html, "text/html").getElementById("confirm");
        if (!part) { window.location.href = link.href; return; }
        var slot = document.getElementById("dialog-slot");
        slot.replaceChildren(document.importNode(part, true));
        dialog.setAttribute("aria-labelledby", "confirm-h");
        dialog.showModal();
        var first = slot.querySelector("input:not([type=hidden]), button[type=submit]");
        if (first) first.focus();
        dialog.addEventListener("close", function () { link.focus(); }, { once: true });
      })
      .catch(function () { window.location.href = link.href; });
  });
})();
