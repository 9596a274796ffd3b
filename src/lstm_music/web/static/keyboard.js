// Play along: an on-screen keyboard (mouse, touch, pen), the computer keyboard's letter rows and,
// where the browser offers it, Web MIDI input. Each source calls down(pitch, velocity) and
// up(pitch); a pitch held from two sources at once sounds once.

const NAMES = ["C", "C♯", "D", "D♯", "E", "F", "F♯", "G", "G♯", "A", "A♯", "B"];
const BLACK = new Set([1, 3, 6, 8, 10]);
// physical keys (KeyboardEvent.code) from the lowest pitch up: A W S E D F T G Y H U J K ...
const LETTERS = ["KeyA", "KeyW", "KeyS", "KeyE", "KeyD", "KeyF", "KeyT", "KeyG", "KeyY", "KeyH",
  "KeyU", "KeyJ", "KeyK", "KeyO", "KeyL", "KeyP", "Semicolon", "Quote"];
const LETTER_LABELS = ["A", "W", "S", "E", "D", "F", "T", "G", "Y", "H", "U", "J", "K", "O", "L",
  "P", ";", "'"];
const KEYS = 25; // two octaves, C to C
const LOWEST = 36, HIGHEST = 96; // where Z and X may move the keyboard
const TYPED_VELOCITY = 90;

export function pitchName(pitch) {
  return `${NAMES[pitch % 12]}${Math.floor(pitch / 12) - 1}`;
}

function typing(target) {
  return target instanceof HTMLElement && (target.isContentEditable
    || ["INPUT", "SELECT", "TEXTAREA"].includes(target.tagName));
}

export class Keyboard {
  /** root: the element to fill; down/up: callbacks; base: the lowest key's pitch (a C). */
  constructor(root, { down, up }, base = 60) {
    this.root = root;
    this.down = down;
    this.up = up;
    this.base = base;
    this.sources = new Map(); // pitch -> Set of what holds it ("pointer:1", "key:KeyA", "midi")
    this.pointers = new Map(); // pointerId -> pitch
    this.render();
    root.addEventListener("pointerdown", (event) => this.pointerDown(event));
    for (const type of ["pointerup", "pointercancel"]) {
      document.addEventListener(type, (event) => this.pointerUp(event)); // also off the keys
    }
    root.addEventListener("pointerover", (event) => this.pointerSlide(event));
    root.addEventListener("contextmenu", (event) => event.preventDefault());
    document.addEventListener("keydown", (event) => this.keyDown(event));
    document.addEventListener("keyup", (event) => this.keyUp(event));
    window.addEventListener("blur", () => this.releaseAll());
  }

  render() {
    const keys = [];
    for (let index = 0; index < KEYS; index++) {
      const pitch = this.base + index;
      const key = document.createElement("button");
      key.type = "button";
      key.className = BLACK.has(pitch % 12) ? "key black" : "key white";
      key.dataset.pitch = String(pitch);
      key.setAttribute("aria-label", pitchName(pitch));
      key.tabIndex = -1;
      if (index < LETTER_LABELS.length) {
        const letter = document.createElement("span");
        letter.textContent = LETTER_LABELS[index];
        key.append(letter);
      }
      if (pitch % 12 === 0) key.title = pitchName(pitch);
      keys.push(key);
    }
    this.root.replaceChildren(...keys);
  }

  /** Moves the keyboard by octaves (the letters follow). */
  shift(octaves) {
    const base = this.base + 12 * octaves;
    if (base < LOWEST || base + KEYS - 1 > HIGHEST) return;
    this.releaseAll();
    this.base = base;
    this.render();
  }

  press(pitch, velocity, source) {
    let holders = this.sources.get(pitch);
    if (!holders) this.sources.set(pitch, (holders = new Set()));
    const first = holders.size === 0;
    holders.add(source);
    if (first) {
      this.light(pitch, true);
      this.down(pitch, Math.max(1, Math.min(127, Math.round(velocity))));
    }
  }

  release(pitch, source) {
    const holders = this.sources.get(pitch);
    if (!holders || !holders.delete(source)) return;
    if (holders.size === 0) {
      this.sources.delete(pitch);
      this.light(pitch, false);
      this.up(pitch);
    }
  }

  releaseAll() {
    for (const [pitch, holders] of [...this.sources]) {
      for (const source of [...holders]) this.release(pitch, source);
    }
    this.pointers.clear();
  }

  light(pitch, on) {
    const key = this.root.querySelector(`[data-pitch="${pitch}"]`);
    if (key) key.classList.toggle("down", on);
  }

  keyAt(event) {
    const key = event.target instanceof Element ? event.target.closest(".key") : null;
    return key && this.root.contains(key) ? key : null;
  }

  pointerDown(event) {
    const key = this.keyAt(event);
    if (!key || event.button > 0) return;
    event.preventDefault();
    key.releasePointerCapture?.(event.pointerId); // so that sliding over keys plays them
    const box = key.getBoundingClientRect();
    const depth = Math.max(0, Math.min(1, (event.clientY - box.top) / box.height));
    const pitch = Number(key.dataset.pitch);
    this.pointers.set(event.pointerId, pitch);
    this.press(pitch, 45 + 75 * depth, `pointer:${event.pointerId}`); // nearer the front, louder
  }

  pointerSlide(event) {
    const held = this.pointers.get(event.pointerId);
    const key = this.keyAt(event);
    if (held === undefined || !key || Number(key.dataset.pitch) === held) return;
    this.release(held, `pointer:${event.pointerId}`);
    const pitch = Number(key.dataset.pitch);
    this.pointers.set(event.pointerId, pitch);
    this.press(pitch, TYPED_VELOCITY, `pointer:${event.pointerId}`);
  }

  pointerUp(event) {
    const held = this.pointers.get(event.pointerId);
    if (held === undefined) return;
    this.pointers.delete(event.pointerId);
    this.release(held, `pointer:${event.pointerId}`);
  }

  keyDown(event) {
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) return;
    if (event.code === "KeyZ" || event.code === "KeyX") {
      if (!event.repeat) this.shift(event.code === "KeyZ" ? -1 : 1);
      event.preventDefault();
      return;
    }
    const index = LETTERS.indexOf(event.code);
    if (index < 0) return;
    event.preventDefault();
    if (!event.repeat) this.press(this.base + index, TYPED_VELOCITY, `key:${event.code}`);
  }

  keyUp(event) {
    const index = LETTERS.indexOf(event.code);
    if (index >= 0) this.release(this.base + index, `key:${event.code}`);
  }

  /** Web MIDI input, asked for on a click (browsers may ask the user); says what it found. */
  async connectMidi() {
    if (!navigator.requestMIDIAccess) return "this browser has no Web MIDI";
    const access = await navigator.requestMIDIAccess();
    const listen = () => {
      const names = [];
      for (const input of access.inputs.values()) {
        input.onmidimessage = (message) => this.midiMessage(message.data);
        names.push(input.name || "MIDI input");
      }
      return names;
    };
    access.onstatechange = () => listen();
    const names = listen();
    return names.length ? `MIDI: ${names.join(", ")}` : "no MIDI input found: plug one in";
  }

  midiMessage(data) {
    if (!data || data.length < 3) return;
    const kind = data[0] & 0xf0, pitch = data[1] & 0x7f, velocity = data[2] & 0x7f;
    if (kind === 0x90 && velocity > 0) this.press(pitch, velocity, "midi");
    else if (kind === 0x80 || kind === 0x90) this.release(pitch, "midi");
  }
}
