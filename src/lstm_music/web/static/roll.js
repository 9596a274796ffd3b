// The live piano roll: a canvas that draws notes as they arrive and scrolls with the playhead.
// Time across (the playhead fixed at a quarter of the width), pitch up, one colour an instrument;
// the player's own notes drawn on top, in the warm colour with an outline, and named in the legend.

const PAST_SECONDS = 3;
const AHEAD_SECONDS = 9;
const MAX_NOTES = 20000; // the oldest are forgotten past this many
const PALETTE = [
  "#3f7fd9", "#2aa876", "#b45ad6", "#d9a21b", "#d9534f", "#18a3b8", "#7d8a2e", "#9a6b4b",
];
const YOU = "you";

function labelOf(note) {
  if (note.who === YOU) return "you (keyboard)";
  if (note.instrument) return note.instrument;
  return note.program < 0 ? "drums" : `program ${note.program}`;
}

function keyOf(note) {
  return note.who === YOU ? YOU : `program:${note.program}`;
}

function octaveName(pitch) {
  return `C${Math.floor(pitch / 12) - 1}`;
}

export class PianoRoll {
  /** canvas: the <canvas>; legend: an element for the colours' names (shown past one). */
  constructor(canvas, legend) {
    this.canvas = canvas;
    this.legend = legend;
    this.notes = [];
    this.colours = new Map(); // instrument key -> {colour, label}
    this.until = 0; // page seconds the animation runs to at least
    this.frame = null;
    this.context = canvas.getContext("2d");
    new ResizeObserver(() => this.draw()).observe(canvas);
    this.draw();
  }

  static now() {
    return performance.now() / 1000;
  }

  clear() {
    this.notes = [];
    this.colours.clear();
    this.legend.replaceChildren();
    this.legend.hidden = true;
    this.draw();
  }

  /** Adds a note {pitch, start, duration (null while held), velocity, program, who, instrument}. */
  add(note) {
    this.notes.push(note);
    if (this.notes.length > MAX_NOTES) this.notes.splice(0, this.notes.length - MAX_NOTES);
    this.colourOf(note);
    this.keepAwake(note.start + (note.duration || 0) + 1);
    return note;
  }

  /** Removes the notes that `drop(note)` picks (say, an answer cut short, or a piece that
   * ended), and the legend's names that no note is left for. */
  remove(drop) {
    this.notes = this.notes.filter((note) => !drop(note));
    const left = new Set(this.notes.map(keyOf));
    for (const key of [...this.colours.keys()]) if (!left.has(key)) this.colours.delete(key);
    this.updateLegend();
    this.draw();
  }

  /** How many notes are drawn, by whose they are ("you", "model"): for tests. */
  counts() {
    const found = { you: 0, model: 0 };
    for (const note of this.notes) found[note.who === YOU ? "you" : "model"] += 1;
    return found;
  }

  keepAwake(until) {
    this.until = Math.max(this.until, until);
    if (this.frame === null) this.frame = requestAnimationFrame(() => this.tick());
  }

  tick() {
    this.frame = null;
    this.draw();
    const held = this.notes.some((note) => note.duration === null);
    if (held || PianoRoll.now() < this.until) {
      this.frame = requestAnimationFrame(() => this.tick());
    }
  }

  colourOf(note) {
    const key = keyOf(note);
    let entry = this.colours.get(key);
    if (!entry) {
      const style = getComputedStyle(this.canvas);
      const models = [...this.colours.keys()].filter((k) => k !== YOU).length;
      const colour = key === YOU ? style.getPropertyValue("--warm").trim() || "#c8692c"
        : PALETTE[models % PALETTE.length];
      entry = { colour, label: labelOf(note) };
      this.colours.set(key, entry);
      this.updateLegend();
    }
    return entry.colour;
  }

  updateLegend() {
    // the player first; shown past one colour, and always once the player has played
    const entries = [...this.colours.entries()].sort(([a], [b]) => (b === YOU) - (a === YOU));
    const items = entries.map(([key, { colour, label }]) => {
      const item = document.createElement("li");
      const swatch = document.createElement("span");
      swatch.className = key === YOU ? "swatch you" : "swatch";
      swatch.style.background = colour;
      if (key === YOU) item.className = "you";
      item.append(swatch, document.createTextNode(label));
      return item;
    });
    this.legend.replaceChildren(...items);
    this.legend.hidden = items.length < 2 && !this.colours.has(YOU);
  }

  pitchRange(from, to) {
    let low = 60, high = 72;
    for (const note of this.notes) {
      const end = note.start + (note.duration ?? 0);
      if (end < from || note.start > to) continue;
      low = Math.min(low, note.pitch);
      high = Math.max(high, note.pitch);
    }
    const middle = (low + high) / 2;
    const span = Math.max(24, high - low + 4);
    return [Math.floor(middle - span / 2), Math.ceil(middle + span / 2)];
  }

  draw() {
    const canvas = this.canvas, context = this.context;
    const ratio = window.devicePixelRatio || 1;
    const width = canvas.clientWidth, height = canvas.clientHeight;
    if (!width || !height) return;
    const pixels = [Math.round(width * ratio), Math.round(height * ratio)];
    if (canvas.width !== pixels[0] || canvas.height !== pixels[1]) {
      [canvas.width, canvas.height] = pixels;
    }
    context.setTransform(ratio, 0, 0, ratio, 0, 0);
    const style = getComputedStyle(canvas);
    const now = PianoRoll.now();
    const from = now - PAST_SECONDS, to = now + AHEAD_SECONDS;
    const perSecond = width / (PAST_SECONDS + AHEAD_SECONDS);
    const [low, high] = this.pitchRange(from, to);
    const row = height / (high - low + 1);
    const y = (pitch) => height - (pitch - low + 1) * row;
    context.fillStyle = style.getPropertyValue("--panel").trim() || "#fff";
    context.fillRect(0, 0, width, height);
    context.strokeStyle = style.getPropertyValue("--line").trim() || "#ddd";
    context.fillStyle = style.getPropertyValue("--muted").trim() || "#666";
    context.font = "11px system-ui, sans-serif";
    context.lineWidth = 1;
    for (let pitch = Math.ceil(low / 12) * 12; pitch <= high; pitch += 12) {
      const line = Math.round(y(pitch) + row) + 0.5;
      context.beginPath();
      context.moveTo(0, line);
      context.lineTo(width, line);
      context.stroke();
      context.fillText(octaveName(pitch), 4, Math.max(11, line - 3));
    }
    const outline = style.getPropertyValue("--text").trim() || "#1d2433";
    for (const yours of [false, true]) { // the player's notes last: on top of the model's
      for (const note of this.notes) {
        if ((note.who === YOU) !== yours) continue;
        const end = note.start + (note.duration ?? now - note.start);
        if (end < from || note.start > to) continue;
        const box = [(note.start - from) * perSecond, y(note.pitch),
          Math.max(2, (end - note.start) * perSecond - 1), Math.max(2, row - 1)];
        context.globalAlpha = yours ? 1 : 0.45 + 0.55 * (note.velocity / 127);
        context.fillStyle = this.colourOf(note);
        context.fillRect(...box);
        if (yours) {
          context.strokeStyle = outline;
          context.lineWidth = 1.5;
          context.strokeRect(...box);
        }
      }
    }
    context.globalAlpha = 1;
    const playhead = Math.round(PAST_SECONDS * perSecond) + 0.5;
    context.strokeStyle = style.getPropertyValue("--accent-strong").trim() || "#2f4b82";
    context.lineWidth = 2;
    context.beginPath();
    context.moveTo(playhead, 0);
    context.lineTo(playhead, height);
    context.stroke();
  }
}
