// The sampling sliders: they show the chosen model's default temperature and top-p (its
// listening test's choice, else the library's defaults, as GET /api/models lists them), and a
// request carries a value only when the user moved a slider away from that default, so the
// server samples at the model's own choice otherwise.

import { $ } from "./dom.js";

const SLIDERS = [["temperature", "temperature"], ["top-p", "top_p"]]; // slider id, API field

export function adaptSampling(model) {
  // each slider shows the model's default sampling; one the user moved away from the last
  // model's default keeps the user's value. dataset.model is the default as the slider's steps
  // hold it, so an untouched slider is one whose value is still that (and is not sent)
  const chosen = model.sampling || { temperature: 1, top_p: 0.95, chosen_by: "default" };
  const origin = chosen.chosen_by === "default" ? "default"
    : `the model's choice (${/listening test/.test(chosen.chosen_by) ? "listening test" : chosen.chosen_by})`;
  for (const [id, field] of SLIDERS) {
    const input = $(id), kept = input.value;
    const moved = input.dataset.model !== undefined && kept !== input.dataset.model;
    input.value = chosen[field];
    Object.assign(input.dataset, { model: input.value, exact: chosen[field], origin });
    if (moved) input.value = kept;
    showSampling(id);
  }
}

function showSampling(id) {
  // the value (the model's exact one while untouched) and whose it is
  const input = $(id), untouched = input.value === input.dataset.model;
  const value = untouched ? Number(input.dataset.exact) : Number(input.value);
  $(`${id}-value`).textContent = value.toFixed(2);
  if (input.dataset.origin === undefined) return;
  $(`${id}-origin`).textContent = untouched ? input.dataset.origin
    : `yours; the model's is ${Number(input.dataset.exact).toFixed(2)}`;
}

export function samplingBody() {
  // only the sliders moved away from the model's default: the server uses the model's choice
  const body = {};
  for (const [id, field] of SLIDERS) {
    const input = $(id);
    if (input.value !== input.dataset.model) body[field] = Number(input.value);
  }
  return body;
}

export function bindSampling() {
  for (const [id] of SLIDERS) {
    $(id).addEventListener("input", () => showSampling(id));
    showSampling(id);
  }
}
