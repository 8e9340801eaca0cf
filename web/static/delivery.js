// Live delivery per loudspeaker cluster. Server-Sent Events (/announce/<id>/events): a "state"
// event carries the whole delivery view, "end" closes the stream (final, or a new stream is
// opened after the server's time limit; EventSource itself reconnects after a network error).
// Without EventSource, /announce/<id>/status.json is polled every 2 s. Without JavaScript,
// reloading the page shows the state.
(function () {
  "use strict";
  const list = document.getElementById("deliveries");
  if (!list) return;
  const labels = JSON.parse(document.getElementById("state-labels").textContent);
  const summary = document.getElementById("summary");
  const status = document.getElementById("status");
  const time = (iso) =>
    iso ? new Date(iso).toLocaleTimeString("vi-VN", { timeZone: "Asia/Ho_Chi_Minh", hour12: false }) : "";
  const fill = (pattern, values) => pattern.replace(/\{(\w+)\}/g, (whole, key) => String(values[key]));
  // the summary is a live region: rewritten only when its words change, so a screen reader
  // announces each real change once and nothing else
  const put = (element, text) => {
    if (element.textContent !== text) element.textContent = text;
  };

  function row(delivery) {
    let item = list.querySelector(`li[data-device="${CSS.escape(delivery.device)}"]`);
    if (!item) {
      item = document.createElement("li");
      item.dataset.device = delivery.device;
      for (const name of ["name", "zone", "state", "at"]) {
        const cell = document.createElement(name === "at" ? "time" : "span");
        cell.className = name;
        item.append(cell, " ");
      }
      list.append(item);
    }
    return item;
  }

  function render(progress) {
    if (status) put(status, labels[progress.status] || progress.status);
    // once it has ended nothing is left to stop: the "Dừng phát" form goes (a correction stays)
    const stop = document.getElementById("cancel-form");
    if (progress.ended && stop) {
      stop.remove();
      const heading = document.getElementById("stop-heading");
      if (heading) heading.textContent = heading.dataset.ended;
    }
    for (const delivery of progress.deliveries) {
      const item = row(delivery);
      item.className = `delivery state-${delivery.state}`;
      item.querySelector(".name").textContent = delivery.name;
      item.querySelector(".zone").textContent = delivery.zone || "";
      item.querySelector(".state").textContent = labels[delivery.state] || delivery.state;
      const at = item.querySelector(".at");
      at.textContent = time(delivery.at);
      if (delivery.at) at.setAttribute("datetime", delivery.at);
    }
    if (summary) {
      const counts = progress.counts || {};
      put(summary.querySelector(".done"), fill(summary.dataset.done, {
        done: counts.finished || 0,
        total: progress.total,
      }));
      const extra = (name) => (counts[name] ? ` · ${fill(summary.dataset[name], { count: counts[name] })}` : "");
      put(summary.querySelector(".failed"), extra("failed"));
      put(summary.querySelector(".stopped"), extra("stopped"));
    }
  }

  if (window.EventSource && list.dataset.eventsUrl) {
    let streams = 0;
    const connect = () => {
      streams += 1;
      const source = new EventSource(list.dataset.eventsUrl);
      source.addEventListener("state", (event) => render(JSON.parse(event.data)));
      source.addEventListener("end", (event) => {
        source.close();
        const end = JSON.parse(event.data);
        if (!end.final && streams < 30) setTimeout(connect, 1000);
      });
    };
    connect();
    return;
  }

  let polls = 0;
  async function poll() {
    polls += 1;
    const response = await fetch(list.dataset.statusUrl, { credentials: "same-origin" });
    if (!response.ok) return;
    const data = await response.json();
    render(data.progress);
    if (!data.progress.final && polls < 900) setTimeout(poll, 2000);
  }
  poll();
})();
