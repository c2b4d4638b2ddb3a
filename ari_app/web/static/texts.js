// Text to 112 (docs/text112.md): the chat panel. Its own file and its own stream listener so
// that it stays apart from the call console. A text is always shown with textContent: nothing
// a sender writes is ever rendered as HTML.
"use strict";

const TX = {
  id: { texts: "Pesan teks 112", none: "Tidak ada percakapan teks.", send: "Kirim", placeholder: "Tulis balasan…",
        position: "Posisi", noposition: "Belum ada posisi", urgent: "mendesak", close: "Tutup", closed: "Percakapan ditutup",
        emergency: "Darurat", information: "Informasi", prank: "Iseng", ghost: "Diam", auto: "otomatis", waiting: "menunggu",
        sent: "terkirim" },
  en: { texts: "Texts to 112", none: "No text conversations.", send: "Send", placeholder: "Write a reply…",
        position: "Position", noposition: "No position yet", urgent: "urgent", close: "Close", closed: "Conversation closed",
        emergency: "Emergency", information: "Information", prank: "Prank", ghost: "Silent", auto: "automatic", waiting: "waiting",
        sent: "sent" },
};
let textOpen = null;
let textQuick = {};

function tx(key) { return (TX[localStorage.getItem("ivr112.lang") || "id"] || TX.id)[key]; }

function textEl(tag, text, cls) {
  const el = document.createElement(tag);
  if (text !== undefined) el.textContent = text;
  if (cls) el.className = cls;
  return el;
}

async function textApi(path, form) {
  const options = { credentials: "same-origin", headers: {} };
  if (form !== undefined) {
    options.method = "POST";
    options.headers["X-CSRF-Token"] = (typeof me !== "undefined" && me) ? me.csrf : "";
    options.body = new URLSearchParams(form);
  }
  const response = await fetch(path, options);
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

async function refreshTexts() {
  const data = await textApi("/api/texts");
  textQuick = data.quick_replies;
  const list = document.querySelector("#text-list");
  list.replaceChildren();
  document.querySelector("#texts h2").textContent = tx("texts");
  if (!data.conversations.length) list.append(textEl("li", tx("none")));
  for (const c of data.conversations) {
    const item = textEl("li");
    const button = textEl("button", `${c.caller_number} · ${c.carrier.toUpperCase()}${c.priority === "urgent" ? " · " + tx("urgent") : ""}`);
    button.dataset.incident = c.id;
    button.addEventListener("click", () => openText(c.id));
    item.append(button);
    list.append(item);
  }
  if (textOpen !== null) await openText(textOpen);
}

async function openText(id) {
  textOpen = id;
  const data = await textApi(`/api/texts/${id}`);
  const panel = document.querySelector("#text-chat");
  panel.hidden = false;
  panel.dataset.incident = id;
  document.querySelector("#text-number").textContent = data.incident.caller_number;
  const log = document.querySelector("#text-log");
  log.replaceChildren();
  for (const m of data.texts) {
    const line = textEl("li", undefined, `text-${m.direction}`);
    const who = m.direction === "in" ? m.number : (m.author === "auto" ? tx("auto") : m.author);
    const state = m.direction === "out" ? ` (${m.notes.startsWith("sent") ? tx("sent") : tx("waiting")})` : "";
    line.append(textEl("small", `${m.at.slice(11, 19)} ${who}${state}`), textEl("p", m.body));
    line.dataset.direction = m.direction;
    log.append(line);
  }
  const where = document.querySelector("#text-position");
  const last = data.locations[data.locations.length - 1];
  where.textContent = last ? `${tx("position")}: ${last.latitude.toFixed(5)}, ${last.longitude.toFixed(5)}${last.radius_m ? " ±" + Math.round(last.radius_m) + " m" : ""}`
                           : tx("noposition");
  where.dataset.located = last ? "yes" : "no";
  await drawTextMap(data.locations);
  const quick = document.querySelector("#text-quick");
  quick.replaceChildren();
  for (const [key, texts] of Object.entries(textQuick)) {
    for (const language of ["id", "en"]) {
      const b = textEl("button", texts[language]);
      b.type = "button";
      b.dataset.quick = key;
      b.dataset.language = language;
      b.addEventListener("click", () => sendText({ quick: key, language }));
      quick.append(b);
    }
  }
  document.querySelector("#text-closed").hidden = !data.incident.closed_at;
}

// The conversation's positions on the console's map of the plan's kecamatan (console.js's drawMap).
async function drawTextMap(locations) {
  if (typeof drawMap !== "function") return;
  if (!boundaries) boundaries = await textApi("/api/boundaries").catch(() => null);
  drawMap(locations, document.querySelector("#text-map"));
}

async function sendText(form) {
  try {
    await textApi(`/api/texts/${textOpen}/reply`, form);
    await openText(textOpen);
  } catch (err) { document.querySelector("#text-error").textContent = err.message; }
}

function setupTexts() {
  document.querySelector("#text-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const input = document.querySelector("#text-input");
    if (!input.value.trim()) return;
    await sendText({ text: input.value });
    input.value = "";
  });
  document.querySelector("#text-input").placeholder = tx("placeholder");
  document.querySelector("#text-form button").textContent = tx("send");
  for (const b of document.querySelectorAll("#text-classify [data-category]")) {
    b.textContent = tx(b.dataset.category);
    b.addEventListener("click", () => textApi(`/api/incidents/${textOpen}/classify`, { category: b.dataset.category }).then(() => openText(textOpen)));
  }
  document.querySelector("#text-close").textContent = tx("close");
  document.querySelector("#text-close").addEventListener("click", async () => {
    await textApi(`/api/incidents/${textOpen}/close`, {});
    await openText(textOpen);
    await refreshTexts();
  });
  document.querySelector("#text-closed").textContent = tx("closed");
  const view = document.querySelector("#console-view");
  let started = false;
  const begin = () => {
    if (started || view.hidden) return;
    started = true;
    refreshTexts();
    const stream = new EventSource("/api/stream");
    stream.addEventListener("incident", (e) => {
      const change = JSON.parse(e.data);
      if (change.kind === "text" || change.kind === "closed" || (change.kind === "location" && change.id === textOpen)) refreshTexts();
    });
  };
  new MutationObserver(begin).observe(view, { attributes: true, attributeFilter: ["hidden"] });
  begin();
}

document.addEventListener("DOMContentLoaded", setupTexts);
