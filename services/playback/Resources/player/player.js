// The Marquee player page: sign in (auth), list titles (catalog), start a playback session
// (playback) and play its signed HLS playlist with the browser's own HLS support, with the
// title's poster and thumbnails shown while scrubbing. Priced titles are paid per minute watched
// (billing): the page shows the wallet's balance, the session's running cost, and, when playback
// is refused or cut for lack of funds (402), says so with a button to add funds. Titles the viewer
// left unfinished (analytics' watch history) are offered first, to resume where they stopped.
// Every call goes to the gateway that served this page; nothing is fetched from anywhere else.
"use strict";

const $ = (id) => document.getElementById(id);
const store = window.sessionStorage;

// MARK: - API calls

class ProblemError extends Error {
  constructor(status, detail, problem) {
    super(detail);
    this.status = status;
    this.problem = problem || {};
  }
}

async function call(method, path, body, retried, extraHeaders) {
  const headers = Object.assign({}, extraHeaders || {});
  const token = store.getItem("access_token");
  if (token) headers.Authorization = "Bearer " + token;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (response.status === 401 && !retried && store.getItem("refresh_token") && path !== "/api/auth/refresh") {
    if (await refresh()) return call(method, path, body, true, extraHeaders);
  }
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (_) { data = null; }
  if (!response.ok) {
    const detail = (data && data.detail) || text || response.statusText;
    throw new ProblemError(response.status, detail, data);
  }
  return data;
}

async function refresh() {
  try {
    const tokens = await call("POST", "/api/auth/refresh", { refresh_token: store.getItem("refresh_token") }, true);
    keepTokens(tokens);
    return true;
  } catch (_) {
    forgetTokens();
    return false;
  }
}

function keepTokens(tokens) {
  store.setItem("access_token", tokens.access_token);
  store.setItem("refresh_token", tokens.refresh_token);
}

function forgetTokens() {
  store.removeItem("access_token");
  store.removeItem("refresh_token");
}

// MARK: - Signing in and out

$("sign-in-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  $("sign-in-error").textContent = "";
  $("sign-in-button").disabled = true;
  try {
    const tokens = await call("POST", "/api/auth/login", { email: $("email").value, password: $("password").value });
    keepTokens(tokens);
    $("password").value = "";
    await showCatalog();
  } catch (error) {
    $("sign-in-error").textContent = error.message;
  } finally {
    $("sign-in-button").disabled = false;
  }
});

$("sign-out").addEventListener("click", async () => {
  const refreshToken = store.getItem("refresh_token");
  if (refreshToken) {
    try { await call("POST", "/api/auth/logout", { refresh_token: refreshToken }, true); } catch (_) { /* signed out anyway */ }
  }
  forgetTokens();
  stopPlayback();
  showSignIn();
});

function showSignIn() {
  $("sign-in").hidden = false;
  $("catalog").hidden = true;
  $("player").hidden = true;
  $("account").hidden = true;
  $("continue").hidden = true;
  $("resume-list").replaceChildren();
}

// MARK: - The catalog

let nextCursor = null;

async function showCatalog() {
  try {
    const me = await call("GET", "/api/auth/me");
    $("who").textContent = me.email + " (" + me.role + ")";
  } catch (error) {
    if (error.status === 401) { forgetTokens(); showSignIn(); return; }
  }
  $("sign-in").hidden = true;
  $("account").hidden = false;
  $("catalog").hidden = false;
  // The row goes in before the titles do, so the title cards never move once shown.
  await loadContinueWatching();
  await loadTitles(false);
  await showBalance();
}

async function loadTitles(more) {
  $("catalog-error").textContent = "";
  const query = new URLSearchParams({ limit: "24" });
  const text = $("search").value.trim();
  if (text) query.set("q", text);
  if (more && nextCursor) query.set("cursor", nextCursor);
  try {
    const page = await call("GET", "/api/catalog/titles?" + query.toString());
    if (!more) $("titles").replaceChildren();
    for (const title of page.items) {
      knownTitles.set(title.id, title);
      $("titles").append(titleCard(title));
    }
    const priced = page.items.find((title) => title.price_per_minute > 0);
    if (priced && !more) walletCurrency = priced.currency;
    nextCursor = page.next_cursor;
    $("more").hidden = !nextCursor;
    if (!more && page.items.length === 0) $("catalog-error").textContent = text ? "No title matches." : "No titles yet.";
  } catch (error) {
    $("catalog-error").textContent = error.message;
  }
}

function titleCard(title) {
  const item = document.createElement("li");
  item.dataset.titleId = title.id;
  const name = document.createElement("h3");
  name.textContent = title.name;
  const meta = document.createElement("span");
  meta.className = "meta";
  meta.textContent = [title.year, title.duration_seconds ? formatTime(title.duration_seconds) : null, title.genres.join(", "),
    title.price_per_minute ? formatPrice(title.price_per_minute, title.currency) + "/min" : "free"].filter(Boolean).join(" · ");
  const description = document.createElement("p");
  description.textContent = title.description;
  const play = document.createElement("button");
  play.type = "button";
  play.className = "primary play";
  play.textContent = "Play";
  play.addEventListener("click", () => startPlayback(title));
  item.append(name, meta, description, play);
  return item;
}

function formatPrice(minorUnits, currency) {
  try {
    return new Intl.NumberFormat(undefined, { style: "currency", currency }).format(minorUnits / 100);
  } catch (_) {
    return minorUnits + " " + currency;
  }
}

$("search-form").addEventListener("submit", (event) => { event.preventDefault(); loadTitles(false); });
$("more").addEventListener("click", () => loadTitles(true));

// MARK: - Playback

const video = $("video");
let thumbnails = [];

function setStatus(state, text) {
  $("status").dataset.state = state;
  $("status").textContent = text;
}

// `resumeAt`: a position in seconds to start from (continue watching), applied once the
// playlist's metadata is in.
async function startPlayback(title, resumeAt) {
  stopPlayback();
  $("player").hidden = false;
  $("now-playing").textContent = title.name;
  setStatus("starting", "Starting a playback session…");
  let session;
  try {
    session = await call("POST", "/api/playback/sessions", { title_id: title.id });
  } catch (error) {
    setStatus("refused", error.message);
    if (error.status === 402) showFundsNeeded(title, error);
    return;
  }
  currentTitle = title;
  currentSession = session;
  if (title.price_per_minute > 0) startMetering(title, session);
  $("session").textContent = "Session " + session.id + " · package " + session.package_version +
    " · URLs valid until " + new Date(session.expires_at).toLocaleString();
  video.poster = session.poster_url;
  loadThumbnails(session.thumbnails_url);
  if (!video.canPlayType("application/vnd.apple.mpegurl")) {
    setStatus("unsupported", "This browser cannot play HLS by itself. The DASH manifest: " + session.dash_url);
    return;
  }
  pendingResume = resumeAt > 0 ? resumeAt : null;
  video.src = session.hls_url;
  setStatus("loading", pendingResume ? "Resuming at " + formatTime(pendingResume) + "…" : "Loading…");
  $("player").scrollIntoView({ behavior: "smooth", block: "start" });
  try {
    await video.play();
  } catch (error) {
    if (error.name === "NotAllowedError") {
      // The browser wants a gesture for sound: start muted and say so.
      video.muted = true;
      updateMute();
      try { await video.play(); } catch (_) { setStatus("paused", "Press ▶ to play."); }
    } else if (error.name !== "AbortError") {
      setStatus("error", "Cannot play: " + error.message);
    }
  }
}

function stopPlayback() {
  stopMetering();
  pendingResume = null;
  $("funds").hidden = true;
  video.pause();
  video.removeAttribute("src");
  video.removeAttribute("poster");
  video.load();
  thumbnails = [];
  $("seek").max = 0;
  $("seek").value = 0;
  $("preview").hidden = true;
}

video.addEventListener("playing", () => setStatus("playing", "Playing"));
video.addEventListener("pause", () => { if (!video.ended) setStatus("paused", "Paused"); });
video.addEventListener("waiting", () => setStatus("buffering", "Buffering…"));
video.addEventListener("ended", () => setStatus("ended", "Finished"));
video.addEventListener("error", async () => {
  const error = video.error;
  if (!error || !video.getAttribute("src")) return;
  // A segment refused with 402 surfaces as a network error: ask billing whether the money ran out.
  if (currentSession && currentTitle && currentTitle.price_per_minute > 0 && await sessionCutForFunds()) return;
  const kinds = { 1: "aborted", 2: "network error", 3: "decoding error", 4: "source not supported" };
  setStatus("error", "Playback failed: " + (kinds[error.code] || "error " + error.code) + (error.message ? " (" + error.message + ")" : ""));
});
video.addEventListener("loadedmetadata", () => {
  $("seek").max = video.duration || 0;
  if (pendingResume !== null) {
    // Not past the end: a position recorded at the very end would otherwise play nothing.
    const end = isFinite(video.duration) ? Math.max(0, video.duration - 1) : pendingResume;
    video.currentTime = Math.min(pendingResume, end);
    pendingResume = null;
  }
  updateClock();
});
video.addEventListener("timeupdate", () => {
  if (!seeking) $("seek").value = video.currentTime;
  updateClock();
});
video.addEventListener("play", () => { $("play-pause").textContent = "❚❚"; $("play-pause").setAttribute("aria-label", "Pause"); });
video.addEventListener("pause", () => { $("play-pause").textContent = "▶"; $("play-pause").setAttribute("aria-label", "Play"); });

$("play-pause").addEventListener("click", () => { if (video.paused) video.play().catch(() => {}); else video.pause(); });
$("mute").addEventListener("click", () => { video.muted = !video.muted; updateMute(); });
$("fullscreen").addEventListener("click", () => {
  if (document.fullscreenElement) document.exitFullscreen(); else $("player").querySelector(".screen").requestFullscreen().catch(() => {});
});

function updateMute() {
  $("mute").textContent = video.muted ? "Unmute" : "Mute";
}

function updateClock() {
  $("clock").textContent = formatTime(video.currentTime || 0) + " / " + formatTime(video.duration || 0);
}

function formatTime(seconds) {
  if (!isFinite(seconds)) return "0:00";
  const whole = Math.floor(seconds);
  const h = Math.floor(whole / 3600), m = Math.floor((whole % 3600) / 60), s = whole % 60;
  const two = (n) => String(n).padStart(2, "0");
  return h > 0 ? h + ":" + two(m) + ":" + two(s) : m + ":" + two(s);
}

// MARK: - Continue watching

let pendingResume = null;        // seconds to seek to once the metadata is loaded
const knownTitles = new Map();   // id → title (from the catalog pages loaded, or looked up); null: not playable

// The viewer's unfinished titles from analytics, newest first, at most 10, one per title. No row at
// all when analytics is not behind this gateway (404), fails, is slow, or has nothing unfinished.
async function loadContinueWatching() {
  let items = [];
  try {
    const history = await withTimeout(call("GET", "/api/analytics/me/history"), 5000);
    items = (history && Array.isArray(history.items) ? history.items : [])
      .filter((item) => !item.completed && item.title_id)
      .sort((a, b) => (Date.parse(b.last_watched_at) || 0) - (Date.parse(a.last_watched_at) || 0));
  } catch (_) {
    items = [];
  }
  const seen = new Set();
  items = items.filter((item) => !seen.has(item.title_id) && seen.add(item.title_id)).slice(0, 10);
  // A title the catalog no longer shows this viewer cannot be played: it is left out.
  const titles = await Promise.all(items.map((item) => titleFor(item.title_id)));
  const cards = items.map((item, index) => titles[index] ? resumeCard(titles[index], item) : null).filter(Boolean);
  $("resume-list").replaceChildren(...cards);
  $("continue").hidden = cards.length === 0;
}

async function titleFor(id) {
  if (!knownTitles.has(id)) {
    try {
      knownTitles.set(id, await withTimeout(call("GET", "/api/catalog/titles/" + encodeURIComponent(id)), 5000));
    } catch (_) {
      knownTitles.set(id, null);
    }
  }
  return knownTitles.get(id);
}

function withTimeout(promise, ms) {
  return Promise.race([promise, new Promise((_, reject) => setTimeout(() => reject(new Error("timed out")), ms))]);
}

function resumeCard(title, item) {
  const position = Math.max(0, Number(item.position_seconds) || 0);
  const duration = Number(item.duration_seconds) || title.duration_seconds || 0;
  const entry = document.createElement("li");
  entry.dataset.testid = "resume-" + title.id;
  entry.dataset.titleId = title.id;
  entry.dataset.position = String(position);
  const button = document.createElement("button");
  button.type = "button";
  button.className = "resume-button";
  const name = document.createElement("span");
  name.className = "name";
  name.textContent = title.name;
  const progress = document.createElement("span");
  progress.className = "progress";
  const fill = document.createElement("span");
  fill.style.width = (duration > 0 ? Math.min(100, (position / duration) * 100) : 0) + "%";
  progress.append(fill);
  const meta = document.createElement("span");
  meta.className = "meta";
  meta.textContent = "Resume at " + formatTime(position) + (duration > position ? " · " + formatTime(duration - position) + " left" : "");
  button.append(name, progress, meta);
  button.addEventListener("click", () => startPlayback(title, position));
  entry.append(button);
  return entry;
}

// MARK: - Scrubbing with thumbnails

let seeking = false;
const seek = $("seek");

seek.addEventListener("input", () => {
  seeking = true;
  showPreview(Number(seek.value), positionOf(Number(seek.value)));
});
seek.addEventListener("change", () => {
  video.currentTime = Number(seek.value);
  seeking = false;
  $("preview").hidden = true;
});
seek.addEventListener("mousemove", (event) => {
  const box = seek.getBoundingClientRect();
  const fraction = Math.min(1, Math.max(0, (event.clientX - box.left) / box.width));
  showPreview(fraction * (Number(seek.max) || 0), fraction);
});
seek.addEventListener("mouseleave", () => { if (!seeking) $("preview").hidden = true; });

function positionOf(time) {
  const max = Number(seek.max) || 0;
  return max > 0 ? time / max : 0;
}

function showPreview(time, fraction) {
  const cue = thumbnails.find((c) => time >= c.start && time < c.end) || thumbnails[thumbnails.length - 1];
  $("preview-time").textContent = formatTime(time);
  const image = $("preview-image");
  if (cue) {
    image.style.width = cue.w + "px";
    image.style.height = cue.h + "px";
    image.style.backgroundImage = "url(\"" + cue.url + "\")";
    image.style.backgroundPosition = -cue.x + "px " + -cue.y + "px";
    image.hidden = false;
  } else {
    image.hidden = true;
  }
  $("preview").style.left = (fraction * 100) + "%";
  $("preview").hidden = false;
}

// The thumbnail track: WebVTT cues whose text is `sprite.jpg#xywh=x,y,w,h`, relative to the
// track's own (signed) URL, so the sprites inherit the token.
async function loadThumbnails(url) {
  try {
    const response = await fetch(url);
    if (!response.ok) return;
    thumbnails = parseThumbnails(await response.text(), url);
  } catch (_) {
    thumbnails = [];
  }
}

function parseThumbnails(text, base) {
  const cues = [];
  const blocks = text.replace(/\r/g, "").split(/\n\n+/);
  for (const block of blocks) {
    const lines = block.split("\n").filter((line) => line.trim() !== "");
    const timing = lines.findIndex((line) => line.includes("-->"));
    if (timing < 0 || timing + 1 >= lines.length) continue;
    const [from, to] = lines[timing].split("-->").map((part) => parseTimestamp(part.trim().split(/\s+/)[0]));
    const target = lines[timing + 1].trim();
    const hash = target.indexOf("#xywh=");
    if (hash < 0 || from === null || to === null) continue;
    const [x, y, w, h] = target.slice(hash + 6).split(",").map(Number);
    if ([x, y, w, h].some((n) => !isFinite(n))) continue;
    cues.push({ start: from, end: to, url: new URL(target.slice(0, hash), base).href, x, y, w, h });
  }
  return cues;
}

function parseTimestamp(text) {
  const parts = text.split(":").map(Number);
  if (parts.some((n) => !isFinite(n))) return null;
  return parts.reduce((total, part) => total * 60 + part, 0);
}

// MARK: - Paying per minute

let walletCurrency = "EUR";
let currentTitle = null;
let currentSession = null;
let meterTimer = null;
let pendingDeposit = null;  // the Idempotency-Key of a deposit not yet confirmed, reused on retry

async function fetchWallet() {
  try {
    return await call("GET", "/api/billing/wallet?currency=" + encodeURIComponent(walletCurrency));
  } catch (_) {
    return null;  // no billing service behind this gateway
  }
}

function displayBalance(wallet) {
  if (wallet) $("balance").textContent = "Balance " + formatPrice(wallet.balance, wallet.currency);
  $("balance").hidden = !wallet;
}

async function showBalance() {
  displayBalance(await fetchWallet());
}

function startMetering(title, session) {
  $("cost").hidden = false;
  $("cost").textContent = formatPrice(title.price_per_minute, title.currency) + " per minute watched";
  meterTimer = setInterval(updateCost, 3000);
}

function stopMetering() {
  if (meterTimer) clearInterval(meterTimer);
  meterTimer = null;
  $("cost").hidden = true;
  currentSession = null;
  currentTitle = null;
}

async function updateCost() {
  if (!currentSession) return;
  // The session first, then the wallet, shown together: the page never shows a minute charged
  // beside a balance read before that charge.
  const title = currentTitle;
  const billed = await call("GET", "/api/billing/sessions/" + encodeURIComponent(currentSession.id)).catch(() => null);
  displayBalance(await fetchWallet());
  if (!billed || !currentTitle) return;  // the next tick tries again
  $("cost").textContent = "Watched " + billed.billed_minutes + " min · " + formatPrice(billed.charged, billed.currency) +
    " so far at " + formatPrice(title.price_per_minute, title.currency) + "/min";
  if (billed.state === "revoked") showFundsNeeded(title, null);
}

async function sessionCutForFunds() {
  try {
    const billed = await call("GET", "/api/billing/sessions/" + encodeURIComponent(currentSession.id));
    if (billed.state !== "revoked") return false;
    showFundsNeeded(currentTitle, null);
    return true;
  } catch (_) {
    return false;
  }
}

function showFundsNeeded(title, error) {
  const price = formatPrice(title.price_per_minute, title.currency);
  const shortfall = error && error.problem && error.problem.shortfall !== undefined
    ? " You need " + formatPrice(error.problem.shortfall, title.currency) + " more." : "";
  if (!error) {
    setStatus("no-funds", "Playback stopped: your balance ran out.");
    video.pause();
  }
  $("funds-message").textContent = (error ? "Not enough funds to start " + title.name + " at " + price + "/min." + shortfall
    : "Your balance ran out while watching " + title.name + ".") + " Add funds to keep watching.";
  $("deposit").textContent = "Add " + formatPrice(500, title.currency);
  $("deposit").dataset.titleId = title.id;
  $("deposit").dataset.currency = title.currency;
  $("deposit-error").textContent = "";
  $("funds").hidden = false;
  if (meterTimer) clearInterval(meterTimer);
  meterTimer = null;
  showBalance();
}

$("deposit").addEventListener("click", async () => {
  const title = { id: $("deposit").dataset.titleId, currency: $("deposit").dataset.currency || walletCurrency };
  pendingDeposit = pendingDeposit || crypto.randomUUID();
  $("deposit").disabled = true;
  $("deposit-error").textContent = "";
  try {
    await call("POST", "/api/billing/deposits", { amount: 500, currency: title.currency || walletCurrency }, false,
      { "Idempotency-Key": pendingDeposit });
    pendingDeposit = null;
    $("funds").hidden = true;
    await showBalance();
    const card = document.querySelector('#titles li[data-title-id="' + CSS.escape(title.id) + '"] button.play');
    if (card) card.click();
  } catch (error) {
    $("deposit-error").textContent = error.status === 403
      ? "Deposits are made by your provider here; ask an administrator to add funds." : error.message;
  } finally {
    $("deposit").disabled = false;
  }
});

// MARK: - Start

if (store.getItem("access_token")) showCatalog(); else showSignIn();
