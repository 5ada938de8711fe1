// The admin's batch change page: progress refreshed from the status API every few seconds
// until the batch is finished (the batch page itself is the live view).
(function () {
  "use strict";
  const holder = document.getElementById("batch-progress");
  if (!holder) return;
  const bar = document.getElementById("batch-progress-bar");
  const text = document.getElementById("batch-progress-text");
  const EVERY_MS = 3000;

  function show(status) {
    const p = status.progress;
    bar.value = p.progress_percent;
    text.textContent = `${p.progress_percent} % · ${status.status} · ${p.succeeded} succeeded, ${p.failed} failed, ` +
      `${p.cancelled} cancelled, ${p.running} running, ${p.queued} queued of ${p.total}`;
  }

  async function refresh() {
    try {
      const response = await fetch(holder.dataset.statusUrl, { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (!response.ok) return;
      const status = await response.json();
      show(status);
      if (status.is_terminal) return;
    } catch (error) {
      // try again at the next tick
    }
    setTimeout(refresh, EVERY_MS);
  }

  setTimeout(refresh, EVERY_MS);
})();
