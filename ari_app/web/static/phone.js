// The browser phone: the operator's own WebRTC endpoint (<name>.web on Asterisk), through
// JsSIP (jssip.min.js, bundled from npm). The console starts it after an operator's login;
// the account comes from /api/phone and is never shown. It rings with a sound and the
// console's "Berdering" banner, answers, hangs up, mutes, holds, sends keys, lets the
// operator pick microphone and speaker, shows the microphone's level and the call's quality
// when it is bad, and reconnects by itself after a network blip (JsSIP re-registers; the
// call in hand keeps its media path).
"use strict";

const PHONE = {
  ua: null, account: null, session: null, local: null, audioContext: null, meter: null, stats: null, ringer: null,
  lastIn: null, registered: false, moved: false,  // moved: the WebSocket dropped since the last registration
};
const QUALITY_EVERY_MS = 2000;
const BAD_LOSS_PCT = 5;       // of the packets expected since the last look
const BAD_JITTER_S = 0.05;
const METER_EVERY_MS = 100;
const RING_ON_MS = 1000, RING_PERIOD_MS = 3000, RING_HZ = [440, 480];

const phoneMode = () => (PHONE.account && PHONE.account.enabled ? ($("#phone-mode").value || "browser") : "softphone");

function phoneSay(key, extra) {
  const state = $("#phone-state");
  state.dataset.t = key;
  state.dataset.state = key;
  state.textContent = t(key) + (extra ? `: ${extra}` : "");
}

async function phoneStart() {
  PHONE.account = await api("/api/phone").catch(() => ({ enabled: false }));
  if (!PHONE.account.enabled) return;
  $("#phone").hidden = false;
  const saved = localStorage.getItem("ivr112.phone");
  $("#phone-mode").value = saved === "softphone" || saved === "browser" ? saved : "browser";
  await listDevices();
  navigator.mediaDevices.addEventListener("devicechange", listDevices);
  if (phoneMode() === "browser") phoneRegister(); else phoneSay("phone_off");
}

function phoneRegister() {
  if (PHONE.ua) return;
  const a = PHONE.account;
  PHONE.ua = new JsSIP.UA({
    sockets: [new JsSIP.WebSocketInterface(a.ws_url)], uri: a.uri, authorization_user: a.user, password: a.password,
    display_name: a.display_name, register: true, register_expires: a.register_expires, session_timers: false,
    user_agent: "ivr112-console", connection_recovery_min_interval: 1, connection_recovery_max_interval: 4,
  });
  PHONE.ua.on("connecting", () => { if (!PHONE.registered) phoneSay("phone_connecting"); });
  PHONE.ua.on("disconnected", () => {
    PHONE.registered = false;
    PHONE.moved = true;
    phoneSay("phone_reconnecting");
    dropRinging();
  });
  PHONE.ua.on("registered", () => {
    PHONE.registered = true;
    phoneSay(PHONE.session ? "phone_in_call" : "phone_ready");
    if (PHONE.moved) refreshDialog();
    PHONE.moved = false;
  });
  PHONE.ua.on("unregistered", () => { PHONE.registered = false; if (PHONE.ua) phoneSay("phone_reconnecting"); });
  PHONE.ua.on("registrationFailed", (e) => { PHONE.registered = false; phoneSay("phone_failed", e.cause); });
  PHONE.ua.on("newRTCSession", (e) => { if (e.originator === "remote") incoming(e.session); });
  phoneSay("phone_connecting");
  PHONE.ua.start();
}

// After a reconnect the call in hand still points at the old WebSocket: Asterisk would send
// its BYE (the caller hanging up) there, and it would never arrive. A re-INVITE from the new
// connection is a target refresh: Asterisk's dialog then follows the new WebSocket. The media
// path itself is unchanged (same ICE and DTLS), so the operator hears no gap.
function refreshDialog() {
  const s = PHONE.session;
  if (s && s.isEstablished()) s.renegotiate({ rtcOfferConstraints: { offerToReceiveAudio: 1 } });
}

// A ring that came over the WebSocket just lost cannot be answered any more: Asterisk
// would never take the answer, nor could it cancel the ring. Let it go here; the caller
// stays queued and the queue rings this page again on the new WebSocket.
function dropRinging() {
  const s = PHONE.session;
  if (s && !s.isEstablished() && !PHONE.local) s.terminate({ status_code: 480 });
}

function phoneUnregister() {
  if (!PHONE.ua) return;
  const ua = PHONE.ua;
  PHONE.ua = null;
  PHONE.registered = false;
  ua.stop();
  phoneSay("phone_off");
}

// Which phone answers: switching while in the queues moves the queue membership too.
$("#phone-mode").addEventListener("change", async () => {
  const mode = $("#phone-mode").value;
  localStorage.setItem("ivr112.phone", mode);
  if (mode === "browser") phoneRegister(); else phoneUnregister();
  const status = $("#my-status").dataset.status;
  if (status && status !== "logged_out") {
    try { await api(`/api/operators/${me.name}/login`, { phone: mode }); } catch (err) { say(err.message); }
  }
});

// A call --------------------------------------------------------------------------------------

function incoming(session) {
  if (PHONE.session) { session.terminate({ status_code: 486 }); return; }  // one call in hand at a time
  PHONE.session = session;
  const from = session.remote_identity;
  $("#phone-peer").textContent = `${from.display_name || ""} ${from.uri.user}`.trim();
  $("#phone-call").hidden = false;
  $("#phone").dataset.call = "ringing";
  $("#phone-answer").hidden = false;
  phoneSay("phone_ringing", from.uri.user);
  ring(true);
  session.on("peerconnection", (e) => attachRemote(e.peerconnection));
  if (session.connection) attachRemote(session.connection);
  session.on("accepted", () => {
    ring(false);
    $("#phone").dataset.call = "talking";
    $("#phone-answer").hidden = true;
    phoneSay("phone_in_call", from.uri.user);
  });
  session.on("ended", callOver);
  session.on("failed", callOver);
  session.on("hold", () => { $("#phone-hold").setAttribute("aria-pressed", "true"); });
  session.on("unhold", () => { $("#phone-hold").setAttribute("aria-pressed", "false"); });
}

function attachRemote(pc) {
  pc.addEventListener("track", (e) => { $("#phone-audio").srcObject = e.streams[0] || new MediaStream([e.track]); });
}

async function answer() {
  const s = PHONE.session;
  if (!s || s.isEstablished()) return;
  ring(false);
  try {
    PHONE.local = await navigator.mediaDevices.getUserMedia({ audio: micConstraint(), video: false });
  } catch (err) {
    phoneSay("phone_no_mic", err.message);
    return;
  }
  s.answer({ mediaStream: PHONE.local, pcConfig: { iceServers: [] }, rtcOfferConstraints: { offerToReceiveAudio: 1 } });
  startMeter(PHONE.local);
  PHONE.stats = setInterval(checkQuality, QUALITY_EVERY_MS);
  listDevices();  // labels are known once the microphone is allowed
}

function callOver() {
  ring(false);
  clearInterval(PHONE.stats);
  stopMeter();
  if (PHONE.local) PHONE.local.getTracks().forEach((track) => track.stop());
  Object.assign(PHONE, { session: null, local: null, stats: null, lastIn: null });
  $("#phone-call").hidden = true;
  $("#phone-quality").hidden = true;
  $("#phone").dataset.call = "none";
  $("#phone-mute").setAttribute("aria-pressed", "false");
  $("#phone-hold").setAttribute("aria-pressed", "false");
  $("#phone-audio").srcObject = null;
  phoneSay(PHONE.registered ? "phone_ready" : "phone_reconnecting");
}

$("#phone-answer").addEventListener("click", answer);
$("#phone-hangup").addEventListener("click", () => { if (PHONE.session) PHONE.session.terminate(); });
$("#phone-mute").addEventListener("click", () => {
  const s = PHONE.session;
  if (!s || !s.isEstablished()) return;
  const muted = s.isMuted().audio;
  if (muted) s.unmute({ audio: true }); else s.mute({ audio: true });
  $("#phone-mute").setAttribute("aria-pressed", String(!muted));
});
$("#phone-hold").addEventListener("click", () => {
  const s = PHONE.session;
  if (!s || !s.isEstablished()) return;
  if (s.isOnHold().local) s.unhold(); else s.hold();
});
document.querySelectorAll("#phone-keypad [data-digit]").forEach((key) => {
  key.addEventListener("click", () => {
    const s = PHONE.session;
    if (s && s.isEstablished()) s.sendDTMF(key.dataset.digit, { transportType: "RFC2833" });
  });
});

// The ring: two tones from the page itself (no sound file), on the chosen speaker when the
// browser allows it.
function ring(on) {
  if (!on) { clearInterval(PHONE.ringer); PHONE.ringer = null; $("#phone").dataset.sound = "off"; return; }
  if (PHONE.ringer) return;
  const ctx = audioContext();
  const burst = () => {
    const gain = ctx.createGain();
    gain.gain.value = 0.15;
    gain.connect(ctx.destination);
    for (const hz of RING_HZ) {
      const osc = ctx.createOscillator();
      osc.frequency.value = hz;
      osc.connect(gain);
      osc.start();
      osc.stop(ctx.currentTime + RING_ON_MS / 1000);
    }
  };
  burst();
  PHONE.ringer = setInterval(burst, RING_PERIOD_MS);
  $("#phone").dataset.sound = ctx.state === "running" ? "on" : "blocked";
}

function audioContext() {
  if (!PHONE.audioContext) PHONE.audioContext = new AudioContext();
  if (PHONE.audioContext.state === "suspended") PHONE.audioContext.resume();
  const speaker = $("#phone-speaker").value;
  if (speaker && PHONE.audioContext.setSinkId) PHONE.audioContext.setSinkId(speaker).catch(() => null);
  return PHONE.audioContext;
}

// Microphone, speaker, level ---------------------------------------------------------------

const micConstraint = () => ($("#phone-mic").value ? { deviceId: { exact: $("#phone-mic").value } } : true);

async function listDevices() {
  const devices = await navigator.mediaDevices.enumerateDevices().catch(() => []);
  for (const [sel, kind, key] of [["#phone-mic", "audioinput", "phone_mic"], ["#phone-speaker", "audiooutput", "phone_speaker"]]) {
    const box = $(sel);
    const chosen = box.value || localStorage.getItem(`ivr112.${kind}`) || "";
    const found = devices.filter((d) => d.kind === kind);
    box.replaceChildren(...found.map((d, i) => {
      const option = document.createElement("option");
      option.value = d.deviceId;
      option.textContent = d.label || `${t(key)} ${i + 1}`;
      return option;
    }));
    if (found.some((d) => d.deviceId === chosen)) box.value = chosen;
  }
}

$("#phone-mic").addEventListener("change", async () => {
  localStorage.setItem("ivr112.audioinput", $("#phone-mic").value);
  const s = PHONE.session;
  if (!s || !s.connection || !PHONE.local) return;
  const stream = await navigator.mediaDevices.getUserMedia({ audio: micConstraint(), video: false });
  const sender = s.connection.getSenders().find((x) => x.track && x.track.kind === "audio");
  if (sender) await sender.replaceTrack(stream.getAudioTracks()[0]);
  PHONE.local.getTracks().forEach((track) => track.stop());
  PHONE.local = stream;
  startMeter(stream);
});

$("#phone-speaker").addEventListener("change", () => {
  const id = $("#phone-speaker").value;
  localStorage.setItem("ivr112.audiooutput", id);
  const audio = $("#phone-audio");
  if (audio.setSinkId) audio.setSinkId(id).catch((err) => say(err.message));
});

function startMeter(stream) {
  stopMeter();
  const ctx = audioContext();
  const analyser = ctx.createAnalyser();
  analyser.fftSize = 512;
  const source = ctx.createMediaStreamSource(stream);
  source.connect(analyser);
  const samples = new Float32Array(analyser.fftSize);
  const timer = setInterval(() => {
    analyser.getFloatTimeDomainData(samples);
    const rms = Math.sqrt(samples.reduce((sum, v) => sum + v * v, 0) / samples.length);
    $("#phone-level").value = Math.min(1, rms * 4);
  }, METER_EVERY_MS);
  PHONE.meter = { source, timer };
}

function stopMeter() {
  if (!PHONE.meter) return;
  clearInterval(PHONE.meter.timer);
  PHONE.meter.source.disconnect();
  PHONE.meter = null;
  $("#phone-level").value = 0;
}

// Quality: shown only when bad (packets lost since the last look, or jitter).
async function phoneStats() {
  const pc = PHONE.session && PHONE.session.connection;
  if (!pc) return null;
  const out = { sent: 0, received: 0, lost: 0, jitter: 0, codec: "" };
  (await pc.getStats()).forEach((r) => {
    if (r.type === "outbound-rtp" && r.kind === "audio") out.sent = r.packetsSent;
    if (r.type === "inbound-rtp" && r.kind === "audio") {
      Object.assign(out, { received: r.packetsReceived, lost: r.packetsLost, jitter: r.jitter || 0 });
      if (r.codecId) out.codecId = r.codecId;
    }
  });
  return out;
}

async function checkQuality() {
  const now = await phoneStats();
  if (!now) return;
  const before = PHONE.lastIn || { received: 0, lost: 0 };
  PHONE.lastIn = now;
  const expected = now.received - before.received + now.lost - before.lost;
  const lossPct = expected > 0 ? ((now.lost - before.lost) / expected) * 100 : 0;
  const bad = lossPct > BAD_LOSS_PCT || now.jitter > BAD_JITTER_S;
  const box = $("#phone-quality");
  box.hidden = !bad;
  if (bad) box.textContent = `${t("phone_bad")}: ${t("phone_loss")} ${lossPct.toFixed(0)}%, jitter ${Math.round(now.jitter * 1000)} ms`;
}

// For the console's own code and the tests: what the phone is doing.
window.ivr112Phone = {
  stats: phoneStats, mode: phoneMode, registered: () => PHONE.registered,
  connection: () => (PHONE.session ? PHONE.session.connection : null),
};
