// The Marquee analytics dashboard: sign in (auth), then read one summary for the chosen range from
// GET /api/analytics/dashboard and draw it: headline tiles, time series as inline SVG, top titles
// (names from the catalog), quality of experience, countries, cache hits by edge, errors by status
// and revenue. It refreshes itself every 10 s. Publishers see their own titles, admins all;
// viewers get a 403, shown as such. Every call goes to the gateway that served this page.
//
// For tests: each tile and section has a data-testid; tiles and rows carry their raw numbers in
// data-* attributes (data-value, data-views, ...), and body gets data-loaded="1" after the first
// successful render (data-renders counts renders, data-error holds the last error's status).
"use strict";

const $ = (id) => document.getElementById(id);
const store = window.sessionStorage;  // the same keys as the player page, so one sign-in serves both in a tab
const REFRESH_MS = 10000;
const RANGES = {
  hour: { label: "last hour" },
  day: { label: "last 24 hours" },
  week: { label: "last 7 days" },
  month: { label: "last 30 days" },
};

// MARK: - API calls (as in the player page)

class ProblemError extends Error {
  constructor(status, detail, problem) {
    super(detail);
    this.status = status;
    this.problem = problem || {};
  }
}

async function call(method, path, body, retried) {
  const headers = {};
  const token = store.getItem("access_token");
  if (token) headers.Authorization = "Bearer " + token;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: "no-store" });
  } catch (_) {
    throw new ProblemError(0, "the gateway did not answer (network error)");
  }
  if (response.status === 401 && !retried && store.getItem("refresh_token") && path !== "/api/auth/refresh") {
    if (await refresh()) return call(method, path, body, true);
  }
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (_) { data = null; }
  if (!response.ok) {
    const detail = (data && (data.detail || data.title)) || text || response.statusText || "HTTP " + response.status;
    throw new ProblemError(response.status, detail, data);
  }
  return data;
}

// Refresh tokens are single use, so calls that meet a 401 together share one refresh: a second
// refresh with the same token would fail and sign the user out.
let refreshing = null;

function refresh() {
  if (!refreshing) {
    refreshing = (async () => {
      try {
        keepTokens(await call("POST", "/api/auth/refresh", { refresh_token: store.getItem("refresh_token") }, true));
        return true;
      } catch (_) {
        forgetTokens();
        return false;
      }
    })().finally(() => { refreshing = null; });
  }
  return refreshing;
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
    keepTokens(await call("POST", "/api/auth/login", { email: $("email").value, password: $("password").value }));
    $("password").value = "";
    await showDashboard();
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
  showSignIn("");
});

function showSignIn(message) {
  stopAutoRefresh();
  generation++;  // a load still under way must not draw over the sign-in form
  delete document.body.dataset.loaded;
  last = null;
  $("sign-in").hidden = false;
  $("dashboard").hidden = true;
  $("account").hidden = true;
  $("sign-in-error").textContent = message || "";
}

async function showDashboard() {
  try {
    const me = await call("GET", "/api/auth/me");
    $("who").textContent = me.email + " (" + me.role + ")";
  } catch (error) {
    if (error.status === 401) { forgetTokens(); showSignIn("Your session ended; sign in again."); return; }
  }
  $("sign-in").hidden = true;
  $("account").hidden = false;
  $("dashboard").hidden = false;
  selectRange(range);
  await load();
  startAutoRefresh();
}

// MARK: - Range and refreshing

let range = RANGES[store.getItem("dashboard_range")] ? store.getItem("dashboard_range") : "day";
let generation = 0;     // each load's number: only the newest may draw (a range change overtakes a slow load)
let loading = false;
let timer = null;
let last = null;        // the last summary drawn, redrawn when the window is resized
let renders = 0;

for (const button of document.querySelectorAll(".ranges button")) {
  button.addEventListener("click", () => {
    selectRange(button.dataset.range);
    load();
  });
}

function selectRange(name) {
  range = name;
  store.setItem("dashboard_range", name);
  document.body.dataset.range = name;
  for (const button of document.querySelectorAll(".ranges button")) {
    button.setAttribute("aria-pressed", String(button.dataset.range === name));
  }
}

function startAutoRefresh() {
  stopAutoRefresh();
  // A tick is skipped while a load is still under way or the tab is hidden, so a slow API never
  // has requests piling up.
  timer = setInterval(() => { if (!loading && !document.hidden) load(); }, REFRESH_MS);
}

function stopAutoRefresh() {
  if (timer) clearInterval(timer);
  timer = null;
}

async function load() {
  const mine = ++generation;
  loading = true;
  try {
    const summary = await call("GET", "/api/analytics/dashboard?range=" + encodeURIComponent(range));
    await resolveNames([...(summary.top_titles || []), ...(summary.revenue || [])].map((row) => row.title_id).filter(Boolean));
    if (mine !== generation) return;
    render(summary);
    showError(null);
  } catch (error) {
    if (mine !== generation) return;
    showError(error);
  } finally {
    if (mine === generation) loading = false;
  }
}

function showError(error) {
  const banner = $("error");
  if (!error) {
    banner.hidden = true;
    banner.textContent = "";
    delete document.body.dataset.error;
    return;
  }
  document.body.dataset.error = String(error.status);
  if (error.status === 401) { forgetTokens(); showSignIn("Your session ended; sign in again."); return; }
  if (error.status === 403) {
    // A viewer (or a publisher whose role was taken away): nothing here will change by retrying.
    stopAutoRefresh();
    $("content").hidden = true;
    $("toolbar").hidden = true;
    banner.textContent = "This dashboard is for publishers and admins.";
  } else {
    banner.textContent = "Could not load analytics: " + error.message + (last ? " (showing the last figures read)" : "");
    if (last) {
      $("updated").classList.add("stale");
    } else {
      $("content").hidden = true;
    }
  }
  banner.hidden = false;
}

let resizeTimer = null;
window.addEventListener("resize", () => {
  clearTimeout(resizeTimer);
  resizeTimer = setTimeout(() => { if (last) renderSeries(last); }, 150);
});

// MARK: - Title names (from the catalog, cached; a title it does not show keeps its id)

const names = new Map();

async function resolveNames(ids) {
  const missing = [...new Set(ids)].filter((id) => !names.has(id));
  await Promise.all(missing.map(async (id) => {
    try {
      const title = await call("GET", "/api/catalog/titles/" + encodeURIComponent(id));
      names.set(id, title && title.name ? title.name : null);
    } catch (_) {
      names.set(id, null);
    }
  }));
}

// MARK: - Formatting

const numberFormat = new Intl.NumberFormat("en-US");

function formatCount(n) {
  return n === null || n === undefined ? "—" : numberFormat.format(Math.round(n));
}

// Averages such as concurrent viewers (0.4 sessions at once): one decimal below 10.
function formatAverage(n) {
  if (n === null || n === undefined || !isFinite(n)) return "—";
  return Number.isInteger(n) || n >= 10 ? formatCount(n) : n.toFixed(1);
}

// Watch time as hours and minutes ("2 h 05 min"), minutes alone under an hour, seconds under a minute.
function formatDuration(seconds) {
  if (seconds === null || seconds === undefined || !isFinite(seconds)) return "—";
  const s = Math.round(seconds);
  if (s < 60) return s + " s";
  const minutes = Math.round(s / 60);
  if (minutes < 60) return minutes + " min";
  const h = Math.floor(minutes / 60), m = minutes % 60;
  return numberFormat.format(h) + " h " + String(m).padStart(2, "0") + " min";
}

function formatPercent(ratio) {
  if (ratio === null || ratio === undefined || !isFinite(ratio)) return "—";
  const pct = ratio * 100;
  const digits = pct === 0 || pct >= 100 ? 0 : pct < 1 ? 2 : 1;
  return pct.toFixed(digits) + "%";
}

function formatBitrate(kbps) {
  if (kbps === null || kbps === undefined || !isFinite(kbps)) return "—";
  if (kbps < 1000) return Math.round(kbps) + " kbit/s";
  return (kbps / 1000).toFixed(kbps < 10000 ? 2 : 1) + " Mbit/s";
}

function formatMs(ms) {
  if (ms === null || ms === undefined || !isFinite(ms)) return "—";
  return ms < 10000 ? numberFormat.format(Math.round(ms)) + " ms" : (ms / 1000).toFixed(1) + " s";
}

function formatBytes(bytes) {
  if (bytes === null || bytes === undefined || !isFinite(bytes)) return "—";
  const units = ["B", "kB", "MB", "GB", "TB", "PB"];
  let value = bytes, unit = 0;
  while (value >= 1000 && unit < units.length - 1) { value /= 1000; unit++; }
  return (unit === 0 ? value : value.toFixed(value < 10 ? 2 : 1)) + " " + units[unit];
}

// Amounts are integer minor units: 1234 EUR is "EUR 12.34" (JPY has no minor unit: 1234 JPY is "JPY 1,234").
function formatMoney(minor, currency) {
  let digits = 2;
  try { digits = new Intl.NumberFormat("en", { style: "currency", currency }).resolvedOptions().maximumFractionDigits; } catch (_) { /* unknown code: 2 */ }
  const amount = minor / Math.pow(10, digits);
  return currency + " " + amount.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

// Compact axis labels: 1.2k, 3.4M.
function formatCompact(n) {
  const abs = Math.abs(n);
  if (abs >= 1e6) return +(n / 1e6).toFixed(1) + "M";
  if (abs >= 1e3) return +(n / 1e3).toFixed(1) + "k";
  return String(+n.toFixed(1));
}

const regionNames = (() => { try { return new Intl.DisplayNames(["en"], { type: "region" }); } catch (_) { return null; } })();

function countryName(code) {
  if (!code || code === "unknown") return "Unknown";
  try { return (regionNames && regionNames.of(code)) || code; } catch (_) { return code; }
}

const STATUS_TEXT = {
  400: "Bad request", 401: "Unauthorized", 402: "Payment required", 403: "Forbidden", 404: "Not found",
  408: "Request timeout", 410: "Gone", 416: "Range not satisfiable", 429: "Too many requests",
  451: "Unavailable for legal reasons", 500: "Internal server error", 502: "Bad gateway",
  503: "Service unavailable", 504: "Gateway timeout",
};

// Traffic-light thresholds for quality figures (lower is better unless `higherIsBetter`).
function quality(value, good, bad, higherIsBetter) {
  if (value === null || value === undefined || !isFinite(value)) return null;
  if (higherIsBetter) return value >= good ? "good" : value >= bad ? "warn" : "bad";
  return value <= good ? "good" : value <= bad ? "warn" : "bad";
}

// MARK: - DOM helpers

// h("td", { class: "num", "data-views": 3 }, "text", child): attributes, then children (strings become text).
function h(tag, attributes, ...children) {
  const node = document.createElement(tag);
  setAttributes(node, attributes);
  node.append(...children.flat().filter((child) => child !== null && child !== undefined && child !== false));
  return node;
}

const SVG_NS = "http://www.w3.org/2000/svg";

function s(tag, attributes, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  setAttributes(node, attributes);
  node.append(...children.flat().filter((child) => child !== null && child !== undefined && child !== false));
  return node;
}

function setAttributes(node, attributes) {
  for (const [name, value] of Object.entries(attributes || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "style") Object.assign(node.style, value); else node.setAttribute(name, String(value));
  }
}

function section(testId) {
  return document.querySelector('[data-testid="' + testId + '"]');
}

function empty(text) {
  return h("div", { class: "empty" }, text);
}

// A horizontal bar with its figure: fraction 0…1 of the track.
function bar(fraction, figure, tone) {
  const width = Math.max(0, Math.min(1, fraction || 0)) * 100;
  return h("div", { class: "bar" },
    h("span", { class: "track" }, h("span", { class: "fill" + (tone ? " " + tone : ""), style: { width: width + "%" } })),
    h("span", { class: "figure" }, figure));
}

function table(headers, rows, footer) {
  return h("table", null,
    h("thead", null, h("tr", null, headers.map(([text, cls]) => h("th", { class: cls }, text)))),
    h("tbody", null, rows),
    footer ? h("tfoot", null, footer) : null);
}

// MARK: - Rendering

function render(summary) {
  last = summary;
  $("content").hidden = false;
  $("toolbar").hidden = false;
  renderSpan(summary);
  renderTiles(summary.totals || {}, summary.revenue || []);
  renderSeries(summary);
  renderTopTitles(summary.top_titles || []);
  renderQoE(summary.totals || {});
  renderCountries(summary.countries || []);
  renderEdges(summary.edges || []);
  renderErrors(summary.errors || []);
  renderRevenue(summary.revenue || []);
  renders++;
  document.body.dataset.renders = String(renders);
  document.body.dataset.loaded = "1";
}

const dateTime = new Intl.DateTimeFormat("en-GB", { day: "numeric", month: "short", hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
const clock = new Intl.DateTimeFormat("en-GB", { hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" });

function renderSpan(summary) {
  const from = new Date(summary.from), to = new Date(summary.to);
  $("span").textContent = dateTime.format(from) + " – " + dateTime.format(to) + " · by " + (summary.grain || "?");
  $("updated").textContent = "Updated " + clock.format(new Date()) + " · refreshes every " + REFRESH_MS / 1000 + " s";
  $("updated").classList.remove("stale");
}

function setTile(testId, value, text, sub, tone) {
  const tile = section(testId);
  tile.dataset.value = value === null || value === undefined ? "" : typeof value === "object" ? JSON.stringify(value) : String(value);
  // Several lines (revenue in several currencies) are stacked in a smaller type.
  const lines = Array.isArray(text) ? text : [text];
  const valueNode = tile.querySelector(".value");
  valueNode.replaceChildren(...lines.map((line) => h("span", null, line)));
  valueNode.classList.toggle("small", lines.length > 1 || lines[0].length > 14);
  tile.querySelector(".sub").textContent = sub || "";
  if (tone) tile.dataset.quality = tone; else delete tile.dataset.quality;
}

function renderTiles(t, revenue) {
  const views = t.views || 0;
  setTile("views", views, formatCount(views), t.bytes ? formatBytes(t.bytes) + " delivered" : "");
  setTile("unique-viewers", t.unique_viewers, formatCount(t.unique_viewers),
    t.unique_viewers ? (views / t.unique_viewers).toFixed(1) + " views per viewer" : "");
  setTile("watch-time", t.watch_seconds || 0, formatDuration(t.watch_seconds || 0),
    views ? formatDuration((t.watch_seconds || 0) / views) + " per view" : "");
  setTile("completion-rate", t.completion_rate, views ? formatPercent(t.completion_rate) : "—", "of views watched to the end");
  setTile("startup-time", t.startup_ms_avg, formatMs(t.startup_ms_avg), "start to first segment delivered", quality(t.startup_ms_avg, 1000, 2500));
  setTile("rebuffer-ratio", t.rebuffer_ratio, formatPercent(t.rebuffer_ratio),
    formatCount(t.rebuffers || 0) + " rebuffer" + (t.rebuffers === 1 ? "" : "s"), quality(t.rebuffer_ratio, 0.01, 0.03));
  setTile("bitrate", t.average_bitrate_kbps, formatBitrate(t.average_bitrate_kbps),
    formatCount(t.switches || 0) + " rendition switch" + (t.switches === 1 ? "" : "es"));
  setTile("cache-hit-ratio", t.cache_hit_ratio, formatPercent(t.cache_hit_ratio),
    "of " + formatCount(t.requests || 0) + " requests", quality(t.cache_hit_ratio, 0.8, 0.5, true));
  setTile("errors", t.errors || 0, formatCount(t.errors || 0),
    t.requests ? formatPercent((t.errors || 0) / t.requests) + " of requests" : "", (t.errors || 0) > 0 ? "warn" : null);

  // Revenue: gross per currency, each in its own minor units.
  const gross = {}, minutes = {};
  for (const row of revenue) {
    gross[row.currency] = (gross[row.currency] || 0) + (row.gross || 0);
    minutes[row.currency] = (minutes[row.currency] || 0) + (row.minutes || 0);
  }
  const currencies = Object.keys(gross).sort();
  const paidMinutes = Object.values(minutes).reduce((a, b) => a + b, 0);
  setTile("revenue", gross, currencies.length ? currencies.map((c) => formatMoney(gross[c], c)) : "—",
    currencies.length ? formatCount(paidMinutes) + " paid minutes" : "no paid minutes in this range");
}

// MARK: - Time series

const GRAIN_MS = { minute: 60e3, hour: 3600e3, day: 86400e3 };

// One point per bucket from `from` to `to`: the API may leave out empty buckets, drawn here as 0.
function buckets(summary) {
  const step = GRAIN_MS[summary.grain] || 3600e3;
  const from = Date.parse(summary.from), to = Date.parse(summary.to);
  const byTime = new Map();
  const zero = (t) => ({ t, views: 0, watch_seconds: 0, concurrent_viewers: 0, bytes: 0, errors: 0 });
  if (isFinite(from) && isFinite(to)) {
    // Buckets start at whole minutes, hours or (UTC) days, as the API's do.
    for (let t = Math.floor(from / step) * step; t < to && byTime.size < 2000; t += step) byTime.set(t, zero(t));
  }
  for (const point of summary.series || []) {
    const parsed = Date.parse(point.t);
    if (!isFinite(parsed)) continue;
    const t = Math.floor(parsed / step) * step;
    const bucket = byTime.get(t) || zero(t);
    for (const key of ["views", "watch_seconds", "concurrent_viewers", "bytes", "errors"]) {
      bucket[key] = key === "concurrent_viewers" ? Math.max(bucket[key], point[key] || 0) : bucket[key] + (point[key] || 0);
    }
    byTime.set(t, bucket);
  }
  return [...byTime.values()].sort((a, b) => a.t - b.t);
}

function timeLabel(t, grain, long) {
  const date = new Date(t);
  if (grain === "day") {
    // Day buckets are UTC days: name them in UTC so they never shift by one.
    return date.toLocaleDateString("en-GB", { timeZone: "UTC", day: "numeric", month: "short", weekday: long ? "short" : undefined });
  }
  const time = date.toLocaleTimeString("en-GB", { hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
  return long && grain === "hour" ? date.toLocaleDateString("en-GB", { day: "numeric", month: "short" }) + " " + time : time;
}

function renderSeries(summary) {
  const points = buckets(summary);
  const grain = summary.grain;
  const watch = points.map((p) => p.watch_seconds);
  const maxWatch = Math.max(0, ...watch);
  // Watch time's axis in the unit that keeps its numbers small.
  const [unit, suffix] = maxWatch >= 7200 ? [3600, " h"] : maxWatch >= 120 ? [60, " min"] : [1, " s"];
  const totals = summary.totals || {};
  drawChart(section("series-views"), points, {
    values: points.map((p) => p.views), integer: true, grain,
    tip: (p) => formatCount(p.views) + " view" + (p.views === 1 ? "" : "s"),
    figure: formatCount(totals.views || 0), empty: "No views yet in this range",
  });
  drawChart(section("series-watch-time"), points, {
    values: watch.map((w) => w / unit), integer: false, suffix, grain,
    tip: (p) => formatDuration(p.watch_seconds) + " watched",
    figure: formatDuration(totals.watch_seconds || 0), empty: "No views yet in this range",
  });
  const concurrent = points.map((p) => p.concurrent_viewers);
  drawChart(section("series-concurrent"), points, {
    // The API's figure is the average number of sessions watching at once over each bucket.
    values: concurrent, integer: false, grain,
    tip: (p) => formatAverage(p.concurrent_viewers) + " watching at once (average)",
    figure: "peak " + formatAverage(Math.max(0, ...concurrent)), empty: "No viewers yet in this range",
  });
}

// A tick step of 1, 2 or 5 × 10^k giving about four intervals up to `max`.
function niceStep(max, integer) {
  const raw = max / 4;
  const power = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 5, 10].map((f) => f * power).find((candidate) => candidate >= raw);
  return integer ? Math.max(1, Math.ceil(step)) : step;
}

function drawChart(panel, points, options) {
  const box = panel.querySelector(".chart");
  const heading = panel.querySelector("h2");
  let figure = heading.querySelector(".figure");
  if (!figure) { figure = h("span", { class: "figure" }); heading.append(figure); }
  figure.textContent = options.figure;
  const values = options.values;
  const total = values.reduce((a, b) => a + b, 0);
  panel.dataset.points = String(points.length);
  panel.dataset.total = String(total);
  if (!points.length || values.every((v) => v === 0)) {
    box.replaceChildren(empty(options.empty));
    return;
  }

  const width = Math.max(200, box.clientWidth || 400), height = Math.max(120, box.clientHeight || 190);
  const left = options.suffix ? 52 : 40, right = 8, top = 8, bottom = 22;
  const plotW = width - left - right, plotH = height - top - bottom;
  const max = Math.max(...values);
  const step = niceStep(max, options.integer);
  const yMax = Math.ceil(max / step) * step || step;
  const x = (i) => left + (points.length === 1 ? plotW / 2 : (i * plotW) / (points.length - 1));
  const y = (v) => top + plotH - (v / yMax) * plotH;

  const svg = s("svg", { viewBox: "0 0 " + width + " " + height, role: "img", "aria-label": panel.querySelector("h2").firstChild.textContent });
  // Horizontal grid lines with their values.
  for (let v = 0; v <= yMax + step / 2; v += step) {
    svg.append(s("line", { class: "grid-line", x1: left, x2: width - right, y1: y(v), y2: y(v) }),
      s("text", { class: "axis-label", x: left - 6, y: y(v) + 4, "text-anchor": "end" }, formatCompact(v) + (v > 0 && options.suffix ? options.suffix : "")));
  }
  // About six time labels along the bottom.
  const every = Math.max(1, Math.ceil(points.length / 6));
  for (let i = 0; i < points.length; i += every) {
    const anchor = points.length === 1 ? "middle" : i === 0 ? "start" : i === points.length - 1 ? "end" : "middle";
    svg.append(s("text", { class: "axis-label", x: x(i), y: height - 6, "text-anchor": anchor }, timeLabel(points[i].t, options.grain, false)));
  }
  const line = values.map((v, i) => (i === 0 ? "M" : "L") + x(i).toFixed(1) + "," + y(v).toFixed(1)).join("");
  if (points.length > 1) {
    svg.append(s("path", { class: "area", d: line + "L" + x(points.length - 1).toFixed(1) + "," + y(0) + "L" + x(0).toFixed(1) + "," + y(0) + "Z" }));
  }
  svg.append(s("path", { class: "line", d: line }));
  if (points.length <= 31) {
    values.forEach((v, i) => svg.append(s("circle", { class: "dot", cx: x(i), cy: y(v), r: points.length === 1 ? 4 : 2.5 })));
  }
  // Hover: one transparent band per bucket whose <title> is the tooltip.
  const band = points.length === 1 ? plotW : plotW / (points.length - 1);
  points.forEach((point, i) => {
    svg.append(s("rect", { class: "hover", x: Math.max(left, x(i) - band / 2), y: top, width: band, height: plotH },
      s("title", null, timeLabel(point.t, options.grain, true) + ": " + options.tip(point))));
  });
  box.replaceChildren(svg);
}

// MARK: - Tables

function titleCell(id) {
  const name = names.get(id);
  return h("td", { class: "name" }, name || id, name ? h("span", { class: "id" }, id) : h("span", { class: "id" }, "not in the catalog"));
}

function renderTopTitles(rows) {
  const body = section("top-titles").querySelector(".body");
  if (!rows.length) { body.replaceChildren(empty("No views yet in this range")); return; }
  const maxViews = Math.max(1, ...rows.map((r) => r.views || 0));
  body.replaceChildren(table(
    [["Title"], ["Views"], ["Unique viewers", "num"], ["Watch time", "num"], ["Completion", "num"]],
    rows.map((r) => h("tr", { "data-title-id": r.title_id, "data-name": names.get(r.title_id) || "", "data-views": r.views || 0,
      "data-watch-seconds": r.watch_seconds || 0, "data-unique-viewers": r.unique_viewers || 0 },
      titleCell(r.title_id),
      h("td", { class: "barcell" }, bar((r.views || 0) / maxViews, formatCount(r.views || 0))),
      h("td", { class: "num" }, formatCount(r.unique_viewers || 0)),
      h("td", { class: "num" }, formatDuration(r.watch_seconds || 0)),
      h("td", { class: "num" }, formatPercent(r.completion_rate))))));
}

function renderQoE(t) {
  const items = [
    ["startup", "Startup time (avg)", t.startup_ms_avg, formatMs(t.startup_ms_avg), quality(t.startup_ms_avg, 1000, 2500)],
    ["rebuffer-ratio", "Rebuffer ratio", t.rebuffer_ratio, formatPercent(t.rebuffer_ratio), quality(t.rebuffer_ratio, 0.01, 0.03)],
    ["rebuffers", "Rebuffers", t.rebuffers || 0, formatCount(t.rebuffers || 0), null],
    ["bitrate", "Average bitrate", t.average_bitrate_kbps, formatBitrate(t.average_bitrate_kbps), null],
    ["switches", "Rendition switches", t.switches || 0, formatCount(t.switches || 0), null],
    ["requests", "Requests", t.requests || 0, formatCount(t.requests || 0), null],
    ["bytes", "Data delivered", t.bytes || 0, formatBytes(t.bytes || 0), null],
  ];
  section("qoe").querySelector("dl").replaceChildren(...items.flatMap(([id, label, value, text, tone]) => [
    h("dt", null, label),
    h("dd", { "data-testid": "qoe-" + id, "data-value": value === null || value === undefined ? "" : value, "data-quality": tone }, text),
  ]));
}

function renderCountries(rows) {
  const body = section("countries").querySelector(".body");
  if (!rows.length) { body.replaceChildren(empty("No views yet in this range")); return; }
  const maxViews = Math.max(1, ...rows.map((r) => r.views || 0));
  body.replaceChildren(table(
    [["Country"], ["Views"], ["Watch time", "num"], ["Data", "num"]],
    rows.map((r) => h("tr", { "data-country": r.country, "data-views": r.views || 0, "data-watch-seconds": r.watch_seconds || 0, "data-bytes": r.bytes || 0 },
      h("td", { class: "name nowrap" }, h("span", { class: "tag" }, r.country === "unknown" ? "??" : r.country), " ", countryName(r.country)),
      h("td", { class: "barcell" }, bar((r.views || 0) / maxViews, formatCount(r.views || 0))),
      h("td", { class: "num" }, formatDuration(r.watch_seconds || 0)),
      h("td", { class: "num" }, formatBytes(r.bytes || 0))))));
}

function renderEdges(rows) {
  const body = section("edges").querySelector(".body");
  if (!rows.length) { body.replaceChildren(empty("No requests yet in this range")); return; }
  body.replaceChildren(table(
    [["Edge"], ["Role"], ["Region"], ["Requests", "num"], ["Hit ratio"], ["Data", "num"]],
    rows.map((r) => h("tr", { "data-edge": r.edge, "data-role": r.role, "data-requests": r.requests || 0,
      "data-cache-hit-ratio": r.cache_hit_ratio === null || r.cache_hit_ratio === undefined ? "" : r.cache_hit_ratio, "data-bytes": r.bytes || 0 },
      h("td", { class: "name nowrap" }, r.edge),
      h("td", null, r.role ? h("span", { class: "tag " + r.role }, r.role) : "—"),
      h("td", null, r.region || "—"),
      h("td", { class: "num" }, formatCount(r.requests || 0), h("span", { class: "sub" }, formatCount(r.hits || 0) + " hits · " + formatCount(r.misses || 0) + " misses")),
      // An origin mostly misses by design (edges in front of it hit): its bar stays neutral.
      h("td", { class: "barcell" }, bar(r.cache_hit_ratio || 0, formatPercent(r.cache_hit_ratio), r.role === "edge" ? quality(r.cache_hit_ratio, 0.8, 0.5, true) : null)),
      h("td", { class: "num" }, formatBytes(r.bytes || 0))))));
}

function renderErrors(rows) {
  const body = section("error-statuses").querySelector(".body");
  if (!rows.length) { body.replaceChildren(empty("No errors in this range")); return; }
  const sorted = [...rows].sort((a, b) => (b.count || 0) - (a.count || 0));
  const maxCount = Math.max(1, ...sorted.map((r) => r.count || 0));
  body.replaceChildren(table(
    [["Status"], ["Count"]],
    sorted.map((r) => h("tr", { "data-status": r.status, "data-count": r.count || 0 },
      h("td", { class: "name" }, h("span", { class: "status-code s" + String(r.status)[0] }, String(r.status)), " ", r.reason || STATUS_TEXT[r.status] || ""),
      h("td", { class: "barcell" }, bar((r.count || 0) / maxCount, formatCount(r.count || 0), r.status >= 500 ? "bad" : "warn"))))));
}

function renderRevenue(rows) {
  const body = section("revenue-days").querySelector(".body");
  if (!rows.length) { body.replaceChildren(empty("No revenue in this range")); return; }
  const sorted = [...rows].sort((a, b) => (b.day || "").localeCompare(a.day || "") || (a.currency || "").localeCompare(b.currency || "")
    || (b.gross || 0) - (a.gross || 0));
  const sums = {};
  for (const r of rows) {
    const sum = sums[r.currency] || (sums[r.currency] = { minutes: 0, gross: 0, publisher: 0, platform_fee: 0 });
    for (const key of Object.keys(sum)) sum[key] += r[key] || 0;
  }
  // Lines are per title when the API says which (title_id): then a title column.
  const byTitle = rows.some((r) => r.title_id);
  const footer = Object.keys(sums).sort().map((currency) => h("tr", { "data-total-currency": currency },
    h("td", null, "Total"), byTitle ? h("td", null) : null, h("td", null, currency), h("td", { class: "num" }, formatCount(sums[currency].minutes)),
    h("td", { class: "num" }, formatMoney(sums[currency].gross, currency)),
    h("td", { class: "num" }, formatMoney(sums[currency].publisher, currency)),
    h("td", { class: "num" }, formatMoney(sums[currency].platform_fee, currency))));
  body.replaceChildren(table(
    [["Day"], byTitle ? ["Title"] : null, ["Currency"], ["Minutes", "num"], ["Gross", "num"], ["Publisher", "num"], ["Platform fee", "num"]].filter(Boolean),
    sorted.map((r) => h("tr", { "data-day": r.day, "data-title-id": r.title_id, "data-currency": r.currency, "data-gross": r.gross || 0 },
      h("td", null, r.day), byTitle ? h("td", { class: "name" }, names.get(r.title_id) || r.title_id || "—") : null, h("td", null, r.currency), h("td", { class: "num" }, formatCount(r.minutes || 0)),
      h("td", { class: "num" }, formatMoney(r.gross || 0, r.currency)),
      h("td", { class: "num" }, formatMoney(r.publisher || 0, r.currency)),
      h("td", { class: "num" }, formatMoney(r.platform_fee || 0, r.currency)))),
    footer));
}

// MARK: - Start

selectRange(range);
if (store.getItem("access_token")) showDashboard(); else showSignIn("");
