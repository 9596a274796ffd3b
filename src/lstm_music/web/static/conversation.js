// The play-along conversation: the player's phrases and the model's answers on one timeline
// (page seconds, performance.now() / 1000), the phrase being played, and what goes to the server.
// It keeps within what POST /api/conversation takes (schemas.py's MAX_CONVERSATION_NOTES and
// MAX_CONVERSATION_SECONDS): past that, its oldest notes are dropped and counted in `dropped`.

const MAX_NOTES = 20000; // the server's MAX_CONVERSATION_NOTES
const MAX_SPAN_SECONDS = 3540; // first to last start: the server takes starts up to an hour
const MAX_PHRASE_NOTES = 256;
const MAX_PHRASE_SECONDS = 30; // a longer phrase keeps its end
const MAX_HELD_SECONDS = 30;
const YOU = "you", MODEL = "model";

function rounded(seconds) {
  return Math.round(seconds * 1000) / 1000;
}

function heldFor(note, at) {
  // a key still held, as long as it has been (up to what a held note may last)
  return Math.min(MAX_HELD_SECONDS, Math.max(0.02, at - note.start));
}

export class Conversation {
  constructor() {
    this.clear();
  }

  clear() {
    this.notes = []; // {pitch, start, duration (null while held), velocity, program, who, answer}
    this.held = new Map(); // pitch -> its note
    this.phrase = [];
    this.earliest = Infinity; // the first note's start
    this.latest = -Infinity; // the last note's
    this.dropped = 0; // oldest notes forgotten to stay within the server's limits
  }

  get size() {
    return this.notes.length;
  }

  add(note) {
    this.notes.push(note);
    this.earliest = Math.min(this.earliest, note.start);
    this.latest = Math.max(this.latest, note.start);
    if (this.notes.length > MAX_NOTES || this.latest - this.earliest > MAX_SPAN_SECONDS) {
      this.trim();
    }
    return note;
  }

  trim() {
    // the oldest notes go, until the rest fit the server's count and hour
    this.notes.sort((a, b) => a.start - b.start);
    let drop = Math.max(0, this.notes.length - MAX_NOTES);
    const oldest = this.latest - MAX_SPAN_SECONDS;
    while (drop < this.notes.length - 1 && this.notes[drop].start < oldest) drop += 1;
    this.notes.splice(0, drop);
    this.dropped += drop;
    this.earliest = this.notes.length ? this.notes[0].start : Infinity;
  }

  bounds() {
    this.earliest = this.notes.reduce((first, note) => Math.min(first, note.start), Infinity);
    this.latest = this.notes.reduce((last, note) => Math.max(last, note.start), -Infinity);
  }

  /** The player pressed a key at page time `at`; returns the note (its duration comes later). */
  down(pitch, velocity, at) {
    this.up(pitch, at);
    const note = this.add({ pitch, start: at, duration: null, velocity, program: 0, who: YOU });
    this.phrase.push(note);
    if (this.phrase.length > MAX_PHRASE_NOTES) this.phrase.shift(); // only its end is sent
    this.held.set(pitch, note);
    return note;
  }

  up(pitch, at) {
    const note = this.held.get(pitch);
    if (!note) return null;
    this.held.delete(pitch);
    note.duration = Math.min(MAX_HELD_SECONDS, Math.max(0.02, at - note.start));
    return note;
  }

  get holding() {
    return this.held.size > 0;
  }

  /** Ends the phrase being played: {notes, first, end}, its notes from its first note's start
   * for the server, and the page times of that first note and of the phrase's end. */
  takePhrase(at) {
    for (const pitch of [...this.held.keys()]) this.up(pitch, at);
    let notes = this.phrase;
    this.phrase = [];
    if (!notes.length) return { notes: [], first: at, end: at };
    const end = Math.max(...notes.map((note) => note.start + note.duration));
    notes = notes.filter((note) => note.start >= end - MAX_PHRASE_SECONDS);
    const first = Math.min(...notes.map((note) => note.start));
    const sent = notes.map((note) => ({
      pitch: note.pitch, start: rounded(note.start - first), duration: rounded(note.duration),
      velocity: note.velocity,
    }));
    return { notes: sent, first, end };
  }

  /** A note of the model's answer number `answer`, at page time `start`. */
  answer(note, start, answer) {
    return this.add({ pitch: note.pitch, start, duration: Math.max(0.01, note.duration),
      velocity: note.velocity, program: note.program, who: MODEL, answer });
  }

  /** Forgets the notes of answer `answer` that had not begun by page time `at` (cut short). */
  cut(answer, at) {
    this.notes = this.notes.filter((note) => note.answer !== answer || note.start < at);
    this.bounds();
  }

  /** Page time `at` on the timeline(): seconds from the first note (null without notes). */
  offset(at) {
    return this.notes.length ? rounded(at - this.earliest) : null;
  }

  /** The whole conversation from its first note, in start order, as plain data. */
  timeline(at = performance.now() / 1000) {
    if (!this.notes.length) return [];
    const origin = this.earliest;
    return this.notes
      .map((note) => ({
        pitch: note.pitch, start: rounded(note.start - origin),
        duration: rounded(note.duration ?? heldFor(note, at)),
        velocity: note.velocity, program: note.program, who: note.who,
      }))
      .sort((a, b) => a.start - b.start);
  }

  /** The body of POST /api/conversation. */
  request(tempo) {
    const notes = this.timeline().map(({ who, ...note }) => note);
    return { notes, tempo };
  }
}
