// What the console's page and the agencies' page share: translation of the page (each page
// declares TEXT and lang), the API calls (a change carries the session's CSRF token, read from
// the page's `me`), and list items. Loaded before each page's own script.
"use strict";

const $ = (sel) => document.querySelector(sel);
const t = (key) => TEXT[lang][key] || key;

function translate() {
  document.documentElement.lang = lang;
  document.querySelectorAll("[data-t]").forEach((el) => { el.textContent = t(el.dataset.t); });
  document.querySelectorAll("[data-tp]").forEach((el) => { el.placeholder = t(el.dataset.tp); });
  $("#lang").textContent = lang === "id" ? "English" : "Bahasa Indonesia";
}

async function api(path, form) {
  const options = { credentials: "same-origin", headers: {} };
  if (form !== undefined) {
    options.method = "POST";
    options.headers["X-CSRF-Token"] = me ? me.csrf : "";
    options.body = new URLSearchParams(form);
  }
  const response = await fetch(path, options);
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

function item(text) {
  const li = document.createElement("li");
  li.textContent = text;
  return li;
}

// Server-sent events, with the header's live badge following the connection.
function liveStream(url) {
  const stream = new EventSource(url);
  stream.onopen = () => { $("#live").textContent = t("online"); $("#live").className = "live on"; $("#live").dataset.t = "online"; };
  stream.onerror = () => { $("#live").textContent = t("offline"); $("#live").className = "live off"; $("#live").dataset.t = "offline"; };
  return stream;
}

// The language button: the page translated, then `redraw` for what the page drew itself.
function onLanguage(redraw) {
  $("#lang").addEventListener("click", () => {
    lang = lang === "id" ? "en" : "id";
    localStorage.setItem("ivr112.lang", lang);
    translate();
    redraw();
  });
}

// A recording to play back ({url, kind}), fetched only when played.
function recordingPlayer(r) {
  const audio = document.createElement("audio");
  audio.controls = true;
  audio.preload = "none";
  audio.src = r.url;
  audio.title = `${t("play")}: ${r.kind}`;
  return audio;
}
