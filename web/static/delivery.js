// Live delivery: polls the broadcast's status every 2 s until every receiver has answered.
(function () {
  "use strict";
  const table = document.getElementById("deliveries");
  if (!table) return;
  const labels = JSON.parse(document.getElementById("state-labels").textContent);
  const done = new Set(["finished", "partial", "failed", "cancelled"]);
  const time = (iso) => (iso ? new Date(iso).toLocaleTimeString("vi-VN", { timeZone: "Asia/Ho_Chi_Minh" }) : "");
  let polls = 0;
  async function poll() {
    polls += 1;
    const response = await fetch(table.dataset.statusUrl, { credentials: "same-origin" });
    if (!response.ok) return;
    const data = await response.json();
    document.getElementById("status").textContent = labels[data.status] || data.status;
    for (const d of data.deliveries) {
      const row = table.querySelector(`tr[data-device="${CSS.escape(d.device)}"]`);
      if (!row) continue;
      row.querySelector(".state").textContent = labels[d.state] || d.state;
      row.querySelector(".started").textContent = time(d.started_at);
      row.querySelector(".finished").textContent = time(d.finished_at);
    }
    if (!done.has(data.status) && polls < 900) setTimeout(poll, 2000);
  }
  poll();
})();
