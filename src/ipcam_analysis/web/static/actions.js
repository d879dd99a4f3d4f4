// The dashboard's actions ("Not a Person", undo): a button with data-post sends its data-body
// as JSON with the header the server asks for (web/exceptions.py), then the page reloads.
// Without JavaScript the "Not a ..." buttons stay hidden: they need this script.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  for (const actions of document.querySelectorAll("[data-actions]")) actions.hidden = false;
  document.addEventListener("click", async (event) => {
    const button = event.target.closest("button[data-post]");
    if (!button) return;
    const status = button.closest("[data-actions]").querySelector(".action-status");
    button.disabled = true;
    try {
      const response = await fetch(button.dataset.post, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-Requested-By": "ipcam-analysis" },
        body: button.dataset.body || "{}",
      });
      const answer = await response.json().catch(() => ({}));
      if (response.ok) {
        window.location.reload();
        return;
      }
      if (status) status.textContent = answer.error || `Failed (${response.status}).`;
    } catch (error) {
      if (status) status.textContent = `Failed: ${error}`;
    }
    button.disabled = false;
  });
});
