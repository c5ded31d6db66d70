// The status page's panel, fetched again every five seconds. A failed fetch (the console
// restarting, the network) keeps the last panel and says so; a redirect to the sign-in page
// (the session ended) reloads the page, which then shows the sign-in form.
"use strict";

(function () {
  const panel = document.getElementById("status-panel");
  if (!panel) {
    return;
  }
  const source = panel.dataset.source;
  const every = 5000;

  async function refresh() {
    try {
      const response = await fetch(source, { credentials: "same-origin", cache: "no-store" });
      if (response.redirected || response.status === 401) {
        window.location.reload();
        return;
      }
      if (response.ok) {
        panel.innerHTML = await response.text();
        panel.dataset.refreshedAt = new Date().toISOString();
      }
    } catch (error) {
      panel.dataset.refreshFailed = String(error);
    } finally {
      window.setTimeout(refresh, every);
    }
  }

  window.setTimeout(refresh, every);
})();
