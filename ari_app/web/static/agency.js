// An agency dispatcher's page: the incidents the 112 centre sent to this agency, live (server-sent
// events of these incidents only), and the acknowledgement "unit dispatched" the 112 operator sees.
// Plain JavaScript, nothing from the internet; every change is a POST with the session's CSRF token.
"use strict";

const TEXT = {
  id: {
    title: "Insiden dari 112", offline: "Terputus, menyambung ulang…", online: "Terhubung", logout: "Keluar",
    incidents: "Insiden untuk instansi ini", incident: "Insiden", status: "Status", arrived: "Masuk", caller: "Penelepon",
    type: "Jenis", priority: "Prioritas", location: "Lokasi", notes: "Catatan petugas 112", response: "Tanggapan",
    dispatch: "Unit diberangkatkan", ack_note: "Unit yang diberangkatkan (boleh kosong)", none: "tidak ada",
    play: "Putar rekaman", dispatched: "Unit diberangkatkan",
    statuses: { Open: "Dikirim, belum tersambung", Connected: "Tersambung", Closed: "Panggilan selesai" },
    types: { Emergency: "Darurat", Information: "Informasi", "Prank call": "Iseng", "Silent call": "Hening",
             Unclassified: "Belum diklasifikasikan" },
  },
  en: {
    title: "Incidents from 112", offline: "Disconnected, reconnecting…", online: "Connected", logout: "Log out",
    incidents: "Incidents for this agency", incident: "Incident", status: "Status", arrived: "Arrived", caller: "Caller",
    type: "Type", priority: "Priority", location: "Location", notes: "112 operator's notes", response: "Response",
    dispatch: "Unit dispatched", ack_note: "Unit sent (optional)", none: "none",
    play: "Play recording", dispatched: "Unit dispatched",
    statuses: { Open: "Sent, not connected yet", Connected: "Connected", Closed: "Call ended" },
    types: {},
  },
};

let lang = localStorage.getItem("ivr112.lang") || "id";
let me = null;
let current = null;
// The incident chosen last, and which showIncident call was made last: a change that comes
// while its read is on the way is read again, and an older read never overwrites a newer.
let chosen = null;
let reads = 0;
let boundaries = null;

const when = (iso) => (iso || "").slice(0, 16).replace("T", " ");
const ackText = (a) => `${t("dispatched")} (${a.by}, ${when(a.at)})${a.note ? " — " + a.note : ""}`;

async function refreshList() {
  const list = await api("/api/agency/incidents");
  $("#incidents").replaceChildren(...(list.length ? list.map((i) => {
    const li = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.dataset.incident = String(i.id);
    button.dataset.status = i.status;
    button.textContent = `#${i.id} ${when(i.arrived_at)} — ${i.caller_number || "-"} — ${t("statuses")[i.status] || i.status}`
      + (i.acks.length ? ` ✓` : "");
    button.addEventListener("click", () => showIncident(i.id));
    li.appendChild(button);
    return li;
  }) : [item(t("none"))]));
}

async function showIncident(id) {
  chosen = id;
  const read = ++reads;
  const incident = await api(`/api/agency/incidents/${id}`);
  if (read !== reads) return;  // a later read (a newer change, or another incident) is shown instead
  current = incident;
  const eido = incident.eido;
  $("#incident").hidden = false;
  $("#incident").dataset.incident = String(id);
  $("#i-id").textContent = `#${id}`;
  $("#i-status").textContent = t("statuses")[incident.status] || incident.status;
  $("#i-status").dataset.status = incident.status;
  $("#i-arrived").textContent = when(incident.arrived_at);
  $("#i-caller").textContent = incident.caller_number || "-";
  const kind = eido.incidentComponent.incidentTypeCommonRegistryText;
  $("#i-type").textContent = t("types")[kind] || kind;
  $("#i-priority").textContent = eido.incidentComponent.incidentPriority || "-";
  const places = eido.locationComponent.map((l) => ({
    latitude: l.latitude, longitude: l.longitude, radius_m: l.uncertaintyRadiusMeters, source: l.locationTypeDescription,
    description: [l.latitude !== null ? `${l.latitude}, ${l.longitude}` : "",
                  l.description || [l.kecamatan ? `Kecamatan ${l.kecamatan}` : "",
                                    l.uncertaintyRadiusMeters ? `±${Math.round(l.uncertaintyRadiusMeters)} m` : ""].filter(Boolean).join(", ")]
      .filter(Boolean).join(" — "),
  }));
  $("#i-locations").replaceChildren(...(places.length ? places.map((p) => item(p.description)) : [item(t("none"))]));
  drawKecamatanMap($("#map"), boundaries, places);
  const notes = eido.notesComponent.map((n) => n.noteText).join("\n");
  $("#i-notes").textContent = notes || t("none");
  $("#i-recordings").replaceChildren(...incident.recordings.map(recordingPlayer));
  $("#i-acks").replaceChildren(...(incident.acks.length ? incident.acks.map((a) => item(ackText(a))) : [item(t("none"))]));
}

$("#ack").addEventListener("click", async () => {
  if (!current) return;
  try {
    await api(`/api/agency/incidents/${current.id}/ack`, { note: $("#ack-note").value });
    $("#ack-note").value = "";
    await showIncident(current.id);
  } catch (err) { $("#message").textContent = err.message; }
});

$("#logout").addEventListener("click", async () => {
  await api("/console/logout", {}).catch(() => null);
  location.replace("/");
});

onLanguage(() => {
  if (!me) return;
  refreshList();
  if (current) showIncident(current.id);
});

function listen() {
  const stream = liveStream("/api/agency/stream");
  stream.addEventListener("incident", (e) => {
    const change = JSON.parse(e.data);
    refreshList();
    if (change.id === chosen) showIncident(chosen);
  });
}

async function start(session) {
  if (!session.role.startsWith("agency:")) { location.replace("/"); return; }
  me = session;
  $("#agency-view").hidden = false;
  $("#who").textContent = `${me.name} (${me.role.slice("agency:".length)})`;
  boundaries = await api("/api/boundaries").catch(() => null);
  await refreshList();
  listen();
}

translate();
api("/console/session").then(start).catch(() => location.replace("/"));
