// speech-rnn web page: upload a file or record from the microphone, then show the
// transcript with each word shaded by confidence and its times on hover. Plain JS, no
// external assets. A recording is decoded by the browser (WebAudio) and sent as 16 kHz
// 16-bit mono WAV, so the server never needs to read webm/opus from MediaRecorder.
"use strict";

const TARGET_RATE = 16000;
const $ = (id) => document.getElementById(id);
let recorder = null;

function setStatus(text, isError) {
  const status = $("status");
  status.textContent = text;
  status.classList.toggle("error", Boolean(isError));
}

function showTranscript(result) {
  const box = $("transcript");
  box.replaceChildren();
  const words = result.words || [];
  if (words.length === 0) {
    box.textContent = result.text || "(no speech recognised)";
  }
  words.forEach((w, i) => {
    if (i > 0) box.appendChild(document.createTextNode(" "));
    const span = document.createElement("span");
    span.className = "word";
    span.textContent = w.word;
    // Less confident words get a stronger amber background.
    const doubt = Math.min(1, Math.max(0, 1 - w.confidence));
    span.style.backgroundColor = `rgba(255, 152, 0, ${(0.08 + 0.8 * doubt).toFixed(3)})`;
    span.dataset.confidence = w.confidence.toFixed(4);
    span.title = `${w.start.toFixed(2)}–${w.end.toFixed(2)} s, confidence ${w.confidence.toFixed(2)}`;
    box.appendChild(span);
  });
  box.dataset.state = "done";
}

async function transcribe(body, label) {
  const params = new URLSearchParams({ beam: String(parseInt($("beam").value, 10) || 0) });
  if ($("use-lm").checked) params.set("lm", "true");
  setStatus(`Transcribing ${label}…`);
  $("transcript").dataset.state = "busy";
  const started = performance.now();
  try {
    const response = await fetch(`/v1/transcribe?${params}`, { method: "POST", body });
    const data = await response.json();
    if (!response.ok) {
      $("transcript").dataset.state = "error";
      setStatus(`Error ${response.status}: ${data.error}`, true);
      return;
    }
    showTranscript(data);
    const seconds = ((performance.now() - started) / 1000).toFixed(2);
    setStatus(`${label}: ${data.duration.toFixed(2)} s of audio transcribed in ${seconds} s.`);
  } catch (error) {
    $("transcript").dataset.state = "error";
    setStatus(`Request failed: ${error}`, true);
  }
}

function play(blob) {
  const player = $("player");
  if (player.src) URL.revokeObjectURL(player.src);
  player.src = URL.createObjectURL(blob);
  player.hidden = false;
}

// -- recording: MediaRecorder, then WebAudio decoding and resampling to a WAV -------------
function encodeWav(samples, rate) {
  const buffer = new ArrayBuffer(44 + samples.length * 2);
  const view = new DataView(buffer);
  const text = (offset, s) => { for (let i = 0; i < s.length; i++) view.setUint8(offset + i, s.charCodeAt(i)); };
  text(0, "RIFF"); view.setUint32(4, 36 + samples.length * 2, true); text(8, "WAVE");
  text(12, "fmt "); view.setUint32(16, 16, true); view.setUint16(20, 1, true);
  view.setUint16(22, 1, true); view.setUint32(24, rate, true); view.setUint32(28, rate * 2, true);
  view.setUint16(32, 2, true); view.setUint16(34, 16, true);
  text(36, "data"); view.setUint32(40, samples.length * 2, true);
  for (let i = 0; i < samples.length; i++) {
    const s = Math.max(-1, Math.min(1, samples[i]));
    view.setInt16(44 + i * 2, s < 0 ? s * 0x8000 : s * 0x7fff, true);
  }
  return new Blob([buffer], { type: "audio/wav" });
}

async function toWav(blob) {
  const context = new AudioContext();
  try {
    const decoded = await context.decodeAudioData(await blob.arrayBuffer());
    const frames = Math.ceil(decoded.duration * TARGET_RATE);
    const offline = new OfflineAudioContext(1, Math.max(frames, 1), TARGET_RATE);
    const source = offline.createBufferSource();
    source.buffer = decoded;           // mixed down to the one output channel
    source.connect(offline.destination);
    source.start();
    const rendered = await offline.startRendering();
    return encodeWav(rendered.getChannelData(0), TARGET_RATE);
  } finally {
    context.close();
  }
}

async function toggleRecording() {
  const button = $("record");
  if (recorder && recorder.state === "recording") {
    recorder.stop();
    return;
  }
  if (!navigator.mediaDevices || !window.MediaRecorder) {
    setStatus("This browser cannot record audio here (it needs MediaRecorder and a secure " +
              "context: localhost or https).", true);
    return;
  }
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ audio: true });
  } catch (error) {
    setStatus(`No microphone: ${error.message || error}`, true);
    return;
  }
  const chunks = [];
  recorder = new MediaRecorder(stream);
  recorder.ondataavailable = (event) => { if (event.data.size) chunks.push(event.data); };
  recorder.onstop = async () => {
    stream.getTracks().forEach((track) => track.stop());
    button.textContent = "Record";
    button.classList.remove("recording");
    const recorded = new Blob(chunks, { type: recorder.mimeType });
    try {
      const wav = await toWav(recorded);
      play(wav);
      await transcribe(wav, "recording");
    } catch (error) {
      setStatus(`Could not decode the recording: ${error.message || error}`, true);
    }
  };
  recorder.start();
  button.textContent = "Stop";
  button.classList.add("recording");
  setStatus("Recording… press Stop when done.");
}

async function loadModelInfo() {
  try {
    const info = await (await fetch("/v1/model")).json();
    const lm = info.language_model;
    $("model-info").textContent = `Model: ${info.run || info.source}, ${info.sample_rate} Hz` +
      (lm ? `, language model ${lm}` : "") + ` (speech-rnn ${info.version})`;
    $("use-lm").disabled = !lm;
  } catch (error) {
    $("model-info").textContent = `Model information unavailable: ${error}`;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("file").addEventListener("change", async (event) => {
    const file = event.target.files[0];
    if (!file) return;
    play(file);
    await transcribe(file, file.name);
    event.target.value = "";
  });
  $("record").addEventListener("click", toggleRecording);
  loadModelInfo();
});
