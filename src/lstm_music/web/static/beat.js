// The beat of a played phrase, and where an answer goes on it: the tempo guessed from how the
// player played (when no tempo is set), and the page time of the answer's piece time 0 so that
// the answer falls on the phrase's beats and bars. Pure functions, page seconds throughout.

const CHORD_SECONDS = 0.05; // onsets closer than this are one (a chord, a sloppy one)
const LIKELY = [60, 160]; // bpm a phrase's beat is first looked for in
const LIMITS = [40, 200]; // bpm a guess is kept within
const GAP_BEATS = [1, 0.5, 2, 0.25]; // the usual gap read as a quarter, eighth, half, sixteenth
const BEATS_A_BAR = 4; // played_score writes 4/4
const MAX_BAR_SECONDS = 2.5; // an answer waits for the next bar line up to this long a bar,
// else for the next beat

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

/** The phrase's tempo in quarter notes a minute, from its notes' starts (seconds): the median
 * gap between onsets as the note value that lands in 60-160 bpm; null with fewer than two. */
export function estimateTempo(notes) {
  const onsets = [];
  for (const start of notes.map((note) => note.start).sort((a, b) => a - b)) {
    if (!onsets.length || start - onsets[onsets.length - 1] >= CHORD_SECONDS) onsets.push(start);
  }
  if (onsets.length < 2) return null;
  const gap = median(onsets.slice(1).map((start, index) => start - onsets[index]));
  for (const beats of GAP_BEATS) {
    const tempo = (60 * beats) / gap;
    if (tempo >= LIKELY[0] && tempo <= LIKELY[1]) return Math.round(tempo);
  }
  const slow = gap > 1; // slower than any guess above: a half note; faster: a sixteenth
  const tempo = (60 * (slow ? 2 : 0.25)) / gap;
  return Math.round(Math.min(LIMITS[1], Math.max(LIMITS[0], tempo)));
}

/** Page seconds of the answer's piece time 0 (its primer's, the phrase's, first note), on the
 * phrase's grid and no earlier than `earliest`.
 *
 * phrase: {first, end}, page seconds of the phrase's first note and of its end; tempo: the
 * answer's (the start event's); primerSeconds: where the primer ends on the piece's timeline.
 * The piece's timeline starts at the phrase's first note, so time 0 on `first` puts the
 * primer's end on the phrase's end; a primer that kept only the phrase's last tokens is
 * shorter, and time 0 moves on by the whole beats left out. Then whole bars (or beats, in a
 * slow tempo) later, until the answer's first note is no earlier than the caller allows. */
export function answerOrigin(phrase, tempo, primerSeconds, earliest) {
  const beat = 60 / tempo;
  const bar = BEATS_A_BAR * beat;
  const step = bar <= MAX_BAR_SECONDS ? bar : beat;
  const left = Math.max(0, Math.round((phrase.end - phrase.first - primerSeconds) / beat));
  const start = phrase.first + left * beat;
  const steps = Math.max(0, Math.ceil((earliest - start) / step - 1e-9));
  return start + steps * step;
}
