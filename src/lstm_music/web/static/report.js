// A run's held-out report: bits per note beside simple guesses, the overfitting gap, the copy
// check, the listening test (could a classifier tell sampled pieces from held-out ones?); fetched when the user asks: the one `train` wrote comes at once, scoring afresh takes
// a few seconds. The page says which it shows.

import { el, formatValue } from "./dom.js";
import { fetchJson } from "./stream.js";

/** The section that fetches and shows a run's held-out report when asked (it takes a while). */
export function reportSection(details) {
  const body = el("div", { class: "report-body", "aria-live": "polite" });
  const button = el("button", { type: "button", class: "secondary", text: "How good is it?" });
  button.addEventListener("click", async () => {
    button.disabled = true;
    body.replaceChildren(el("p", { class: "muted", text: "Scoring the held-out pieces, checking a few sampled pieces for copies and holding them against held-out ones…" }));
    try {
      body.replaceChildren(...renderReport(await fetchJson(details.report_url)));
      button.hidden = true;
    } catch (error) {
      body.replaceChildren(el("p", { class: "error", text: error.message }));
      button.disabled = false;
    }
  });
  return el("section", { class: "report", "aria-label": "Held-out report" },
    el("h4", { text: "Held-out report" }),
    el("p", { class: "hint", text: "Bits per note on the held-out pieces of the corpus this run was trained on, beside simple guesses; overfitting and copies checked; a listening test: can a classifier tell sampled pieces from held-out ones?" }),
    button, body);
}

function plural(number, noun) {
  return `${formatValue(number)} ${noun}${number === 1 ? "" : "s"}`;
}

function bits(value) {
  return value === null || value === undefined ? "–" : value.toFixed(2);
}

function when(iso) {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? "" : date.toLocaleString(undefined,
    { dateStyle: "medium", timeStyle: "short" });
}

function origin(report) {
  const written = report.written ? when(report.written) : "";
  const text = report.origin === "training"
    ? `From training's report (report.json in the run folder)${written ? `, ${written}` : ""}.`
    : `Computed by this server${written ? ` on ${written}` : ""}: the run folder has no current `
      + "report.json (none, or older than the checkpoint or the corpus).";
  return el("p", { class: "origin muted", text });
}

function renderReport(report) {
  const parts = [el("p", { class: "verdict", text: `Verdict: ${report.verdict}` }), origin(report)];
  if (report.split) {
    parts.push(el("p", { class: "muted",
      text: `${report.split} split: ${plural(report.pieces, "piece")}, ${plural(report.tokens, "token")}, ${plural(report.notes, "note")}` }));
    const rows = report.predictors.map((p) => el("tr", {},
      el("th", { scope: "row", text: p.label }),
      el("td", { text: bits(p.bits_per_note) }),
      el("td", { text: bits(p.nll_per_token / Math.LN2) })));
    parts.push(el("table", { class: "figures" },
      el("thead", {}, el("tr", {}, el("th", { scope: "col", text: "predictor" }),
        el("th", { scope: "col", text: "bits per note" }), el("th", { scope: "col", text: "bits per token" }))),
      el("tbody", {}, ...rows)));
  }
  const gap = report.gap;
  if (gap) {
    parts.push(el("p", { text: `Loss on training pieces ${gap.train_nll.toFixed(3)}, on held-out pieces ${gap.held_out_nll.toFixed(3)} nats per token (gap ${gap.gap >= 0 ? "+" : ""}${gap.gap.toFixed(3)}).` }));
  }
  const copies = report.copies;
  if (copies) {
    const flagged = copies.flagged ? `${copies.flagged} flagged as copies` : "none flagged";
    parts.push(el("p", { text: `Copy check: ${plural(copies.pieces, "sampled piece")} of ${copies.tokens} tokens; longest run found in the training pieces ${plural(copies.longest_run, "note")}; ${flagged} (${copies.seconds.toFixed(1)} s).` }));
  }
  const listening = listeningPart(report.listening);
  if (listening) parts.push(listening);
  for (const remark of report.remarks) parts.push(el("p", { class: "muted", text: remark }));
  for (const warning of report.warnings) parts.push(el("p", { class: "warning", text: `Warning: ${warning}` }));
  return parts;
}

function percent(share) {
  return `${Math.round(share * 100)}%`;
}

/** The listening test in plain words first, then its figure, interval and counts. */
function listeningPart(test) {
  if (!test) return null;
  const counts = `${plural(test.generated_excerpts, "excerpt")} of ${plural(test.generated_pieces, "sampled piece")} against ${plural(test.real_excerpts, "excerpt")} of ${plural(test.real_pieces, "held-out piece")}`;
  if (test.accuracy === null || test.accuracy === undefined) {
    return el("p", { class: "listening muted", text: `Listening test not run: ${test.refused} (${counts}).` });
  }
  return el("div", { class: "listening" },
    el("p", {}, el("strong", { text: `Listening test: ${test.words}.` })),
    el("p", { text: `A classifier told sampled ${test.excerpt_bars}-bar excerpts from held-out ones ${percent(test.accuracy)} of the time (95% interval ${percent(test.low)}–${percent(test.high)}; 50% is chance, about 100% easy to tell apart): ${counts}, cross-validated by piece.` }));
}
