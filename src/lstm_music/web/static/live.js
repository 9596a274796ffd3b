// The live panel: "Play live" streams a piece and plays it as it is written; the keyboard plays
// along, and after a pause (or "Answer") the phrase goes to the model, whose answer streams back.
// window.lstmLive keeps the figures that tests and benchmarks read: the last session's counts
// (starved: notes that came after their time; skipped: those of them too late to sound, still
// drawn and kept), its start event (lastStart), the tempo sent with an answer and where it came
// from, the conversation, and the conversation seconds of the last answer's piece time 0
// (answerOffset: an answer note at piece time t is at answerOffset + t there), and the notes on
// the roll (roll: {you, model}). A piece played live leaves the roll when the player starts to
// play after it (or the next one starts); a stopped one at once loses the notes it never sounded.

import { estimateTempo } from "./beat.js";
import { Conversation } from "./conversation.js";
import { $ } from "./dom.js";
import { Keyboard } from "./keyboard.js";
import { markPressed, Session } from "./player.js";
import { PianoRoll } from "./roll.js";
import { responseError } from "./stream.js";
import { Sound } from "./synth.js";

const PAUSE_MS = 1500; // the player stopped: time for an answer
const MIN_TEMPO = 30, MAX_TEMPO = 300; // the tempo field's
const page = () => window.lstmPage; // app.js's helpers

const live = (window.lstmLive = {
  state: "idle", engine: "loading", firstNoteMs: null, starved: 0, skipped: 0,
  notesScheduled: 0, notesReceived: 0, marginMs: null, error: null, answers: 0, audio: null,
  lastStart: null, tempoSent: null, tempoFrom: null,
});
const sound = new Sound();
const conversation = new Conversation();
let roll = null;
let session = null; // the piece or answer playing now
let lastPiece = null; // the last piece played live (not an answer), while it is on the roll
let answerTimer = null;
let answerOrigin = null; // page seconds of the last answer's piece time 0
let lastProgress = 0;
Object.defineProperties(live, {
  conversation: { enumerable: true, get: () => conversation.timeline() },
  answerOffset: {
    enumerable: true,
    get: () => (answerOrigin === null ? null : conversation.offset(answerOrigin)),
  },
  trimmed: { enumerable: true, get: () => conversation.dropped },
  roll: { enumerable: true, get: () => (roll ? roll.counts() : null) },
});

function status(text) {
  $("live-status").textContent = text;
}

/** The tempo field's bpm, or null when it is empty (the phrase's own is then sent). */
function tempoField() {
  const text = $("live-tempo").value.trim();
  if (text === "") return null;
  const value = Number(text);
  if (!Number.isFinite(value) || value < MIN_TEMPO || value > MAX_TEMPO) {
    throw new Error(`Tempo: ${MIN_TEMPO} to ${MAX_TEMPO} bpm, or empty to keep yours`);
  }
  return value;
}

function showTrimmed() {
  const dropped = conversation.dropped;
  $("live-trimmed").hidden = dropped === 0;
  $("live-trimmed").textContent = dropped
    ? `The conversation keeps its last hour and at most 20,000 notes: its oldest ${dropped} `
      + `${dropped === 1 ? "note was" : "notes were"} dropped.`
    : "";
}

function streamBody(extra) {
  // the form's settings, as POST /api/generate takes them, for one streamed piece
  const body = page().requestBody();
  delete body.num;
  return Object.assign(body, extra);
}

function showButtons() {
  const playing = session !== null;
  $("live-stop").disabled = !playing;
  $("live-download").disabled = conversation.size === 0;
  $("live-answer").disabled = conversation.phrase.length === 0;
}

function progress(playing, ahead) {
  const now = performance.now();
  if (now - lastProgress < 250) return;
  lastProgress = now;
  const kind = session && session.kind === "answer" ? "Answering" : "Playing";
  const written = ahead > 0 ? `, ${ahead.toFixed(1)} s written ahead` : "";
  const skipped = live.skipped ? ` (${live.skipped} too late to sound)` : "";
  const late = live.starved ? ` · ${live.starved} late notes${skipped}` : "";
  const muted = live.audio === "blocked" ? " · no sound: the browser blocked it, click the page" : "";
  status(`${kind}: ${playing.toFixed(1)} s${written}${late}${muted}`);
}

function addPiece(piece) {
  for (const old of document.querySelectorAll(".piece.fresh")) old.classList.remove("fresh");
  $("history").prepend(page().pieceItem(piece, true));
  page().updateCount();
}

function stopSession() {
  if (!session) return;
  const stopped = session;
  stopped.stop();
  const now = performance.now() / 1000;
  if (stopped.kind === "answer") conversation.cut(stopped.answer, now);
  roll.remove((note) => note.session === stopped && note.start >= now); // never to sound
  session = null;
  showButtons();
}

function clearPiece() {
  // the last live piece off the roll, once it no longer plays: the player's notes stand alone
  if (!lastPiece || lastPiece === session) return;
  const old = lastPiece;
  lastPiece = null;
  roll.remove((note) => note.session === old);
}

async function play(body, kind, pressed, phrase = null) {
  clearTimeout(answerTimer); // a pending answer would stop this
  stopSession();
  page().complain("");
  const current = new Session({
    sound, body, live, pressed, phrase,
    hooks: {
      onStart: (info) => {
        const tempo = kind === "answer" && live.lastStart.tempo
          ? ` at ${Math.round(live.lastStart.tempo)} bpm` : "";
        const what = kind === "answer" ? `Answering${tempo}` : "Writing";
        status(`${what} with ${info.model}, seed ${info.seed}…`);
      },
      onNote: (note, at) => {
        roll.add({ ...note, start: at, who: "model", session: current });
        if (kind !== "answer") return;
        if (answerOrigin === null) answerOrigin = current.origin;
        conversation.answer(note, at, current.answer);
        showTrimmed();
      },
      onProgress: progress,
      onPiece: addPiece,
    },
  });
  current.kind = kind;
  current.answer = kind === "answer" ? ++live.answers : 0;
  if (kind === "piece") {
    clearPiece();
    lastPiece = current;
  }
  if (kind === "answer") answerOrigin = null;
  session = current;
  showButtons();
  status(kind === "answer" ? "Asking the model for an answer…" : "Starting…");
  try {
    const piece = await current.run();
    if (session === current) {
      const late = live.starved ? `; ${live.starved} notes came late` : "";
      const done = kind === "answer" ? "Answered" : "Played";
      status(piece ? `${done} “${piece.title}”${late}.` : "Stopped.");
    }
  } catch (error) {
    if (session === current) {
      page().complain(error.message);
      status("");
    }
  } finally {
    if (session === current) session = null;
    showButtons();
  }
}

function pageReady() {
  if (document.body.dataset.ready === "true") return true;
  page().complain("The page is still loading the models: try again in a moment.");
  return false;
}

async function playLive() {
  const pressed = markPressed();
  if (!pageReady()) return;
  let body;
  try {
    body = streamBody({});
    const file = $("primer").files[0];
    if (file) body.primer_id = (await page().uploadPrimer(file)).id;
  } catch (error) {
    page().complain(error.message);
    return;
  }
  await play(body, "piece", pressed);
}

async function answer() {
  clearTimeout(answerTimer);
  let field;
  try {
    field = tempoField(); // before the phrase is taken: a bad tempo keeps it for another try
  } catch (error) {
    page().complain(error.message);
    return;
  }
  const phrase = conversation.takePhrase(performance.now() / 1000);
  showButtons();
  if (!phrase.notes.length) {
    status("Play a few notes first, then the model answers.");
    return;
  }
  const pressed = markPressed();
  if (!pageReady()) return;
  const tempo = field ?? estimateTempo(phrase.notes); // null (one onset): the server's
  Object.assign(live, { tempoSent: tempo, tempoFrom: field ? "field" : tempo ? "phrase" : null });
  let body;
  try {
    body = streamBody(tempo ? { phrase: phrase.notes, tempo } : { phrase: phrase.notes });
    delete body.primer_id; // the phrase is the primer
  } catch (error) {
    page().complain(error.message);
    return;
  }
  await play(body, "answer", pressed, phrase);
}

function keyDown(pitch, velocity) {
  clearTimeout(answerTimer);
  if (session && session.kind === "answer") stopSession(); // the player takes over again
  if (!session) clearPiece(); // a new play-along: not over the piece that was playing
  if (!sound.running) sound.resume().then(() => sound.sync());
  sound.down(pitch, velocity);
  const at = performance.now() / 1000;
  roll.add(conversation.down(pitch, velocity, at));
  showTrimmed();
  showButtons();
}

function keyUp(pitch) {
  sound.up(pitch);
  conversation.up(pitch, performance.now() / 1000);
  roll.keepAwake(performance.now() / 1000 + 1);
  const jamming = session && session.kind === "piece"; // playing along: Answer when asked
  if (!conversation.holding && conversation.phrase.length && $("live-auto").checked && !jamming) {
    clearTimeout(answerTimer);
    answerTimer = setTimeout(answer, PAUSE_MS);
  }
}

async function download() {
  // the bars of the file at the tempo asked, else the last one played in (the server's default)
  const tempo = tempoField() ?? live.lastStart?.tempo ?? undefined;
  const response = await fetch("/api/conversation", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(conversation.request(tempo)),
  });
  if (!response.ok) throw await responseError(response);
  const link = document.createElement("a");
  link.href = URL.createObjectURL(await response.blob());
  const stamp = new Date().toISOString().slice(0, 19).replace(/[:T]/g, "-");
  link.download = `lstm-music-conversation-${stamp}.mid`;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10000);
}

function describeEngine() {
  live.engine = sound.engine;
  const text = {
    soundfont: "Sound: FluidR3 Mono General MIDI SoundFont, played in your browser.",
    oscillators: "Sound: a simple built-in synthesizer, since the SoundFont one could not "
      + `start (${sound.reason}).`,
    none: `No sound: ${sound.reason}; the notes are still drawn.`,
  }[sound.engine];
  $("live-engine").textContent = text;
  $("live-engine").classList.toggle("warning", sound.engine !== "soundfont");
}

function bind() {
  roll = new PianoRoll($("live-roll"), $("live-legend"));
  const keyboard = new Keyboard($("keyboard"), { down: keyDown, up: keyUp });
  $("live-play").addEventListener("click", playLive);
  $("live-stop").addEventListener("click", () => {
    clearTimeout(answerTimer);
    stopSession();
    status("Stopped.");
  });
  $("live-answer").addEventListener("click", answer);
  $("live-clear").addEventListener("click", () => {
    clearTimeout(answerTimer);
    stopSession();
    conversation.clear();
    roll.clear();
    showTrimmed();
    status("");
    showButtons();
  });
  $("live-download").addEventListener("click", () => {
    download().catch((error) => page().complain(error.message));
  });
  if (navigator.requestMIDIAccess) {
    $("live-midi").hidden = false;
    $("live-midi").addEventListener("click", () => {
      keyboard.connectMidi().then(status, (error) => page().complain(`MIDI: ${error.message}`));
    });
  }
  showButtons();
  sound.ready = sound.load().then(describeEngine);
}

bind();
