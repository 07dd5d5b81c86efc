// Live police inbox: new deliveries appear without reload. The browser's EventSource
// reconnects by itself and sends Last-Event-ID, from which the console resumes the
// notification service's stream; a row already on the page is never added twice, and is
// replaced only when its delivery comes again recalled.
(function () {
  "use strict";
  var body = document.querySelector("tbody[data-stream]");
  if (!body || !window.EventSource) { return; }
  var status = document.getElementById("live-status");
  var source = new EventSource(body.getAttribute("data-stream"));
  function say(text) { if (status) { status.textContent = text; } }
  source.addEventListener("open", function () { say("Live: nya leveranser visas direkt."); });
  source.addEventListener("error", function () { say("Anslutningen bröts; återansluter …"); });
  source.addEventListener("delivery", function (event) {
    var template = document.createElement("template");
    template.innerHTML = event.data.trim();
    var row = template.content.firstElementChild;
    if (!row || !row.id) { return; }
    var shown = document.getElementById(row.id);
    if (shown) {
      // The same delivery again: only a recall changes what the row says.
      if (row.getAttribute("data-recalled") === "true" && shown.getAttribute("data-recalled") !== "true") {
        shown.replaceWith(row);
        say("Återkallad: " + (row.getAttribute("data-label") || ""));
      }
      return;
    }
    var empty = document.getElementById("inga-leveranser");
    if (empty) { empty.remove(); }
    body.insertBefore(row, body.firstChild);
    say("Ny leverans: " + (row.getAttribute("data-label") || ""));
  });
  source.addEventListener("signed-out", function () {
    source.close();
    say("Din inloggning har gått ut. Ladda om sidan och logga in igen.");
  });
})();
