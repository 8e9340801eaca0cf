// Live broadcast (phát trực tiếp) from the browser's microphone. The microphone is asked for
// first, then the broadcast starts (POST /live/, JSON back) and what the MediaRecorder captures
// (Opus in WebM or Ogg) goes to the server a piece every quarter second, one request after the
// other, each with its offset in the whole feed so a piece sent again is taken once (a fetch
// cannot stream one long request body over HTTP/1.1). A level meter and an on-air light show it
// is working; "Kết thúc" stops the recorder, sends what is left and posts the end, whose answer
// is the broadcast's page. Until the loudspeakers have rung their chime (`speak_in_ms`) the light
// is amber and counts down: words said before reach the recording, not the villages. Without
// MediaRecorder the page says so and offers no button.
(function () {
  "use strict";
  const form = document.getElementById("live-form");
  const onAir = document.getElementById("live-on-air");
  if (!form || !onAir) return;
  const supported =
    window.MediaRecorder && navigator.mediaDevices && navigator.mediaDevices.getUserMedia && window.fetch;
  if (!supported) {
    document.getElementById("live-unsupported").hidden = false;
    return;
  }
  form.hidden = false; // hidden without a script: a broadcast nobody feeds must not start
  const csrf = form.querySelector('input[name="csrf_token"]').value;
  const error = document.getElementById("live-error");
  const status = document.getElementById("live-status");
  const timer = document.getElementById("live-timer");
  const level = document.getElementById("live-level");
  const startButton = document.getElementById("live-start");
  const types = ["audio/webm;codecs=opus", "audio/ogg;codecs=opus", "audio/webm"];
  const mimeType = types.find((type) => MediaRecorder.isTypeSupported(type)) || "";
  const PIECE_MS = 250;
  const RETRY_MS = 500;
  let stream = null;
  let recorder = null;
  let pieceUrl = "";
  let offset = 0;
  let sending = Promise.resolve();
  let ending = false;
  let ticker = 0;
  let limit = 0;
  let audio = null;
  let voiceAt = 0; // when the loudspeakers reach the voice: after their common start and the chime

  const chimeText = () =>
    form.dataset.msgChime.replace("{seconds}", String(Math.max(1, Math.ceil((voiceAt - Date.now()) / 1000))));

  const say = (text) => {
    error.textContent = text;
    error.hidden = !text;
  };
  const clock = (seconds) => `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, "0")}`;
  const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  async function send(blob) {
    const body = await blob.arrayBuffer();
    for (;;) {
      try {
        const response = await fetch(`${pieceUrl}?offset=${offset}`, {
          method: "POST",
          headers: { "X-CSRFToken": csrf, "Content-Type": blob.type || "application/octet-stream" },
          body,
          credentials: "same-origin",
        });
        if (response.ok) {
          offset += body.byteLength;
          if (!ending) status.textContent = voiceAt > Date.now() ? chimeText() : form.dataset.msgOnAir;
          return;
        }
        if (response.status !== 503 && response.status < 500) {
          const answer = await response.json().catch(() => ({}));
          status.textContent = answer.error || form.dataset.msgLost;
          return; // ended elsewhere, or refused: nothing more to send
        }
      } catch (failure) {
        // the network dropped: try again below
      }
      status.textContent = form.dataset.msgLost;
      await pause(RETRY_MS);
    }
  }

  function meter() {
    const context = new AudioContext();
    const analyser = context.createAnalyser();
    analyser.fftSize = 1024;
    context.createMediaStreamSource(stream).connect(analyser);
    const samples = new Float32Array(analyser.fftSize);
    const draw = () => {
      if (!audio) return;
      analyser.getFloatTimeDomainData(samples);
      let sum = 0;
      for (const sample of samples) sum += sample * sample;
      level.value = Math.min(1, Math.sqrt(sum / samples.length) * 4);
      requestAnimationFrame(draw);
    };
    audio = context;
    requestAnimationFrame(draw);
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    say("");
    startButton.disabled = true;
    try {
      stream = await navigator.mediaDevices.getUserMedia({
        audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
      });
    } catch (failure) {
      say(form.dataset.msgDenied);
      startButton.disabled = false;
      return;
    }
    say(form.dataset.msgStarting);
    let answer = {};
    let response = null;
    try {
      response = await fetch(form.action, {
        method: "POST",
        body: new FormData(form),
        headers: { "X-CSRFToken": csrf },
        credentials: "same-origin",
      });
      answer = await response.json();
    } catch (failure) {
      answer = { error: form.dataset.msgLost };
    }
    if (!response || response.status !== 201) {
      for (const track of stream.getTracks()) track.stop();
      say(answer.error || form.dataset.msgLost);
      startButton.disabled = false;
      return;
    }
    say("");
    pieceUrl = answer.piece_url;
    onAir.action = answer.end_url;
    const options = { audioBitsPerSecond: 32000 };
    if (mimeType) options.mimeType = mimeType;
    recorder = new MediaRecorder(stream, options);
    recorder.addEventListener("dataavailable", (piece) => {
      if (piece.data && piece.data.size) sending = sending.then(() => send(piece.data));
    });
    recorder.start(PIECE_MS);
    meter();
    form.hidden = true;
    onAir.hidden = false;
    voiceAt = Date.now() + (Number(answer.speak_in_ms) || 0);
    onAir.classList.add("chime"); // what is said before the chime ends is only in the recording
    status.textContent = chimeText();
    const began = Date.now();
    timer.textContent = clock(0);
    ticker = setInterval(() => {
      timer.textContent = clock(Math.floor((Date.now() - began) / 1000));
      if (ending || !onAir.classList.contains("chime")) return;
      if (Date.now() < voiceAt) {
        status.textContent = chimeText();
      } else {
        onAir.classList.replace("chime", "on");
        status.textContent = form.dataset.msgOnAir;
      }
    }, 250);
    const minutes = Number(form.elements.minutes.value) || 30;
    limit = setTimeout(() => onAir.requestSubmit(), minutes * 60 * 1000);
    document.getElementById("live-end").focus();
  });

  onAir.addEventListener("submit", async (event) => {
    if (ending) return; // the second pass: the real submit, after the last pieces went
    event.preventDefault();
    ending = true;
    status.textContent = form.dataset.msgEnding;
    onAir.classList.remove("on", "chime");
    clearInterval(ticker);
    clearTimeout(limit);
    if (recorder && recorder.state !== "inactive") {
      const stopped = new Promise((resolve) => recorder.addEventListener("stop", resolve));
      recorder.stop();
      await stopped;
    }
    await Promise.race([sending, pause(3000)]);
    for (const track of stream.getTracks()) track.stop();
    if (audio) audio.close();
    audio = null;
    onAir.submit();
  });
})();
