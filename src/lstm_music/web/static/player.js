// Plays a piece while the server writes it: POST /api/stream, then each arriving note is put on
// the page's clock (the playhead starts a little after the first note arrives; an answer's on
// the phrase's beat) and handed to the synthesizer shortly before it sounds, so that a Stop
// silences what was not yet heard.

import { answerOrigin } from "./beat.js";
import { postEvents } from "./stream.js";

const LEAD = 0.12; // seconds from the first note's arrival to its sound
const LOOKAHEAD = 0.5; // seconds of notes handed to the synthesizer ahead of the playhead
const TICK_MS = 40;
const LATE_DROP = 0.25; // a note later than this (playback starved) is not played at all
const QUIET_GAP = 0.02; // seconds between a Stop's last all-notes-off and the next first note
const MAX_DURATION = 60;
const PRESSED = "lstm-generate-pressed", FIRST_NOTE = "lstm-first-note";

function clock() {
  return performance.now() / 1000;
}

function checkedNote(note) {
  // the server's note, or null when it is not one
  const number = (value) => typeof value === "number" && Number.isFinite(value);
  if (!note || !number(note.pitch) || !number(note.start) || !number(note.duration)) return null;
  const pitch = Math.round(note.pitch);
  const program = number(note.program) ? Math.round(note.program) : 0;
  if (pitch < 0 || pitch > 127 || note.start < 0 || program < -1 || program > 127) return null;
  const velocity = number(note.velocity) ? Math.round(note.velocity) : 80;
  return {
    pitch, start: note.start, duration: Math.max(0, Math.min(MAX_DURATION, note.duration)),
    velocity: Math.max(1, Math.min(127, velocity)), program,
    instrument: typeof note.instrument === "string" ? note.instrument.slice(0, 80) : "",
  };
}

/** Marks a press of Generate (or an answer's start) for the page's timings; returns its time. */
export function markPressed() {
  performance.clearMarks(PRESSED);
  performance.clearMarks(FIRST_NOTE);
  performance.mark(PRESSED);
  return performance.now();
}

/** One streamed piece: `await session.run()` resolves with the finished piece or null. */
export class Session {
  /** live: window.lstmLive, kept up to date; pressed: markPressed()'s time; phrase: for an
   * answer, {first, end} of the phrase in page seconds (the answer goes on its beat); hooks:
   * onNote(note, at, sounded), onStart(info), onProgress(playing, ahead), onPiece(piece),
   * where `at` and the seconds are page seconds and `sounded` is false for a note that came
   * too late to play. */
  constructor({ sound, body, live, hooks, pressed, phrase = null }) {
    Object.assign(this, { sound, body, live, hooks, pressed, phrase });
    this.controller = new AbortController();
    this.queue = []; // notes received, not yet handed to the synthesizer, in `at` order
    this.origin = null; // page seconds of the piece's time 0
    this.heardFrom = null; // page seconds the progress counts from: an answer's first note
    this.lastEnd = 0;
    this.written = 0;
    this.stopped = false;
    this.timer = null;
    this.piece = null;
    this.done = null;
    this.batches = 0;
    this.tempo = null; // the start event's
    this.primerSeconds = 0;
  }

  async run() {
    const live = this.live;
    Object.assign(live, { state: "waiting", firstNoteMs: null, starved: 0, skipped: 0,
      notesScheduled: 0, notesReceived: 0, marginMs: null, error: null, lastStart: null });
    const events = postEvents("/api/stream", this.body, this.controller.signal);
    const first = events.next(); // the request leaves now; the sound gets ready meanwhile
    first.catch(() => {});
    try {
      await this.sound.ready;
      live.audio = (await this.sound.resume()) ? "running" : "blocked";
      this.sound.sync();
      if (this.stopped) return null;
      this.timer = setInterval(() => this.pump(), TICK_MS);
      let step = await first;
      while (!step.done && !this.stopped) {
        this.handle(step.value);
        step = await events.next();
      }
      if (this.stopped) return this.piece;
      if (!this.piece) throw new Error("the stream ended before the piece did");
      live.state = "finishing";
      await this.finished();
      live.state = this.stopped ? "stopped" : "done";
      return this.piece;
    } catch (error) {
      if (this.stopped) return this.piece;
      live.state = "error";
      live.error = error.message;
      throw error;
    } finally {
      this.halt();
      events.return().catch(() => {});
    }
  }

  handle({ event, data }) {
    if (event === "start") {
      this.live.state = "streaming";
      const number = (value) => (Number.isFinite(value) && value >= 0 ? value : null);
      this.tempo = number(data.tempo) || null;
      this.primerSeconds = number(data.primer_seconds) ?? 0;
      this.live.lastStart = { model: String(data.model), seed: data.seed, tempo: this.tempo,
        primer_seconds: this.primerSeconds,
        instruments: Array.isArray(data.instruments) ? data.instruments.map(String) : [] };
      this.hooks.onStart?.(data);
    } else if (event === "notes") {
      this.batches += 1;
      for (const raw of Array.isArray(data.notes) ? data.notes : []) {
        const note = checkedNote(raw);
        if (note) this.receive(note);
      }
      if (Number.isFinite(data.written_seconds)) this.written = data.written_seconds;
      this.pump();
    } else if (event === "end") {
      this.piece = data.piece || null;
      if (this.piece) this.hooks.onPiece?.(this.piece);
    } else if (event === "error") {
      throw new Error(data.detail || "the server stopped the piece");
    }
  }

  receive(note) {
    const now = clock();
    this.live.notesReceived += 1;
    if (this.origin === null) {
      this.origin = this.firstOrigin(note, now);
      this.heardFrom = this.phrase ? this.origin + note.start : this.origin;
    }
    let at = this.origin + note.start;
    const margin = Math.round((at - now) * 1000); // how far ahead of the playhead it came
    const later = this.batches > 1; // the first batch's margin is LEAD by design
    if (later && (this.live.marginMs === null || margin < this.live.marginMs)) {
      this.live.marginMs = margin;
    }
    if (at < now) {
      this.live.starved += 1; // it came after its time: the model fell behind the playhead
      if (now - at > LATE_DROP) {
        this.live.skipped += 1; // too late to sound; still drawn and kept, where it belonged
        this.hooks.onNote?.(note, at, false);
        return;
      }
      at = now;
    }
    const entry = { ...note, at };
    let index = this.queue.length;
    while (index > 0 && this.queue[index - 1].at > at) index -= 1;
    this.queue.splice(index, 0, entry);
    this.lastEnd = Math.max(this.lastEnd, at + note.duration);
    this.hooks.onNote?.(note, at, true);
  }

  firstOrigin(note, now) {
    // the page time of the piece's time 0: the first note a moment after it came, not before a
    // Stop's last all-notes-off (that would cut it), and an answer on the phrase's beat
    const earliest = Math.max(now + LEAD, this.sound.quietUntil + QUIET_GAP) - note.start;
    if (!this.phrase || !this.tempo) return earliest;
    return answerOrigin(this.phrase, this.tempo, this.primerSeconds, earliest);
  }

  pump() {
    const now = clock(), horizon = now + LOOKAHEAD;
    while (this.queue.length && this.queue[0].at <= horizon) {
      const note = this.queue.shift();
      this.sound.play(note, note.at);
      this.live.notesScheduled += 1;
      if (this.live.firstNoteMs === null) {
        performance.mark(FIRST_NOTE);
        this.live.firstNoteMs = performance.now() - this.pressed;
      }
    }
    if (this.origin !== null) {
      const ahead = this.written - Math.max(0, now - this.origin);
      const playing = Math.max(0, now - this.heardFrom);
      this.hooks.onProgress?.(playing, ahead);
    }
    if (this.done && !this.queue.length && now >= this.lastEnd) this.done();
  }

  finished() {
    return new Promise((resolve) => {
      this.done = () => {
        this.done = null;
        this.halt();
        resolve();
      };
      this.pump();
    });
  }

  halt() {
    clearInterval(this.timer);
    this.timer = null;
  }

  /** Stops the stream (the server stops writing) and silences what was not yet heard. */
  stop() {
    if (this.stopped) return;
    this.stopped = true;
    this.controller.abort();
    this.halt();
    this.queue = [];
    this.sound.silence(clock() + LOOKAHEAD + 0.05);
    if (this.done) this.done();
    this.live.state = "stopped";
  }
}
