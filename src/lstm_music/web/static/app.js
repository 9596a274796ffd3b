// lstm-music page: talks to the JSON API of the same server; no libraries, nothing external.
// A run's held-out report is report.js's; the live panel is live.js's; the sampling sliders
// sampling.js's.

import { $, el, formatValue } from "./dom.js";
import { reportSection } from "./report.js";
import { adaptSampling, bindSampling, samplingBody } from "./sampling.js";
import { fetchJson as api } from "./stream.js";

const state = { models: new Map(), limits: null, maxUpload: 2000000, busy: false };

function say(text) {
  $("status").textContent = text;
}

function complain(text) {
  $("error").textContent = text;
}

function clock(seconds) {
  const total = Math.round(seconds);
  return `${Math.floor(total / 60)}:${String(total % 60).padStart(2, "0")}`;
}

function facts(entries) {
  const list = el("dl", { class: "facts" });
  for (const [name, value] of entries) {
    if (value === null || value === undefined || value === "") continue;
    list.append(el("div", {}, el("dt", { text: name }), el("dd", { text: formatValue(value) })));
  }
  return list;
}

/* models */

async function loadModels() {
  const models = await api("/api/models");
  const select = $("model");
  select.replaceChildren();
  state.models.clear();
  const groups = { run: el("optgroup", { label: "Your runs (--runs)" }),
                   shipped: el("optgroup", { label: "Shipped models" }) };
  for (const model of models) {
    state.models.set(model.id, model);
    const label = model.default ? `${model.label} (default)` : model.label;
    groups[model.source].append(el("option", { value: model.id, text: label }));
  }
  for (const group of Object.values(groups)) if (group.children.length) select.append(group);
  if (!models.length) {
    $("model-info").replaceChildren(el("p", { class: "muted",
      text: "No models: train one (lstm-music train) and start the server with --runs FOLDER." }));
    $("generate").disabled = true;
    return;
  }
  select.value = initialModel(models);
  await showModel(select.value);
}

function initialModel(models) {
  // the newest run (the server lists runs first, newest first), else the default shipped model;
  // a model the user chose is kept until a newer run appears
  const first = models.find((model) => model.source === "run")
    || models.find((model) => model.default) || models[0];
  state.newest = first.id;
  const chosen = localStorage.getItem("lstm-music:model");
  const newestThen = localStorage.getItem("lstm-music:newest");
  return state.models.has(chosen) && newestThen === first.id ? chosen : first.id;
}

function chooseModel(id) {
  localStorage.setItem("lstm-music:model", id);
  localStorage.setItem("lstm-music:newest", state.newest);
  return showModel(id);
}

function adaptLength(model) {
  const unit = $("length-unit");
  const secondsOption = unit.querySelector('option[value="seconds"]');
  secondsOption.disabled = !model.timed;
  if (!model.timed && unit.value === "seconds") {
    unit.value = "tokens";
    adaptUnit();
  }
  $("model-hint").textContent = model.summary || `${model.tokenizer} tokens`;
}

function adaptConstraints(model) {
  // show only what the chosen model can take: instruments for models whose pieces have them,
  // each control for models trained with it; a key without a key control is always strict
  const controls = model.controls || [];
  $("instruments-field").hidden = !model.instruments;
  for (const name of ["density", "polyphony"]) $(`${name}-field`).hidden = !controls.includes(name);
  $("key-control").hidden = !controls.includes("key");
  $("model-controls").hidden = !controls.some((name) => name !== "instruments");
  adaptStrict();
}

function adaptStrict() {
  // Strict means nothing without a key: off and greyed until one is typed. Then it is the
  // user's choice, off as in the API, for a model trained with the key control; any other model
  // takes a key only as a strict one (the API refuses it otherwise), so it is on, and says why.
  const model = state.models.get($("model").value) || {};
  const control = (model.controls || []).includes("key");
  const keyed = $("key").value.trim() !== "";
  const strict = $("key-strict");
  if (keyed && control) {
    if (strict.disabled) strict.checked = false; // newly the user's to choose: the API's default
    strict.disabled = false;
  } else {
    strict.checked = keyed;
    strict.disabled = true;
  }
  $("key-strict-why").hidden = !keyed || control;
}

function adaptPrimerHint() {
  // primer_tokens counts the model's tokens (events); with REMI tokens a note takes about 3.5
  // (measured: 3.4 to 3.8 on the seed MIDI files), other tokenizers differ
  const model = state.models.get($("model").value) || {};
  const count = Number($("primer-tokens").value);
  const notes = model.tokenizer === "remi" && count > 0 ? Math.max(1, Math.round(count / 3.5)) : 0;
  $("primer-tokens-notes").textContent = notes
    ? `With this model's events (REMI), ${count} is roughly the last ${notes} note${notes === 1 ? "" : "s"}.`
    : "How many notes that is depends on the model's events.";
}

function adaptUnit() {
  const length = $("length");
  const limits = state.limits || { seconds: 120, tokens: 4096 };
  if ($("length-unit").value === "seconds") {
    Object.assign(length, { min: 1, max: limits.seconds, step: 1 });
    if (Number(length.value) > limits.seconds) length.value = 20;
  } else {
    Object.assign(length, { min: 1, max: limits.tokens, step: 1 });
    if (Number(length.value) < 64) length.value = 512;
  }
}

async function showModel(id) {
  const model = state.models.get(id);
  if (!model) return;
  adaptLength(model);
  adaptConstraints(model);
  adaptSampling(model);
  adaptPrimerHint();
  const box = $("model-info");
  box.setAttribute("aria-busy", "true");
  try {
    renderModel(await api(`/api/models/${encodeURIComponent(id)}`));
  } catch (error) {
    box.replaceChildren(el("p", { class: "error", text: error.message }));
  } finally {
    box.removeAttribute("aria-busy");
  }
}

function renderModel(details) {
  const head = el("div", { class: "model-head" },
    el("h3", { text: details.label }),
    el("span", { class: "badge", text: details.source === "shipped" ? "shipped" : "your run" }),
    details.tokenizer ? el("span", { class: "badge", text: `${details.tokenizer} tokens` }) : null);
  const summary = details.summary ? el("p", { class: "muted", text: details.summary }) : null;
  const settings = details.settings || {};
  const metrics = details.metrics || {};
  const shown = ["LSTM sizes", "steps", "training time"];
  const overview = facts([
    ["parameters", details.parameters],
    ["LSTM sizes", settings["LSTM sizes"]],
    ["valid split loss", details.valid_loss],
    ["test split loss", details.test_loss],
    ["training steps", metrics.steps],
    ["training time", metrics["training time"]],
  ]);
  const rest = [...Object.entries(settings), ...Object.entries(metrics)]
    .filter(([name]) => !shown.includes(name))
    .map(([name, value]) => [name.replace(/_/g, " "), value]);
  const more = rest.length
    ? el("details", { class: "more" }, el("summary", { text: "All settings and metrics" }), facts(rest))
    : null;
  const columns = el("div", { class: "model-columns" });
  const left = el("div", {}, overview, more);
  columns.append(left);
  if (details.loss_curve_url) {
    columns.append(el("figure", {},
      el("img", { src: details.loss_curve_url, alt: `Training and validation loss of ${details.label} against training steps`, loading: "lazy", width: 880, height: 495 }),
      el("figcaption", { text: "Loss per token during training (lower is better)." })));
  }
  const parts = [head, summary, columns, details.report_url ? reportSection(details) : null];
  if (details.card_html) {
    const card = el("div", { class: "card", tabindex: 0, role: "region", "aria-label": "Model card" });
    card.innerHTML = details.card_html; // the server escapes the card's text before marking it up
    parts.push(card);
  }
  $("model-info").replaceChildren(...parts.filter(Boolean));
}

/* pieces */

function pieceItem(piece, fresh) {
  const titleId = `piece-${piece.id}-title`;
  const settings = piece.settings || {};
  const length = settings.seconds ? `${settings.seconds} s asked` : `${settings.tokens} tokens`;
  const meta = [
    piece.model, `seed ${piece.seed}`, clock(piece.seconds), `${piece.notes} notes`,
    `temperature ${settings.temperature ?? "the model's choice"}`,
    `top-p ${settings.top_p ?? "the model's choice"}`,
    settings.top_k ? `top-k ${settings.top_k}` : null, length,
    piece.primer ? `primer ${piece.primer}` : null, ...askedConstraints(settings),
  ].filter(Boolean).join(" · ");
  const instruments = piece.instruments && piece.instruments.length
    ? el("p", { class: "instruments", text: `Instruments: ${piece.instruments.join(", ")}` })
    : null;
  const base = `lstm-music-${piece.number}-${piece.model}-seed${piece.seed}`;
  const article = el("article", { class: fresh ? "piece fresh" : "piece", "aria-labelledby": titleId },
    el("header", {},
      el("h3", { id: titleId, text: piece.title }),
      el("p", { class: "meta", text: meta }), instruments),
    el("audio", { controls: true, preload: "metadata", src: piece.wav_url, "aria-label": `${piece.title}: audio` }),
    el("img", { src: piece.png_url, width: 1100, height: 440, loading: "lazy",
      alt: `Piano roll of ${piece.title}: ${piece.notes} notes over ${clock(piece.seconds)}, time across, pitch up` }),
    el("p", { class: "downloads" },
      el("a", { href: piece.midi_url, download: `${base}.mid`, text: "Download MIDI" }),
      el("a", { href: piece.wav_url, download: `${base}.wav`, text: "Download WAV" })),
    piece.warning ? el("p", { class: "warning", text: `Note: ${piece.warning}` }) : null);
  return el("li", { "data-piece": piece.id }, article);
}

function askedConstraints(settings) {
  // the constraints and controls a piece was written with, for its one line of settings
  const asked = [];
  if (settings.key) asked.push(`key ${settings.key}${settings.key_strict ? " (strict)" : ""}`);
  if (settings.pitch_range) asked.push(`pitches ${settings.pitch_range.join("–")}`);
  if (settings.instruments) asked.push(`only ${settings.instruments.join(", ")}`);
  if (settings.density) asked.push(`density ${settings.density}`);
  if (settings.polyphony) asked.push(`polyphony ${[].concat(settings.polyphony).join("–")}`);
  return asked;
}

function updateCount() {
  const count = $("history").children.length;
  $("history-count").textContent = count ? `(${count})` : "";
  $("history-empty").hidden = count > 0;
}

async function loadHistory() {
  const pieces = await api("/api/pieces");
  $("history").replaceChildren(...pieces.map((piece) => pieceItem(piece, false)));
  updateCount();
}

/* generating */

function numberField(id, name) {
  const input = $(id);
  const value = Number(input.value);
  if (input.value.trim() === "" || !Number.isFinite(value)) throw new Error(`${name}: enter a number`);
  const min = Number(input.min), max = Number(input.max);
  if (input.min !== "" && value < min) throw new Error(`${name}: at least ${min}`);
  if (input.max !== "" && value > max) throw new Error(`${name}: at most ${max}`);
  return value;
}

function requestBody() {
  const body = {
    model: $("model").value,
    ...samplingBody(),
    top_k: numberField("top-k", "Top-k"),
    num: numberField("num", "Pieces"),
    primer_tokens: numberField("primer-tokens", "How much of the primer"),
  };
  body[$("length-unit").value] = numberField("length", "Length");
  if ($("seed").value.trim() !== "") body.seed = numberField("seed", "Seed");
  Object.assign(body, constraintsBody(state.models.get(body.model) || {}));
  return body;
}

function constraintsBody(model) {
  // the constraints and controls set and shown for this model; the server checks the values
  const body = {};
  const text = (id) => (document.getElementById(id).value || "").trim();
  const shown = (id) => !$(id).hidden && !$(id).closest("[hidden]");
  if (text("key")) {
    body.key = text("key");
    body.key_strict = $("key-strict").checked;
  }
  if (text("pitch-range")) body.pitch_range = text("pitch-range");
  if (model.instruments && text("instruments")) {
    body.instruments = text("instruments").split(",").map((item) => item.trim()).filter(Boolean);
  }
  const controls = model.controls || [];
  if (controls.includes("density") && shown("density-field") && text("density")) {
    body.density = text("density");
  }
  if (shown("model-controls") && Number(text("guidance")) > 1) body.guidance = Number(text("guidance"));
  if (controls.includes("polyphony") && shown("polyphony-field") && text("polyphony")) {
    const value = text("polyphony");
    body.polyphony = /^\d+$/.test(value) ? Number(value) : value;
  }
  return body;
}

async function uploadPrimer(file) {
  if (file.size > state.maxUpload) {
    throw new Error(`${file.name}: too big, at most ${state.maxUpload / 1e6} MB`);
  }
  const form = new FormData();
  form.append("file", file, file.name);
  return api("/api/primers", { method: "POST", body: form });
}

function setBusy(busy, text) {
  state.busy = busy;
  $("generate").disabled = busy;
  $("generate-form").setAttribute("aria-busy", String(busy));
  $("progress").hidden = !busy;
  if (text) $("progress-text").textContent = text;
}

async function generate(event) {
  event.preventDefault();
  if (state.busy) return;
  complain("");
  let body;
  try {
    body = requestBody();
  } catch (error) {
    complain(error.message);
    return;
  }
  const count = body.num === 1 ? "1 piece" : `${body.num} pieces`;
  const started = performance.now();
  const label = `Generating ${count} with ${body.model}`;
  setBusy(true, `${label}…`);
  say(`${label}…`);
  const timer = setInterval(() => {
    $("progress-text").textContent = `${label}… ${Math.round((performance.now() - started) / 1000)} s`;
  }, 1000);
  try {
    const file = $("primer").files[0];
    if (file) body.primer_id = (await uploadPrimer(file)).id;
    const result = await api("/api/generate", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    for (const old of document.querySelectorAll(".piece.fresh")) old.classList.remove("fresh");
    for (const piece of result.pieces) $("history").prepend(pieceItem(piece, true));
    updateCount();
    showNewest();
    say(`Wrote ${count} in ${result.elapsed.toFixed(1)} s (seed ${result.seed}).`);
  } catch (error) {
    complain(error.message);
    say("");
  } finally {
    clearInterval(timer);
    setBusy(false);
  }
}

function showNewest() {
  // the new piece's card (the first of several) into view: whole when it fits, else its top
  const card = $("history").firstElementChild;
  if (!card) return;
  const calm = window.matchMedia("(prefers-reduced-motion: reduce)").matches;
  const fits = card.getBoundingClientRect().height <= window.innerHeight;
  card.scrollIntoView({ behavior: calm ? "auto" : "smooth", block: fits ? "nearest" : "start" });
}

async function start() {
  bindSampling();
  $("generate-form").addEventListener("submit", generate);
  $("model").addEventListener("change", (event) => chooseModel(event.target.value));
  $("key").addEventListener("input", adaptStrict);
  $("primer-tokens").addEventListener("input", adaptPrimerHint);
  $("length-unit").addEventListener("change", adaptUnit);
  try {
    const status = await api("/api/status");
    state.limits = status.limits;
    state.maxUpload = status.max_upload_bytes;
    $("num").max = status.limits.num;
    await Promise.all([loadModels(), loadHistory()]);
    document.body.dataset.ready = "true";
  } catch (error) {
    complain(`Could not reach the server: ${error.message}`);
  }
}

window.lstmPage = { requestBody, uploadPrimer, pieceItem, updateCount, complain }; // for live.js
document.addEventListener("DOMContentLoaded", start);
