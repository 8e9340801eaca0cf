// Recording from the phone's microphone (MediaRecorder). The recording is put into the form's
// file input, so the form uploads it like a chosen file (webm, ogg or mp4, as the browser
// records); the server checks it and shows it, to listen to, for confirmation before anything
// is sent (the content security policy allows media from the server only, so no local preview).
// Without MediaRecorder (or without JavaScript) the file input alone stays: a person can pick
// a recording made with the phone's own recorder app.
(function () {
  "use strict";
  const box = document.getElementById("recorder");
  const input = document.getElementById("recording");
  if (!box || !input) return;
  const supported =
    window.MediaRecorder &&
    navigator.mediaDevices &&
    navigator.mediaDevices.getUserMedia &&
    typeof DataTransfer === "function";
  if (!supported) return;

  const part = (name) => box.querySelector(`[data-record="${name}"]`);
  const start = part("start");
  const stop = part("stop");
  const status = part("status");
  const timer = part("timer");
  const maxSeconds = Number(box.dataset.maxSeconds) || 300;
  const maxBytes = Number(box.dataset.maxBytes) || 0;
  const types = ["audio/webm;codecs=opus", "audio/ogg;codecs=opus", "audio/mp4", "audio/webm"];
  const mimeType = types.find((type) => MediaRecorder.isTypeSupported(type)) || "";
  let recorder = null;
  let ticker = 0;
  let limit = 0;
  box.hidden = false;

  const clock = (seconds) => `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, "0")}`;
  const extension = (type) => (type.includes("ogg") ? "ogg" : type.includes("mp4") ? "m4a" : "webm");

  function finish(chunks, stream) {
    for (const track of stream.getTracks()) track.stop();
    clearInterval(ticker);
    clearTimeout(limit);
    start.hidden = false;
    stop.hidden = true;
    const type = (recorder && recorder.mimeType) || mimeType || "audio/webm";
    const blob = new Blob(chunks, { type });
    if (maxBytes && blob.size > maxBytes) {
      status.textContent = box.dataset.msgTooLarge;
      return;
    }
    const file = new File([blob], `ghi-am.${extension(type)}`, { type });
    const transfer = new DataTransfer();
    transfer.items.add(file);
    input.files = transfer.files;
    status.textContent = box.dataset.msgReady;
  }

  start.addEventListener("click", async () => {
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    } catch (error) {
      status.textContent = box.dataset.msgDenied;
      return;
    }
    const chunks = [];
    const options = { audioBitsPerSecond: 32000 };
    if (mimeType) options.mimeType = mimeType;
    recorder = new MediaRecorder(stream, options);
    recorder.addEventListener("dataavailable", (event) => {
      if (event.data && event.data.size) chunks.push(event.data);
    });
    recorder.addEventListener("stop", () => finish(chunks, stream));
    recorder.start(1000);
    const began = Date.now();
    start.hidden = true;
    stop.hidden = false;
    status.textContent = box.dataset.msgRecording;
    timer.textContent = clock(0);
    ticker = setInterval(() => {
      timer.textContent = clock(Math.floor((Date.now() - began) / 1000));
    }, 500);
    limit = setTimeout(() => recorder && recorder.state === "recording" && recorder.stop(), maxSeconds * 1000);
    stop.focus();
  });

  stop.addEventListener("click", () => {
    if (recorder && recorder.state === "recording") recorder.stop();
  });
})();
