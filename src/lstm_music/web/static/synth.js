// Sound for the live page: a General MIDI SoundFont synthesizer (spessasynth_lib, vendored) in an
// AudioWorklet, or, where that cannot start, a few WebAudio oscillators so notes still sound.
// Callers give times on the page's clock (performance.now() in seconds) and schedule a little
// ahead of the playhead; `sync` ties that clock to the AudioContext's.

const VENDOR = "/static/vendor";
const LIBRARY = `${VENDOR}/spessasynth_lib/index.js`;
const PROCESSOR = `${VENDOR}/spessasynth_lib/spessasynth_processor.min.js`;
const SOUNDFONT = `${VENDOR}/fluidr3mono-gm-lite/FluidR3Mono_GM_lite.sf3`;
const LOAD_SECONDS = 10; // a synthesizer not ready by then is given up for the oscillators
const DRUM_CHANNEL = 9; // General MIDI's
const USER_CHANNEL = 15; // the player's own notes, a piano
const MODEL_CHANNELS = [0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13, 14];
const MAX_OSCILLATORS = 48; // the fallback drops notes past this many at once
const ALL_NOTES_OFF = 123;

function withTimeout(promise, seconds, what) {
  let timer;
  const late = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took over ${seconds} s`)), seconds * 1000);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

async function fetchSoundFont() {
  const response = await fetch(SOUNDFONT);
  if (!response.ok) throw new Error(`the SoundFont did not load (${response.status})`);
  return response.arrayBuffer();
}

function checkWebAssembly() {
  // the synthesizer decodes its samples with WebAssembly: a browser without it, or a page whose
  // Content-Security-Policy forbids compiling it ('wasm-unsafe-eval'), gets the oscillators
  if (typeof WebAssembly !== "object") throw new Error("this browser has no WebAssembly");
  try {
    new WebAssembly.Module(new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0]));
  } catch (ignored) {
    throw new Error("this page may not run WebAssembly");
  }
}

function frequency(pitch) {
  return 440 * 2 ** ((pitch - 69) / 12);
}

/** The fallback: one triangle oscillator a note, a noise burst a drum hit. */
class Oscillators {
  constructor(context) {
    this.context = context;
    this.output = context.createGain();
    this.output.gain.value = 0.5;
    const limiter = context.createDynamicsCompressor();
    this.output.connect(limiter).connect(context.destination);
    this.sounding = 0;
    this.held = new Map();
    this.noise = null;
  }

  voice(pitch, velocity, time) {
    const gain = this.context.createGain();
    const peak = 0.3 * (velocity / 127) ** 2;
    gain.gain.setValueAtTime(0, time);
    gain.gain.linearRampToValueAtTime(peak, time + 0.005);
    gain.gain.setTargetAtTime(peak * 0.5, time + 0.005, 0.15);
    const oscillator = this.context.createOscillator();
    oscillator.type = "triangle";
    oscillator.frequency.value = frequency(pitch);
    oscillator.connect(gain).connect(this.output);
    oscillator.start(time);
    this.sounding += 1;
    oscillator.onended = () => {
      this.sounding -= 1;
      gain.disconnect();
    };
    return { oscillator, gain };
  }

  release({ oscillator, gain }, time) {
    gain.gain.cancelScheduledValues(time);
    gain.gain.setTargetAtTime(0, time, 0.04);
    oscillator.stop(time + 0.3);
  }

  drum(velocity, time) {
    if (!this.noise) {
      const length = Math.floor(this.context.sampleRate * 0.1);
      this.noise = this.context.createBuffer(1, length, this.context.sampleRate);
      const data = this.noise.getChannelData(0);
      for (let i = 0; i < length; i++) data[i] = (Math.random() * 2 - 1) * (1 - i / length);
    }
    const source = this.context.createBufferSource();
    source.buffer = this.noise;
    const gain = this.context.createGain();
    gain.gain.value = 0.25 * (velocity / 127);
    source.connect(gain).connect(this.output);
    source.start(time);
  }

  play(note, time) {
    if (this.sounding >= MAX_OSCILLATORS) return;
    if (note.program < 0) return this.drum(note.velocity, time);
    this.release(this.voice(note.pitch, note.velocity, time), time + Math.max(0.05, note.duration));
  }

  down(pitch, velocity) {
    this.up(pitch);
    this.held.set(pitch, this.voice(pitch, velocity, this.context.currentTime));
  }

  up(pitch) {
    const voice = this.held.get(pitch);
    if (!voice) return;
    this.held.delete(pitch);
    this.release(voice, this.context.currentTime);
  }

  silence() {
    // the oscillators already started ring out; nothing further is scheduled by the caller
  }
}

/** The SoundFont synthesizer: General MIDI programs on channels, drums on channel 10. */
class SoundFontSynth {
  constructor(synth) {
    this.synth = synth;
    this.channels = new Map(); // program -> channel
    this.next = 0;
    synth.programChange(USER_CHANNEL, 0);
  }

  channel(program, time) {
    if (program < 0) return DRUM_CHANNEL;
    let channel = this.channels.get(program);
    if (channel === undefined) {
      channel = MODEL_CHANNELS[this.next % MODEL_CHANNELS.length];
      this.next += 1;
      for (const [other, used] of this.channels) if (used === channel) this.channels.delete(other);
      this.channels.set(program, channel);
      this.synth.programChange(channel, program, { time });
    }
    return channel;
  }

  play(note, time) {
    const channel = this.channel(note.program, time);
    this.synth.noteOn(channel, note.pitch, note.velocity, { time });
    this.synth.noteOff(channel, note.pitch, { time: time + Math.max(0.02, note.duration) });
  }

  down(pitch, velocity) {
    this.synth.noteOn(USER_CHANNEL, pitch, velocity);
  }

  up(pitch) {
    this.synth.noteOff(USER_CHANNEL, pitch);
  }

  silence(after) {
    // notes already handed over up to `after` are cut there too
    const channels = [...new Set([...this.channels.values(), DRUM_CHANNEL])];
    for (const channel of channels) {
      this.synth.controllerChange(channel, ALL_NOTES_OFF, 0);
      this.synth.controllerChange(channel, ALL_NOTES_OFF, 0, { time: after });
    }
  }
}

/** The page's sound: `await sound.load()`, then `play`, `down`, `up`, `silence`. */
export class Sound {
  constructor() {
    this.context = null;
    this.engine = "loading"; // then "soundfont", "oscillators" or "none"
    this.reason = "";
    this.output = null;
    this.offset = 0;
    this.quietUntil = 0; // page seconds: a silence() cuts every model note scheduled before it
  }

  async load() {
    const Context = window.AudioContext || window.webkitAudioContext;
    if (!Context) {
      this.engine = "none";
      this.reason = "this browser has no Web Audio";
      return;
    }
    this.context = new Context({ latencyHint: "interactive" });
    try {
      checkWebAssembly();
      if (!this.context.audioWorklet) throw new Error("this browser has no AudioWorklet");
      const started = Promise.all([
        import(LIBRARY),
        fetchSoundFont(),
        this.context.audioWorklet.addModule(PROCESSOR),
      ]).then(async ([library, bank]) => {
        const synth = new library.WorkletSynthesizer(this.context);
        synth.connect(this.context.destination);
        await synth.soundBankManager.addSoundBank(bank, "main");
        await synth.isReady;
        return synth;
      });
      this.output = new SoundFontSynth(await withTimeout(started, LOAD_SECONDS, "the synthesizer"));
      this.engine = "soundfont";
    } catch (error) {
      this.output = new Oscillators(this.context);
      this.engine = "oscillators";
      this.reason = error && error.message ? error.message : String(error);
    }
  }

  /** Asks the browser to let sound out (a click or key press allows it); true when it runs. */
  async resume() {
    if (!this.context) return false;
    if (this.context.state !== "running") {
      try {
        await withTimeout(this.context.resume(), 1, "starting the sound");
      } catch (ignored) {
        // blocked until the user interacts with the page
      }
    }
    return this.context.state === "running";
  }

  get running() {
    return Boolean(this.context) && this.context.state === "running";
  }

  /** Ties the page's clock (performance.now() in seconds, what callers use) to the sound's:
   * once a session, so that notes keep their spacing. */
  sync() {
    if (this.running) this.offset = this.context.currentTime - performance.now() / 1000;
  }

  play(note, pageSeconds) {
    if (this.output && this.running) this.output.play(note, pageSeconds + this.offset);
  }

  down(pitch, velocity) {
    if (this.output && this.running) this.output.down(pitch, velocity);
  }

  up(pitch) {
    if (this.output && this.running) this.output.up(pitch);
  }

  /** Cuts the model's notes now and again at `afterPageSeconds` (those already handed over);
   * a note that must not be cut starts after `quietUntil`. */
  silence(afterPageSeconds) {
    this.quietUntil = Math.max(this.quietUntil, afterPageSeconds);
    if (this.output && this.running) this.output.silence(afterPageSeconds + this.offset);
  }
}
