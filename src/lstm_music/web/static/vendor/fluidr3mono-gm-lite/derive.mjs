// How FluidR3Mono_GM_lite.sf3 was made from FluidR3Mono_GM.sf3 2.312 (MIT); not run by
// lstm-music. Keeps the 128 melodic presets of bank 0 and the Standard drum kit, one velocity
// layer per instrument, halves the key splits (up to three times) of instruments with more than
// MAX_ZONES (the grand piano and drums whole); resamples to at most 22050 Hz (sox), cuts
// unlooped samples at MAX_SECONDS with a fade and looped ones after their loop, re-encodes with
// oggenc -q QUALITY.
// Needs node_modules with spessasynth_core and stb-vorbis, and sox and oggenc on the PATH:
//   MAX_ZONES=4 QUALITY=0 MAX_SECONDS=2.5 node derive.mjs FluidR3Mono_GM.sf3 FluidR3Mono_GM_lite.sf3
import { SoundBankLoader, GeneratorTypes } from "spessasynth_core";
import { StbVorbis } from "stb-vorbis";
import { execFileSync } from "child_process";
import fs from "fs";

const [source, target] = process.argv.slice(2);
const RATE = 22050, MAX_SECONDS = Number(process.env.MAX_SECONDS || 2.5), FADE = 0.25;
const QUALITY = process.env.QUALITY || "0";
await StbVorbis.ready;
const buf = fs.readFileSync(source);
const bank = SoundBankLoader.fromArrayBuffer(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
const keep = (p) => p.bankMSB === 0 && p.bankLSB === 0 && (p.isGMGSDrum ? p.program === 0 : true);
for (const p of [...bank.presets]) if (!keep(p)) bank.deletePreset(p);
bank.removeUnusedElements();

const MAX_ZONES = Number(process.env.MAX_ZONES || 6);
function keepOneVelocityLayer(inst) {
  const layers = new Set(inst.zones.map((z) => `${z.velRange.min}-${z.velRange.max}`));
  if (layers.size < 2) return;
  const inLayer = (z) => z.velRange.min <= 100 && (z.velRange.max < 0 || z.velRange.max >= 100);
  for (let i = inst.zones.length - 1; i >= 0; i--) if (!inLayer(inst.zones[i])) inst.deleteZone(i, true);
  for (const z of inst.zones) { z.velRange.min = 0; z.velRange.max = 127; }
}
function thinKeySplits(inst) {
  const zones = [...inst.zones].sort((a, b) => a.keyRange.min - b.keyRange.min);
  if (zones.length <= MAX_ZONES || zones.some((z) => z.keyRange.min < 0)) return;
  for (let i = 1; i < zones.length; i++) if (zones[i].keyRange.min <= zones[i - 1].keyRange.max) return;
  const drop = new Set();
  for (let i = 1; i < zones.length; i += 2) {
    zones[i - 1].keyRange.max = zones[i].keyRange.max;
    drop.add(zones[i]);
  }
  for (let i = inst.zones.length - 1; i >= 0; i--) if (drop.has(inst.zones[i])) inst.deleteZone(i, true);
}
for (const inst of bank.instruments) {
  keepOneVelocityLayer(inst);
  if (inst.linkedTo.some((p) => p.isGMGSDrum || p.program === 0)) continue; // drums; the grand piano kept whole
  for (let round = 0; round < 3 && inst.zones.length > MAX_ZONES; round++) thinKeySplits(inst);
}
bank.removeUnusedElements();

const looped = new Set();
for (const inst of bank.instruments) {
  const global = inst.globalZone ? inst.globalZone.getGenerator(GeneratorTypes.sampleModes, 0) : 0;
  for (const z of inst.zones) if (z.getGenerator(GeneratorTypes.sampleModes, global) & 1) looped.add(z.sample);
}

function run(args, input) { return execFileSync(args[0], args.slice(1), { input, maxBuffer: 1 << 28 }); }
function resample(data, rate) {
  if (rate <= RATE) return [data, rate];
  const raw = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const out = run(["sox", "-t", "f32", "-r", String(rate), "-c", "1", "-", "-t", "f32", "-", "rate", "-v", String(RATE)], raw);
  return [new Float32Array(out.buffer.slice(out.byteOffset, out.byteOffset + out.byteLength)), RATE];
}
async function encode(data, rate) {
  const pcm16 = Buffer.alloc(data.length * 2);
  for (let i = 0; i < data.length; i++) pcm16.writeInt16LE(Math.max(-32768, Math.min(32767, Math.round(data[i] * 32767))), i * 2);
  return new Uint8Array(run(["oggenc", "-Q", "-r", "-B", "16", "-C", "1", "-R", String(rate), "-q", QUALITY, "--serial", "1", "-o", "-", "-"], pcm16));
}
let before = 0, after = 0;
for (const s of bank.samples) {
  before += s.getRawData(true).length;
  let data = s.getAudioData();
  const ratio = Math.min(1, RATE / s.sampleRate);
  let [resampled, rate] = resample(data, s.sampleRate);
  let loopStart = Math.floor(s.loopStart * ratio), loopEnd = Math.floor(s.loopEnd * ratio);
  let length = resampled.length;
  if (looped.has(s)) length = Math.min(length, loopEnd + 64);
  else if (length > MAX_SECONDS * rate) {
    length = Math.floor(MAX_SECONDS * rate);
    const fade = Math.floor(FADE * rate);
    for (let i = 0; i < fade; i++) resampled[length - fade + i] *= 1 - i / fade;
  }
  resampled = resampled.slice(0, length);
  loopEnd = Math.min(loopEnd, length); loopStart = Math.min(loopStart, Math.max(0, loopEnd - 1));
  s.setAudioData(resampled, rate);
  s.loopStart = loopStart; s.loopEnd = loopEnd;
  s.setCompressedData(await encode(resampled, rate));
  after += s.getRawData(true).length;
}
bank.soundBankInfo.name = "FluidR3Mono GM (lstm-music subset)";
bank.soundBankInfo.comment = "Derived from FluidR3Mono_GM.sf3 2.312 (MIT): bank 0 melodic presets and the Standard kit, 22050 Hz, shortened tails, re-encoded. See LICENCE.";
const out = bank.writeSF2({ software: "lstm-music derive" });
fs.writeFileSync(target, Buffer.from(out));
console.log(JSON.stringify({ presets: bank.presets.length, samples: bank.samples.length, before, after, file: out.byteLength }));
