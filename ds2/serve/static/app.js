// The page of `ds2 serve` (protocol: ds2/serve/__init__.py). Live: the microphone through an
// AudioWorklet (recorder-worklet.js), sent as pcm16 every ~100 ms over /ws. Upload: a file POSTed
// to /api/transcribe. For the browser test: window.ds2Partials (every partial text, in order) and
// window.ds2Final (the final message).
'use strict';

const $ = (id) => document.getElementById(id);
window.ds2Partials = [];
window.ds2Final = null;
let session = null; // the live utterance in progress

function setStatus(text, kind = '') {
  $('status').textContent = text;
  $('status').className = 'status' + (kind ? ' ' + kind : '');
}

async function loadHealth() {
  try {
    const r = await fetch('/health');
    if (!r.ok) throw new Error(`HTTP ${r.status}`);
    const h = await r.json();
    $('model').textContent = `Model: ${h.model} · ` + (h.streaming
      ? 'streaming: the text grows as you speak'
      : 'not streaming: the text comes at the end, when you stop');
  } catch (e) {
    $('model').textContent = `The server's /health did not answer: ${e.message}`;
  }
}

// Float32 blocks -> one little-endian int16 buffer
function toPcm16(blocks, total) {
  const view = new DataView(new ArrayBuffer(2 * total));
  let o = 0;
  for (const b of blocks) {
    for (let i = 0; i < b.length; i++, o += 2) {
      const s = Math.max(-1, Math.min(1, b[i]));
      view.setInt16(o, s < 0 ? s * 0x8000 : s * 0x7fff, true);
    }
  }
  return view.buffer;
}

// Audio and `end` wait (in order) for the server's "ready"
function send(s, data) {
  if (!s.ready) s.pending.push(data);
  else if (s.ws.readyState === WebSocket.OPEN) s.ws.send(data);
}

function flushAudio(s) {
  if (s.buffered === 0) return;
  const buf = toPcm16(s.blocks, s.buffered);
  s.blocks = [];
  s.buffered = 0;
  send(s, buf);
}

function onSamples(s, block) {
  if (!s.recording) return;
  s.blocks.push(block);
  s.buffered += block.length;
  if (s.buffered >= s.rate / 10) flushAudio(s);
}

// Stops the microphone; with flush, sends the samples still in the worklet first
async function stopRecording(s, flush) {
  if (!s.recording) return;
  if (flush && s.node) {
    await new Promise((resolve) => {
      const timer = setTimeout(resolve, 300);
      s.onFlushed = () => { clearTimeout(timer); resolve(); };
      s.node.port.postMessage('flush');
    });
    flushAudio(s);
  }
  s.recording = false;
  if (s.node) s.node.disconnect();
  if (s.stream) s.stream.getTracks().forEach((t) => t.stop());
  if (s.ctx && s.ctx.state !== 'closed') await s.ctx.close().catch(() => {});
}

function showFinal(msg) {
  $('final').textContent = msg.text;
  const words = $('words');
  words.replaceChildren();
  for (const w of msg.words || []) {
    const span = document.createElement('span');
    span.className = 'word';
    const conf = typeof w.confidence === 'number' ? ` · confidence ${w.confidence.toFixed(2)}` : '';
    span.title = `${w.start.toFixed(2)}–${w.end.toFixed(2)} s${conf}`;
    const time = document.createElement('small');
    time.textContent = `${w.start.toFixed(2)}–${w.end.toFixed(2)}`;
    span.append(w.word, time);
    words.append(span);
  }
}

function onMessage(s, e) {
  if (typeof e.data !== 'string') return;
  let msg;
  try { msg = JSON.parse(e.data); } catch { return; }
  if (msg.type === 'ready') {
    s.ready = true;
    if (!msg.streaming) $('partial').textContent = '(this model is not streaming: the text comes at the end)';
    if (!s.stopping) setStatus('listening');
    const pending = s.pending;
    s.pending = [];
    pending.forEach((d) => send(s, d));
  } else if (msg.type === 'partial') {
    window.ds2Partials.push(msg.text);
    $('partial').textContent = msg.text;
  } else if (msg.type === 'final') {
    s.finished = true;
    window.ds2Final = msg;
    showFinal(msg);
    const conf = typeof msg.confidence === 'number' ? `, confidence ${msg.confidence.toFixed(2)}` : '';
    setStatus(`done (${Number(msg.duration).toFixed(1)} s of audio${conf})`, 'done');
    stopRecording(s, false);
  } else if (msg.type === 'error') {
    s.error = msg.message;
    setStatus(`error: ${msg.message}`, 'error');
    stopRecording(s, false);
  }
}

function onClose(s, e) {
  stopRecording(s, false);
  if (!s.finished) {
    const why = `connection closed (code ${e.code}${e.reason ? ': ' + e.reason : ''})`;
    setStatus(`error: ${s.error ? s.error + ' — ' : ''}${why}`, 'error');
  }
  if (session === s) session = null;
  $('start').disabled = false;
  $('stop').disabled = true;
}

async function start() {
  $('start').disabled = true;
  window.ds2Partials = [];
  window.ds2Final = null;
  $('partial').textContent = '';
  $('final').textContent = '';
  $('words').replaceChildren();
  setStatus('connecting');
  const s = { ready: false, pending: [], blocks: [], buffered: 0, recording: true, stopping: false,
              finished: false, error: null, ws: null, ctx: null, stream: null, node: null, onFlushed: null };
  try {
    s.stream = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: false, noiseSuppression: false, autoGainControl: false } });
    s.ctx = new AudioContext(); // the device's native rate; the server resamples
    s.rate = s.ctx.sampleRate;
    await s.ctx.audioWorklet.addModule('/static/recorder-worklet.js');
    s.node = new AudioWorkletNode(s.ctx, 'recorder', { numberOfInputs: 1, numberOfOutputs: 1, outputChannelCount: [1] });
    s.node.port.onmessage = (e) => (e.data instanceof Float32Array ? onSamples(s, e.data) : s.onFlushed && s.onFlushed());
    s.ctx.createMediaStreamSource(s.stream).connect(s.node);
    s.node.connect(s.ctx.destination); // silent (the worklet writes no output), but keeps it pulled
    if (s.ctx.state === 'suspended') await s.ctx.resume();
  } catch (err) {
    s.error = err.message || String(err);
    await stopRecording(s, false);
    setStatus(`error: microphone: ${s.error}`, 'error');
    $('start').disabled = false;
    return;
  }
  const proto = location.protocol === 'https:' ? 'wss' : 'ws';
  s.ws = new WebSocket(`${proto}://${location.host}/ws`);
  s.ws.binaryType = 'arraybuffer';
  s.ws.onopen = () => s.ws.send(JSON.stringify({ type: 'start', sample_rate: s.rate, format: 'pcm16' }));
  s.ws.onmessage = (e) => onMessage(s, e);
  s.ws.onclose = (e) => onClose(s, e);
  session = s;
  $('stop').disabled = false;
}

async function stop() {
  const s = session;
  if (!s || s.stopping) return;
  s.stopping = true;
  $('stop').disabled = true;
  if (!s.error) setStatus('finishing');
  await stopRecording(s, true);
  send(s, JSON.stringify({ type: 'end' }));
}

async function upload() {
  const out = $('upload-result');
  const file = $('file').files[0];
  const show = (text, state) => {
    out.textContent = text;
    out.dataset.state = state;
    out.className = 'text' + (state === 'error' ? ' error' : '');
  };
  if (!file) return show('error: choose an audio file first', 'error');
  $('upload').disabled = true;
  show(`Transcribing ${file.name}…`, 'pending');
  try {
    const r = await fetch('/api/transcribe', { method: 'POST', body: file,
                                               headers: { 'Content-Type': 'application/octet-stream' } });
    let body = null;
    try { body = await r.json(); } catch { /* not JSON, e.g. a proxy's 413 page */ }
    if (!r.ok) throw new Error(body && body.error ? body.error : `HTTP ${r.status} ${r.statusText}`);
    show(body.text, 'done');
    out.title = `${file.name}: ${Number(body.duration).toFixed(1)} s of audio`;
  } catch (e) {
    show(`error: ${e.message}`, 'error');
  } finally {
    $('upload').disabled = false;
  }
}

$('start').addEventListener('click', start);
$('stop').addEventListener('click', stop);
$('upload').addEventListener('click', upload);
loadHealth();
