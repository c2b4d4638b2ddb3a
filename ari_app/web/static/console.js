// The 112 console: plain JavaScript, no framework, nothing from the internet.
// Live updates come as server-sent events from /api/stream; every change is a POST with
// the session's CSRF token.
"use strict";

const TEXT = {
  id: {
    title: "Konsol 112", offline: "Terputus, menyambung ulang…", online: "Terhubung", logout: "Keluar",
    login_title: "Masuk ke konsol", name: "Nama", password: "Kata sandi", login: "Masuk",
    my_shift: "Giliran saya", status: "Status", queue_in: "Masuk antrean", pause: "Istirahat", resume: "Lanjut",
    queue_out: "Keluar antrean", pause_reason: "Alasan istirahat", call_in_hand: "Panggilan yang ditangani",
    prank_warning: "Nomor ini pernah diklasifikasikan sebagai panggilan iseng", caller: "Penelepon",
    called: "Nomor dipanggil", carrier: "Operator seluler", language: "Bahasa", path: "Pilihan menu", route: "Tujuan",
    waited: "Lama menunggu", flags: "Catatan sistem", location: "Lokasi", prior: "Panggilan sebelumnya",
    classify: "Klasifikasi", emergency: "Darurat", information: "Informasi", prank: "Iseng", ghost: "Hening",
    notes: "Catatan", transfer: "Sambungkan ke instansi", close: "Tutup insiden", callbacks: "Daftar panggil balik",
    wall: "Papan pengawas", operator: "Petugas", call_back: "Panggil balik", conference: "konferensi",
    text_caller: "Kirim SMS ke penelepon",
    classified: "Diklasifikasikan", none: "tidak ada", play: "Putar rekaman", wrong_login: "Nama atau kata sandi salah",
    nodes: "Server panggilan", node_up: "berjalan", node_down: "MATI sejak", node_unknown: "keadaan tidak diketahui (pemantau tidak berjalan)",
    seconds: "detik", figures: "Angka kinerja", from: "Dari", to: "Sampai", csv: "Unduh CSV", calls: "Panggilan",
    within15: "Dijawab dalam 15 dtk (%)", within20: "Dijawab dalam 20 dtk (%)", abandoned: "Ditinggalkan",
    text_conversations: "Percakapan teks (SIP / SMS)", text_waiting: "Teks belum dibalas petugas",
    text_first_reply: "Balasan petugas pertama, median (dtk)",
    answered: "Dijawab", mean_answer: "Rata-rata jawab (dtk)", announce: "Pesan kejadian besar",
    announce_id: "Teks Bahasa Indonesia", announce_en: "Teks bahasa Inggris", announce_on: "Aktifkan", announce_off: "Matikan",
    announce_is_on: "Aktif: penelepon mendengarnya setelah salam", announce_is_off: "Tidak aktif",
    recent: "Insiden terakhir", number: "Nomor", clear_prank: "Hapus tanda iseng", cleared: "Tanda iseng dihapus",
    trunks: "Saluran instansi (hasil panggilan terakhir)", answered_ok: "menjawab", failed: "gagal", unknown: "belum dipakai",
    waiting: "Menunggu petugas", in_ivr: "Di menu suara", at_agency: "Tersambung ke instansi",
    arrived: "tiba", no_keys: "belum menekan tombol", keys: "tombol", keying: "sedang mengetik", silent_so_far: "belum bersuara",
    ringing_banner: "Berdering: angkat telepon untuk menjawab", choice_kecamatan: "kecamatan", choice_silent: "minta bantuan (diam)",
    choice_language: "bahasa", hint: "perkiraan dari panggilan sebelumnya",
    ivr_states: { greeting: "salam pembuka", announcement: "pesan kejadian besar", ask_location: "ditanya lokasi",
                  recording: "merekam lokasi", kecamatan_prompt: "memilih kecamatan", kecamatan_wait: "memilih kecamatan",
                  silent_prompt: "pesan penelepon diam", silent_wait: "pesan penelepon diam", prank_prompt: "peringatan iseng",
                  prank_wait: "peringatan iseng", menu_prompt: "menu pilihan", menu_wait: "menu pilihan" },
    states: { logged_out: "di luar antrean", ready: "siap", ringing: "berdering", talking: "sedang bicara",
              wrapup: "menyelesaikan", paused: "istirahat", unreachable: "telepon tidak terdaftar" },
    phone: "Telepon", phone_use: "Jawab dengan", phone_browser: "Telepon di browser", phone_softphone: "Softphone SIP",
    answer: "Jawab", hangup: "Tutup telepon", mute: "Bisukan", hold: "Tahan", phone_mic: "Mikrofon", phone_speaker: "Speaker",
    phone_level: "Suara mikrofon", phone_off: "Memakai softphone", phone_connecting: "Menyambung…",
    phone_ready: "Siap menerima panggilan", phone_reconnecting: "Jaringan terputus, menyambung ulang…",
    phone_failed: "Gagal mendaftar", phone_ringing: "Panggilan masuk", phone_in_call: "Sedang bicara",
    phone_no_mic: "Mikrofon tidak bisa dipakai", phone_bad: "Kualitas suara buruk", phone_loss: "paket hilang",
    ringing_browser: "Berdering: klik Jawab di panel Telepon",
    agency_acks: "Tanggapan instansi", unit_dispatched: "Unit diberangkatkan",
  },
  en: {
    title: "112 console", offline: "Disconnected, reconnecting…", online: "Connected", logout: "Log out",
    login_title: "Log in to the console", name: "Name", password: "Password", login: "Log in",
    my_shift: "My shift", status: "Status", queue_in: "Join queue", pause: "Pause", resume: "Resume",
    queue_out: "Leave queue", pause_reason: "Pause reason", call_in_hand: "Call in hand",
    prank_warning: "This number was classified as a prank caller before", caller: "Caller",
    called: "Called number", carrier: "Carrier", language: "Language", path: "Menu path", route: "Route",
    waited: "Waited", flags: "System flags", location: "Location", prior: "Earlier calls",
    classify: "Classify", emergency: "Emergency", information: "Information", prank: "Prank", ghost: "Ghost",
    notes: "Notes", transfer: "Transfer to agency", close: "Close incident", callbacks: "Callback list",
    wall: "Supervisor wall", operator: "Operator", call_back: "Call back", conference: "conference",
    text_caller: "Text the caller (SMS)",
    classified: "Classified", none: "none", play: "Play recording", wrong_login: "Wrong name or password",
    nodes: "Call nodes", node_up: "up", node_down: "DOWN since", node_unknown: "state unknown (the watcher is not running)",
    seconds: "seconds", figures: "Figures", from: "From", to: "To", csv: "Download CSV", calls: "Calls",
    within15: "Answered within 15 s (%)", within20: "Answered within 20 s (%)", abandoned: "Abandoned",
    text_conversations: "Text conversations (SIP / SMS)", text_waiting: "Texts no operator answered yet",
    text_first_reply: "First operator reply, median (s)",
    answered: "Answered", mean_answer: "Mean answer (s)", announce: "Major-incident message",
    announce_id: "Indonesian text", announce_en: "English text", announce_on: "Switch on", announce_off: "Switch off",
    announce_is_on: "On: callers hear it after the greeting", announce_is_off: "Off",
    recent: "Latest incidents", number: "Number", clear_prank: "Clear prank flag", cleared: "Prank flag cleared",
    trunks: "Agency trunks (last call's result)", answered_ok: "answered", failed: "failed", unknown: "not used yet",
    waiting: "Waiting for an operator", in_ivr: "In the voice menu", at_agency: "With an agency",
    arrived: "arrived", no_keys: "no key pressed yet", keys: "keys", keying: "keying", silent_so_far: "not heard yet",
    ringing_banner: "Ringing: pick up the softphone to answer", choice_kecamatan: "kecamatan", choice_silent: "asked for help (silent)",
    choice_language: "language", hint: "guess from an earlier call",
    ivr_states: { greeting: "greeting", announcement: "major-incident message", ask_location: "asked where they are",
                  recording: "recording their location", kecamatan_prompt: "keying the kecamatan", kecamatan_wait: "keying the kecamatan",
                  silent_prompt: "silent-caller prompt", silent_wait: "silent-caller prompt", prank_prompt: "prank warning",
                  prank_wait: "prank warning", menu_prompt: "menu", menu_wait: "menu" },
    states: { logged_out: "logged out", ready: "ready", ringing: "ringing", talking: "talking",
              wrapup: "wrap-up", paused: "paused", unreachable: "softphone not registered" },
    phone: "Phone", phone_use: "Answer with", phone_browser: "Browser phone", phone_softphone: "SIP softphone",
    answer: "Answer", hangup: "Hang up", mute: "Mute", hold: "Hold", phone_mic: "Microphone", phone_speaker: "Speaker",
    phone_level: "Microphone level", phone_off: "Using the softphone", phone_connecting: "Connecting…",
    phone_ready: "Ready for calls", phone_reconnecting: "Network lost, reconnecting…",
    phone_failed: "Registration failed", phone_ringing: "Incoming call", phone_in_call: "On a call",
    phone_no_mic: "The microphone cannot be used", phone_bad: "Poor call quality", phone_loss: "packets lost",
    ringing_browser: "Ringing: click Answer in the Phone panel",
    agency_acks: "Agency response", unit_dispatched: "Unit dispatched",
  },
};

let lang = localStorage.getItem("ivr112.lang") || "id";
let me = null;         // {name, role, csrf}
let current = null;    // the incident shown
let boundaries = null; // GeoJSON of the kecamatan
let plan = null;
let ringing = null;    // the incident ringing my softphone, shown before the answer
let beforeRing = null; // the incident shown before it rang: back on the page if the ring ends unanswered
let shown = 0;         // the latest request to show an incident (an older answer arriving late is dropped)

function say(text) { $("#message").textContent = text; }

// Log in -----------------------------------------------------------------------------------

async function start(session) {
  if (session.role.startsWith("agency:")) { location.replace("/agency"); return; }  // an agency's dispatcher: its own page
  me = session;
  $("#login-view").hidden = true;
  $("#console-view").hidden = false;
  $("#logout").hidden = false;
  $("#who").textContent = `${me.name} (${me.role})`;
  $("#wall").hidden = me.role !== "supervisor";
  $("#figures").hidden = me.role !== "supervisor";
  $("#shift").hidden = me.role === "supervisor";
  $("#announce").hidden = me.role !== "supervisor";
  $("#numbers").hidden = me.role !== "supervisor";
  plan = await api("/api/plan");
  boundaries = await api("/api/boundaries").catch(() => null);
  drawTransferButtons();
  await refreshBoard();
  await refreshCallbacks();
  if (me.role === "supervisor") { await refreshFigures(); await refreshAnnouncement(); await refreshWall(); setInterval(tickWall, 1000);
    setInterval(refreshWall, 5000); }  // what no event tells: a call node gone quiet (cluster)
  else await phoneStart();
  listen();
}

$("#login").addEventListener("submit", async (event) => {
  event.preventDefault();
  const data = new FormData(event.target);
  try {
    await start(await api("/console/login", { name: data.get("name"), password: data.get("password") }));
    $("#login-error").textContent = "";
  } catch (err) {
    $("#login-error").textContent = t("wrong_login");
  }
});

$("#logout").addEventListener("click", async () => {
  await api("/console/logout", {}).catch(() => null);
  location.reload();
});

onLanguage(() => {
  if (!me) return;
  drawTransferButtons();
  refreshBoard();
  refreshCallbacks();
  if (me.role === "supervisor") refreshFigures();
  if (current) showIncident(current.id);
});

// Live updates -----------------------------------------------------------------------------

function listen() {
  const stream = liveStream("/api/stream");
  stream.addEventListener("operator", (e) => {
    const op = JSON.parse(e.data);
    updateWall(op);
    if (op.name === me.name) followMine(op);
    if (op.action === "completed" || op.action === "answered") refreshCallbacks();
  });
  stream.addEventListener("wall", () => { if (me.role === "supervisor") refreshWall(); });  // callers waiting, calls in the menu
  stream.addEventListener("announcement", () => { if (me.role === "supervisor") refreshAnnouncement(); });
  // This node's link to the other nodes on the store was back after a break: what they did
  // meanwhile was never pushed, so read everything again.
  stream.addEventListener("resync", () => {
    refreshBoard();
    refreshCallbacks();
    if (me.role === "supervisor") { refreshFigures(); refreshWall(); refreshAnnouncement(); }
    if (current) showIncident(current.id);
  });
  stream.addEventListener("incident", (e) => {
    const change = JSON.parse(e.data);
    if (current && change.id === current.id) showIncident(current.id);
    if (change.kind === "callback_listed") refreshCallbacks();
    if (me.role === "supervisor" && ["classified", "operator_answered", "callback_listed", "route"].includes(change.kind)) refreshFigures();
    if (me.role === "supervisor" && ["route", "trunk_answered", "trunk_failed", "agency_hangup"].includes(change.kind)) refreshWall();
  });
}

async function refreshBoard() {
  const board = await api("/api/operators");
  board.operators.forEach(updateWall);
  const mine = board.operators.find((o) => o.name === me.name);
  if (mine) followMine(mine);
}

// My own state: the call pops when the softphone rings (with what the menu learned), stays
// after the answer, and goes away if the ring ends unanswered.
function followMine(op) {
  showMyState(op);
  const ringingNow = op.status === "ringing" && op.incident_id ? op.incident_id : null;
  if (ringingNow) {
    if (ringing !== ringingNow) {
      if (!ringing) beforeRing = current ? current.id : null;
      ringing = ringingNow;
      showIncident(ringingNow);
    }
    return;
  }
  $("#ringing").hidden = true;
  if (op.incident_id) {
    ringing = null;
    if (!current || current.id !== op.incident_id) showIncident(op.incident_id);
    return;
  }
  if (ringing) {
    const back = beforeRing;
    ringing = null;
    beforeRing = null;
    if (back) showIncident(back);
    else { shown += 1; current = null; $("#call").hidden = true; }
  }
}

function showMyState(op) {
  $("#my-status").textContent = t("states")[op.status] || op.status;
  $("#my-status").dataset.status = op.status;
}

function updateWall(op) {
  if (me.role !== "supervisor") return;
  let row = document.getElementById(`wall-${op.name}`);
  if (!row) {
    row = document.createElement("tr");
    row.id = `wall-${op.name}`;
    $("#wall-operators").appendChild(row);
  }
  row.replaceChildren(...[op.name, t("states")[op.status] || op.status, op.caller_number || op.ringing_number || ""].map((text) => {
    const cell = document.createElement("td");
    cell.textContent = text;
    return cell;
  }));
}

document.querySelectorAll("#shift [data-action]").forEach((button) => {
  button.addEventListener("click", async () => {
    const action = button.dataset.action;
    const form = action === "pause" ? { reason: $("#pause-reason").value || "istirahat" } : action === "login" ? { phone: phoneMode() } : {};
    try { await api(`/api/operators/${me.name}/${button.dataset.action}`, form); } catch (err) { say(err.message); }
  });
});

// The call in hand ---------------------------------------------------------------------------

async function showIncident(id) {
  const request = ++shown;
  const incident = await api(`/api/incidents/${id}`);
  if (request !== shown) return;  // another call was shown (or the pop taken away) meanwhile
  current = incident;
  $("#call").hidden = false;
  $("#call").dataset.incident = String(id);
  $("#call").dataset.ringing = String(ringing === id);
  $("#ringing").hidden = ringing !== id;
  $("#ringing").dataset.t = phoneMode() === "browser" ? "ringing_browser" : "ringing_banner";
  $("#ringing").textContent = t($("#ringing").dataset.t);
  $("#c-caller").textContent = incident.caller_number || "-";
  $("#c-called").textContent = incident.called_number;
  $("#c-carrier").textContent = incident.carrier || "-";
  $("#c-language").textContent = incident.language;
  const path = incident.events.filter((e) => e.kind === "choice" || e.kind === "kecamatan" || e.kind === "silent_help")
    .map((e) => e.detail.digits || e.detail.kecamatan || "");
  $("#c-path").textContent = path.join(" → ") || t("none");
  $("#c-route").textContent = `${incident.route || "-"} (${incident.priority || "normal"})`;
  const waited = incident.queued_at && incident.operator_answered_at
    ? Math.round((Date.parse(incident.operator_answered_at) - Date.parse(incident.queued_at)) / 1000) : null;
  $("#c-waited").textContent = waited === null ? "-" : `${waited} ${t("seconds")}`;
  $("#c-flags").textContent = incident.flags || t("none");
  const acks = incident.events.filter((e) => e.kind === "agency_ack");
  $("#c-acks").replaceChildren(...(acks.length ? acks.map((e) => item(
    `${t("unit_dispatched")}: ${e.detail.agency} (${e.detail.by}, ${e.at.slice(11, 16)})${e.detail.note ? " — " + e.detail.note : ""}`))
    : [item(t("none"))]));
  $("#c-locations").replaceChildren(...(incident.locations.length
    ? incident.locations.map((l) => item(l.description + (l.hint ? " *" : ""))) : [item(t("none"))]));
  drawMap(incident.locations);
  $("#c-recordings").replaceChildren(...incident.recordings.map(recordingPlayer));
  $("#c-category").textContent = incident.category ? `${t("classified")}: ${t(incident.category)}` : "";
  if (incident.notes && document.activeElement !== $("#notes")) $("#notes").value = incident.notes;
  const prior = (await api(`/api/incidents?number=${encodeURIComponent(incident.caller_number)}&limit=20`))
    .filter((p) => p.id !== incident.id);
  $("#c-prior").replaceChildren(...(prior.length
    ? prior.map((p) => item(`${p.arrived_at.slice(0, 16).replace("T", " ")} — ${p.category ? t(p.category) : "-"}`)) : [item(t("none"))]));
  $("#prank-warning").hidden = !prior.some((p) => p.category === "prank");
}

document.querySelectorAll("#classify [data-category]").forEach((button) => {
  button.addEventListener("click", async () => {
    if (!current) return;
    try {
      await api(`/api/incidents/${current.id}/classify`, { category: button.dataset.category, notes: $("#notes").value });
      await showIncident(current.id);
    } catch (err) { say(err.message); }
  });
});

$("#text-incident").addEventListener("click", () => { if (current) textCaller(current.id); });

$("#close-incident").addEventListener("click", async () => {
  if (!current) return;
  try {
    await api(`/api/incidents/${current.id}/close`, { notes: $("#notes").value });
    current = null;
    $("#call").hidden = true;
  } catch (err) { say(err.message); }
});

function drawTransferButtons() {
  const box = $("#transfer");
  box.replaceChildren();
  for (const agency of plan.agencies) {
    for (const mode of ["blind", "conference"]) {
      const button = document.createElement("button");
      button.type = "button";
      button.dataset.agency = agency.name;
      button.dataset.mode = mode;
      button.textContent = mode === "blind" ? agency.label : `${agency.label} (${t("conference")})`;
      button.addEventListener("click", async () => {
        if (!current) return;
        try { await api(`/api/incidents/${current.id}/transfer`, { agency: agency.name, mode }); } catch (err) { say(err.message); }
      });
      box.appendChild(button);
    }
  }
}

// The map: the kecamatan drawn from the plan's own GeoJSON, positions with their circles.
// The incident's map by default; the text chat panel draws its conversation's on its own.

function drawMap(locations, svg = $("#map")) {
  drawKecamatanMap(svg, boundaries, locations);  // map.js, shared with the agencies' page
}

// The supervisor's wall: who waits, how long, who is in the menu or with an agency ------------

let waiting = [];
let inIvr = [];

async function refreshWall() {
  const recent = await api("/api/incidents?limit=15");
  $("#recent").replaceChildren(...recent.map((i) => {
    const li = item(`#${i.id} ${i.caller_number || "-"} ${i.arrived_at.slice(11, 19)} ${i.category ? t(i.category) : ""} `);
    const open = document.createElement("button");
    open.type = "button";
    open.textContent = "→";
    open.dataset.incident = String(i.id);
    open.addEventListener("click", () => showIncident(i.id));  // details and recordings to play
    li.appendChild(open);
    return li;
  }));
  const w = await api("/api/wall");
  waiting = w.waiting;
  inIvr = w.in_ivr;
  tickWall();
  $("#wall-trunks").replaceChildren(...w.trunks.map((tr) => {
    const result = tr.result === "answered" ? t("answered_ok") : t(tr.result);
    const when = tr.at ? ` ${tr.at.slice(11, 19)}` : "";
    const li = item(`${tr.label} ${tr.trunk}: ${result}${when}${tr.cause ? ` (${tr.cause})` : ""}${tr.placeholder ? " *" : ""}`);
    li.dataset.trunk = `${tr.agency}-${tr.trunk}`;
    li.dataset.result = tr.result;
    return li;
  }));
  wallNodes(w.cluster);
  $("#wall-agency").replaceChildren(...(w.at_agency.length ? w.at_agency.map((c) => item(`${c.caller} → ${c.agency}`)) : [item(t("none"))]));
}

// The cluster's call nodes (only in a cluster): up, or down since when.
function wallNodes(cluster) {
  $("#wall-nodes").hidden = $("#wall-nodes-title").hidden = !cluster.cluster;
  if (!cluster.cluster) return;
  if (!cluster.fresh) { $("#wall-nodes").replaceChildren(item(t("node_unknown"))); return; }
  $("#wall-nodes").replaceChildren(...cluster.nodes.map((n) => {
    const li = item(`${n.name}: ${n.up ? t("node_up") : `${t("node_down")} ${new Date(n.down_since).toLocaleTimeString(lang === "id" ? "id-ID" : "en-GB", { hour12: false })}`}`);
    li.dataset.node = n.name;
    li.dataset.up = String(n.up);
    return li;
  }));
}

const secondsSince = (at) => Math.max(0, Math.round((Date.now() - Date.parse(at)) / 1000));

function tickWall() {
  $("#wall-waiting").replaceChildren(...(waiting.length ? waiting.map((c) => {
    const li = item(`${c.caller} — ${secondsSince(c.since)} ${t("seconds")}`);
    li.dataset.caller = c.caller;
    return li;
  }) : [item(t("none"))]));
  $("#wall-ivr").replaceChildren(...(inIvr.length ? inIvr.map(ivrRow) : [item(t("none"))]));
}

// A call in the menu: who, since when, where in the menu, and what the menu learned so far.
function ivrRow(c) {
  const arrived = new Date(c.arrived_at).toLocaleTimeString(lang === "id" ? "id-ID" : "en-GB", { hour12: false });
  const where = (t("ivr_states")[c.state] || c.state) + (c.menu && c.state.startsWith("menu") ? ` (${c.menu})` : "");
  const learned = c.choices.map((x) => x.kind === "kecamatan" ? `${t("choice_kecamatan")} ${x.digits} ${x.kecamatan}`
    : x.kind === "silent_help" ? t("choice_silent") : x.kind === "language" ? `${t("choice_language")} ${x.language}` : x.digits);
  if (c.keys) learned.push(`${t("keying")} ${c.keys}`);
  const facts = [learned.length ? `${t("keys")}: ${learned.join(" → ")}` : t("no_keys")];
  if (!c.pressed && !c.spoke) facts.push(t("silent_so_far"));
  const l = c.location;
  if (l) facts.push(`${t("location")}: ${l.kecamatan || l.description}${l.radius_m ? ` ±${Math.round(l.radius_m)} m` : ""}${l.hint ? ` (${t("hint")})` : ""}`);
  if (c.flags.length) facts.push(c.flags.join(", "));
  const li = document.createElement("li");
  li.dataset.incident = String(c.incident_id);
  li.dataset.state = c.state;
  const head = document.createElement("strong");
  head.textContent = `#${c.incident_id} ${c.caller || "-"}`;
  const since = document.createElement("span");
  since.className = "since";
  since.textContent = ` — ${secondsSince(c.arrived_at)} ${t("seconds")} (${t("arrived")} ${arrived}) — ${where}`;
  const detail = document.createElement("div");
  detail.className = "learned";
  detail.textContent = facts.join(" · ");
  li.append(head, since, detail);
  return li;
}

$("#clear-prank").addEventListener("click", async () => {
  const number = $("#clear-number").value.trim();
  if (!number) return;
  try { await api(`/api/numbers/${encodeURIComponent(number)}/clear`, {}); say(`${t("cleared")}: ${number}`); } catch (err) { say(err.message); }
});

// The major-incident message ----------------------------------------------------------------

async function refreshAnnouncement() {
  const a = await api("/api/announcement");
  $("#announce-state").textContent = a.on ? `${t("announce_is_on")}: ${a.texts.id}` : t("announce_is_off");
  $("#announce-state").dataset.on = String(a.on);
}

$("#announce-on").addEventListener("click", async () => {
  try {
    await api("/api/announcement", { text_id: $("#announce-id").value, text_en: $("#announce-en").value });
    await refreshAnnouncement();
  } catch (err) { say(err.message); }
});

$("#announce-off").addEventListener("click", async () => {
  const response = await fetch("/api/announcement", { method: "DELETE", headers: { "X-CSRF-Token": me.csrf } });
  if (!response.ok) say((await response.json()).error);
  await refreshAnnouncement();
});

// Supervisor's figures -----------------------------------------------------------------------

function today() {
  // The centre's own day (WIB), as the server counts it.
  return new Date(Date.now() + 7 * 3600 * 1000).toISOString().slice(0, 10);
}

async function refreshFigures() {
  if (!$("#fig-from").value) { $("#fig-from").value = today(); $("#fig-to").value = today(); }
  const query = `from=${$("#fig-from").value}&to=${$("#fig-to").value}`;
  $("#fig-csv").href = `/api/figures.csv?${query}`;
  const f = await api(`/api/figures?${query}`);
  const show = (v) => (v === null || v === undefined ? "-" : String(v));
  $("#fig-calls").textContent = show(f.calls);
  $("#fig-within15").textContent = show(f.answered_within_15s_pct);
  $("#fig-within20").textContent = show(f.answered_within_20s_pct);
  $("#fig-abandoned").textContent = show(f.abandoned);
  for (const c of ["emergency", "information", "prank", "ghost"]) $(`#fig-${c}`).textContent = show(f.categories[c]);
  $("#fig-texts").textContent = `${show(f.texts.conversations)} (${show(f.texts.by_door.sip)} / ${show(f.texts.by_door.sms)})`;
  $("#fig-texts-waiting").textContent = show(f.texts.waiting);
  $("#fig-texts-reply").textContent = show(f.texts.first_reply_median_s);
  $("#fig-operators").replaceChildren(...Object.entries(f.per_operator).map(([name, o]) => {
    const row = document.createElement("tr");
    for (const text of [name, o.answered, o.mean_answer_s]) {
      const cell = document.createElement("td");
      cell.textContent = String(text);
      row.appendChild(cell);
    }
    return row;
  }));
  const chart = $("#fig-chart");
  chart.replaceChildren();
  const cats = ["emergency", "information", "prank", "ghost"];
  const most = Math.max(1, ...cats.map((c) => f.categories[c]));
  cats.forEach((c, i) => {
    const bar = document.createElementNS(SVG, "rect");
    const h = (f.categories[c] / most) * 90;
    bar.setAttribute("x", 20 + i * 95); bar.setAttribute("y", 100 - h); bar.setAttribute("width", 60); bar.setAttribute("height", h);
    bar.setAttribute("class", `bar ${c}`);
    const label = document.createElementNS(SVG, "text");
    label.setAttribute("x", 20 + i * 95); label.setAttribute("y", 115);
    label.textContent = `${t(c)} ${f.categories[c]}`;
    chart.append(bar, label);
  });
}

["#fig-from", "#fig-to"].forEach((sel) => $(sel).addEventListener("change", refreshFigures));

// Callbacks --------------------------------------------------------------------------------------

// A silent caller may not be able to speak: the operator opens a text conversation with the
// caller's number, by SMS through the carrier's gateway (docs/text112.md); the chat panel takes it.
async function textCaller(incidentId) {
  try {
    await api(`/api/texts/${incidentId}/start`, { language: lang });
    await refreshTexts();
    await openText(incidentId);  // the chat panel (texts.js)
  } catch (err) { say(err.message); }
}

function textCallerButton(incidentId) {
  const button = document.createElement("button");
  button.type = "button";
  button.dataset.textCaller = String(incidentId);
  button.textContent = t("text_caller");
  button.addEventListener("click", () => textCaller(incidentId));
  return button;
}

async function refreshCallbacks() {
  const list = await api("/api/callbacks");
  $("#callback-list").replaceChildren(...(list.length ? list.map((c) => {
    const li = item(`${c.number} (${c.calls}×, ${c.status}) `);
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = t("call_back");
    button.disabled = c.status !== "open";
    button.addEventListener("click", async () => {
      try { await api(`/api/callbacks/${encodeURIComponent(c.number)}/call`, {}); await refreshCallbacks(); } catch (err) { say(err.message); }
    });
    li.appendChild(button);
    if (c.incident_id !== null) li.appendChild(textCallerButton(c.incident_id));
    return li;
  }) : [item(t("none"))]));
}

// A reloaded page keeps its session.
translate();
api("/console/session").then(start).catch(() => null);
