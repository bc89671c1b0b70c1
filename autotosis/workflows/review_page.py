"""The page of ``autotosis review --serve``: one self-contained HTML document (no file, font or script
from anywhere else), filled in by its script from the server's JSON API.

Everything shown that comes from outside (video and clip names, paths, messages) is set as text
(``textContent``), never as HTML; the score curve is inline SVG drawn by the script.
"""

from __future__ import annotations

_PAGE = r"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>autotosis review</title>
<style nonce="__NONCE__">
:root { color-scheme: dark; --bg: #13161d; --panel: #1b1f29; --line: #2c3242; --text: #e6e8ee; --dim: #9aa3b5;
        --accept: #66bb6a; --reject: #ef5350; --unsure: #ffca28; --score: #4fc3f7; --span: #ffb74d; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--text); font: 14px/1.45 system-ui, sans-serif; }
header { display: flex; gap: 1.5em; align-items: baseline; padding: .6em 1em; border-bottom: 1px solid var(--line); }
h1 { font-size: 1.15em; margin: 0; }
#summary { color: var(--dim); }
#summary strong { color: var(--text); }
main { display: grid; grid-template-columns: 17em minmax(0, 1fr) 17em; gap: 1em; padding: 1em; }
@media (max-width: 1000px) { main { grid-template-columns: 1fr; } }
nav { max-height: calc(100vh - 5em); overflow-y: auto; }
nav h2 { font-size: 1em; margin: .8em 0 .3em; overflow-wrap: anywhere; }
nav h3 { font-size: .85em; color: var(--dim); margin: .5em 0 .2em; font-weight: normal; text-transform: uppercase; }
nav ul { list-style: none; margin: 0; padding: 0; }
nav button { width: 100%; text-align: left; background: var(--panel); color: var(--text);
             border: 1px solid transparent; border-radius: 4px; padding: .25em .5em; margin: 1px 0; font: inherit;
             cursor: pointer; display: flex; gap: .5em; }
nav button.current { border-color: var(--score); }
nav .badge { margin-left: auto; font-weight: bold; }
.accepted .badge, .decision.accepted { color: var(--accept); }
.rejected .badge, .decision.rejected { color: var(--reject); }
.unsure .badge, .decision.unsure { color: var(--unsure); }
#detail h2 { font-size: 1.05em; margin: 0 0 .5em; overflow-wrap: anywhere; }
video { width: 100%; max-height: 50vh; background: #000; border-radius: 4px; display: block; }
svg#curve { width: 100%; height: 150px; display: block; margin-top: .5em; background: var(--panel); border-radius: 4px;
            cursor: pointer; }
#curve .score { fill: none; stroke: var(--score); stroke-width: 2; }
#curve .threshold { stroke: var(--reject); stroke-dasharray: 6 4; stroke-width: 1.5; }
#curve .span { fill: var(--span); fill-opacity: .22; }
#curve .predicted { fill: none; stroke: var(--span); stroke-dasharray: 3 3; stroke-width: 1; }
#curve .playhead { stroke: var(--text); stroke-width: 1.5; }
#curve .grid { stroke: var(--line); stroke-width: 1; }
#curve line, #curve polyline, #curve rect { vector-effect: non-scaling-stroke; }
#curve text { fill: var(--dim); font-size: 12px; }
#message { background: #4a1f22; border: 1px solid var(--reject); border-radius: 4px; padding: .5em .8em;
           margin-bottom: .8em; }
#span { font-size: 1.1em; margin: .6em 0 .2em; }
#status { color: var(--dim); margin: .2em 0; }
pre { background: var(--panel); padding: .5em .7em; border-radius: 4px; white-space: pre-wrap; overflow-wrap: anywhere;
      margin: .3em 0; min-height: 2.3em; }
aside h2 { font-size: 1em; margin: 0 0 .4em; }
dl.keys { display: grid; grid-template-columns: auto 1fr; gap: .25em .7em; margin: 0 0 1.2em; }
dl.keys dt { font-family: ui-monospace, monospace; white-space: nowrap; }
dl.keys dd { margin: 0; color: var(--dim); }
kbd, code { font-family: ui-monospace, monospace; }
kbd { border: 1px solid var(--line); border-bottom-width: 2px; border-radius: 3px; padding: 0 .3em;
      background: var(--panel); }
#retrain { display: block; background: var(--panel); padding: .5em .7em; border-radius: 4px; overflow-wrap: anywhere;
           user-select: all; }
.hint { color: var(--dim); font-size: .9em; }
</style>
</head>
<body>
<header><h1>autotosis review</h1><div id="summary" aria-live="polite">loading…</div></header>
<main>
  <nav id="list" aria-label="moments to review"></nav>
  <section id="detail" aria-live="polite">
    <div id="message" role="alert" hidden></div>
    <h2 id="title"></h2>
    <video id="player" controls muted autoplay loop playsinline preload="auto"></video>
    <svg id="curve" viewBox="0 0 1000 200" preserveAspectRatio="none" role="img"
         aria-label="the model's score around this moment"></svg>
    <p id="span"></p>
    <p id="status"></p>
    <pre id="line"></pre>
  </section>
  <aside id="help">
    <h2>Keys</h2>
    <dl class="keys">
      <dt><kbd>a</kbd></dt><dd>accept: the span is a highlight</dd>
      <dt><kbd>r</kbd></dt><dd>reject: no highlight in this clip</dd>
      <dt><kbd>u</kbd></dt><dd>unsure: <code>~span</code>, skipped in training</dd>
      <dt><kbd>[</kbd> <kbd>]</kbd></dt><dd>start −/+ 0.5 s</dd>
      <dt><kbd>{</kbd> <kbd>}</kbd></dt><dd>end −/+ 0.5 s (shift+<kbd>[</kbd> <kbd>]</kbd>)</dd>
      <dt><kbd>j</kbd> <kbd>k</kbd></dt><dd>next / previous (or <kbd>↓</kbd> <kbd>↑</kbd>)</dd>
      <dt><kbd>space</kbd></dt><dd>play / pause</dd>
      <dt><kbd>m</kbd></dt><dd>sound on / off</dd>
    </dl>
    <p class="hint">Each decision is written to the label file at once; a hand edit of the file is never
      overwritten (the page says so instead). Press another key to change a decision.</p>
    <h2>Then retrain</h2>
    <code id="retrain"></code>
    <p class="hint">Stop this page with Ctrl-C where it was started.</p>
  </aside>
</main>
<script nonce="__NONCE__">
"use strict";
const TOKEN = "__TOKEN__";
const SVG = "http://www.w3.org/2000/svg";
const $ = (id) => document.getElementById(id);
const player = $("player");
let state = null;
let current = 0;
let shown = null;
let muted = true;
let queue = Promise.resolve();
let pending = 0;

function clock(ms, decimals = 1) {
  const t = Math.max(0, ms) / 1000;
  const h = Math.floor(t / 3600), m = Math.floor(t / 60) % 60;
  const s = (t - 60 * Math.floor(t / 60)).toFixed(decimals).padStart(decimals ? decimals + 3 : 2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${s}` : `${m}:${s}`;
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function svg(tag, attrs) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  return node;
}

const BADGE = {accepted: "✓", rejected: "✗", unsure: "?"};
const KIND = {"event": "Event", "near miss": "Near miss"};

function message(text) {
  const box = $("message");
  box.textContent = text || "";
  box.hidden = !text;
}

function renderSummary() {
  const s = state.summary;
  const box = $("summary");
  box.textContent = "";
  box.append(`review iter${s.iteration} · ${s.labels} · `);
  box.append(el("strong", "", `${s.decisions} decision${s.decisions === 1 ? "" : "s"}`));
  box.append(` (${s.accepted} accepted, ${s.rejected} rejected, ${s.unsure} unsure) · ${s.items} moments`);
  box.dataset.decisions = String(s.decisions);
  $("retrain").textContent = s.retrain;
  document.title = `(${s.decisions}/${s.items}) autotosis review`;
}

function itemLabel(item) {
  return `${KIND[item.kind]} ${clock(item.start_ms + item.predicted[0], 0)} · ${item.peak.toFixed(2)}`;
}

function renderList() {
  const nav = $("list");
  nav.textContent = "";
  state.videos.forEach((video, v) => {
    nav.append(el("h2", "", video));
    for (const kind of ["event", "near miss"]) {
      const items = state.items.filter((i) => i.video_index === v && i.kind === kind);
      nav.append(el("h3", "", `${kind === "event" ? "events" : "near misses"} (${items.length})`));
      const ul = el("ul");
      for (const item of items) {
        const li = el("li");
        const button = el("button");
        button.type = "button";
        button.id = `item-${item.index}`;
        button.dataset.index = String(item.index);
        button.addEventListener("click", () => show(item.index));
        li.append(button);
        ul.append(li);
      }
      nav.append(ul);
    }
  });
  state.items.forEach((item) => renderListItem(item.index));
}

function renderListItem(index) {
  const item = state.items[index];
  const button = $(`item-${index}`);
  if (!button) return;
  button.className = [item.decision || "", index === current ? "current" : ""].join(" ").trim();
  button.textContent = "";
  button.append(el("span", "", itemLabel(item)), el("span", "badge", BADGE[item.decision] || ""));
  button.title = item.name;
}

function drawCurve(item) {
  const box = $("curve");
  box.textContent = "";
  const d = Math.max(1, item.duration_ms);
  const x = (ms) => (1000 * Math.min(Math.max(ms, 0), d)) / d;
  const y = (v) => 190 - 180 * v;
  const width = (span) => Math.max(1, x(span[1]) - x(span[0]));
  for (const v of [0, 0.5, 1]) box.append(svg("line", {class: "grid", x1: 0, x2: 1000, y1: y(v), y2: y(v)}));
  box.append(svg("rect", {class: "span", x: x(item.span[0]), y: 0, width: width(item.span), height: 200}));
  const guess = item.predicted;
  box.append(svg("rect", {class: "predicted", x: x(guess[0]), y: 1, width: width(guess), height: 198}));
  const t = item.curve.t, v = item.curve.v;
  const points = [];
  for (let i = 0; i < t.length; i++) {
    const next = i + 1 < t.length ? t[i + 1] : d;
    points.push(`${x(t[i]).toFixed(1)},${y(v[i]).toFixed(1)}`, `${x(next).toFixed(1)},${y(v[i]).toFixed(1)}`);
  }
  box.append(svg("polyline", {class: "score", points: points.join(" ")}));
  const level = y(state.threshold);
  box.append(svg("line", {class: "threshold", x1: 0, x2: 1000, y1: level, y2: level}));
  box.append(svg("line", {id: "playhead", class: "playhead", x1: 0, x2: 0, y1: 0, y2: 200}));
}

function movePlayhead() {
  const item = state && state.items[current];
  const line = $("playhead");
  if (!item || !line) return;
  const px = (1000 * Math.min(player.currentTime * 1000, item.duration_ms)) / Math.max(1, item.duration_ms);
  line.setAttribute("x1", px.toFixed(1));
  line.setAttribute("x2", px.toFixed(1));
}

function renderDetail() {
  const item = state.items[current];
  if (!item) {
    $("title").textContent = "Nothing to review: the model found no events and no near misses.";
    return;
  }
  const same = state.items.filter((i) => i.video_index === item.video_index && i.kind === item.kind);
  $("title").textContent = `${KIND[item.kind]} ${same.indexOf(item) + 1} of ${same.length} · ${item.video} ` +
    `${clock(item.start_ms)}–${clock(item.end_ms)} · peak ${item.peak.toFixed(2)}`;
  if (shown !== item.snippet) {
    shown = item.snippet;
    player.src = item.snippet;
    player.muted = muted;
    player.play().catch(() => {});
  }
  const [start, end] = item.span;
  const [was, until] = item.predicted;
  $("span").textContent = `span ${clock(start)}–${clock(end)} (${((end - start) / 1000).toFixed(1)} s) of the ` +
    `${(item.duration_ms / 1000).toFixed(1)} s snippet; predicted ${clock(was)}–${clock(until)}`;
  const status = $("status");
  status.className = `decision ${item.decision || ""}`;
  status.textContent = item.decision ? `${item.decision} · written to ${state.summary.labels}` : "not decided yet";
  $("line").textContent = item.line || "";
  drawCurve(item);
  movePlayhead();
  if (item.message) message(item.message);
}

function show(index) {
  if (!state || index < 0 || index >= state.items.length) return;
  const before = current;
  current = index;
  renderListItem(before);
  renderListItem(current);
  const button = $(`item-${current}`);
  if (button) button.scrollIntoView({block: "nearest"});
  renderDetail();
}

function send(body) {
  pending++;
  document.body.dataset.pending = String(pending);
  queue = queue.then(async () => {
    try {
      const answer = await fetch("/api/decide", {
        method: "POST",
        headers: {"Content-Type": "application/json", "X-Review-Token": TOKEN},
        body: JSON.stringify(body),
      });
      let data;
      try { data = await answer.json(); } catch (e) { data = {error: `the review server answered ${answer.status}`}; }
      if (data.item) state.items[data.item.index] = data.item;
      if (data.summary) state.summary = data.summary;
      message(data.error || "");
      renderSummary();
      if (data.item) {
        renderListItem(data.item.index);
        if (data.item.index === current) renderDetail();
      }
    } catch (e) {
      message(`the review server did not answer (${e}): is it still running?`);
    } finally {
      pending--;
      document.body.dataset.pending = String(pending);
    }
  });
}

function decide(action) {
  const item = state.items[current];
  if (!item) return;
  send({item: item.index, action});
  if (current + 1 < state.items.length) show(current + 1);
}

function adjust(edge, sign) {
  const item = state.items[current];
  if (item) send({item: item.index, action: "adjust", edge, delta_ms: sign * state.step_ms});
}

function togglePlay() {
  if (player.paused) player.play().catch(() => {}); else player.pause();
}

document.addEventListener("keydown", (e) => {
  if (!state || e.ctrlKey || e.metaKey || e.altKey) return;
  const key = e.key.length === 1 ? e.key.toLowerCase() : e.key;
  const bracket = e.code === "BracketLeft" ? -1 : e.code === "BracketRight" ? 1 : 0;
  let handled = true;
  if (key === "a") decide("accept");
  else if (key === "r") decide("reject");
  else if (key === "u") decide("unsure");
  else if (key === "[") adjust("start", -1);
  else if (key === "]") adjust("start", 1);
  else if (key === "{") adjust("end", -1);
  else if (key === "}") adjust("end", 1);
  else if (bracket) adjust(e.shiftKey ? "end" : "start", bracket);
  else if (key === "j" || key === "ArrowDown" || key === "ArrowRight") show(current + 1);
  else if (key === "k" || key === "ArrowUp" || key === "ArrowLeft") show(current - 1);
  else if (key === " ") togglePlay();
  else if (key === "m") { muted = !muted; player.muted = muted; }
  else handled = false;
  if (handled) { e.preventDefault(); e.stopPropagation(); }
}, true);

player.addEventListener("timeupdate", movePlayhead);
player.addEventListener("seeked", movePlayhead);
player.addEventListener("volumechange", () => { muted = player.muted; });
player.addEventListener("loadeddata", () => {
  const next = state.items[current + 1];
  if (next) fetch(next.snippet, {method: "HEAD"}).catch(() => {});  // the server makes it while this one plays
});
player.addEventListener("error", () => {
  if (!player.getAttribute("src")) return;
  fetch("/api/state", {cache: "no-store"}).then((r) => r.json()).then((fresh) => {
    const item = fresh.items[current];
    message(item && item.message ? item.message : "this snippet could not be played");
  }).catch(() => message("the review server did not answer: is it still running?"));
});
$("curve").addEventListener("click", (e) => {
  const item = state && state.items[current];
  if (!item) return;
  const box = $("curve").getBoundingClientRect();
  player.currentTime = ((e.clientX - box.left) / box.width) * item.duration_ms / 1000;
});

fetch("/api/state", {cache: "no-store"}).then((r) => r.json()).then((data) => {
  state = data;
  const first = state.items.findIndex((i) => !i.decision);
  current = first >= 0 ? first : 0;
  renderSummary();
  renderList();
  renderDetail();
  document.body.dataset.ready = "1";
}).catch((e) => message(`the review server did not answer (${e}): is it still running?`));
</script>
</body>
</html>
"""


def page_html(*, nonce: str, token: str) -> str:
    """The page, with the nonce its inline script and style run under and the token its decisions carry
    (both URL-safe base64: nothing to escape)."""
    return _PAGE.replace("__NONCE__", nonce).replace("__TOKEN__", token)
