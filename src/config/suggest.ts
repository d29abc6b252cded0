// "Did you mean ...?" for a misspelled key or section: the closest known name by edit distance,
// offered only when it is close enough to be a typo rather than a different word.

/** Levenshtein distance, with a transposition counted as one edit (Damerau, restricted). */
export function editDistance(a: string, b: string): number {
  const rows = a.length + 1;
  const cols = b.length + 1;
  const d: number[][] = Array.from({ length: rows }, (_, i) => Array.from({ length: cols }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, d[i - 2]![j - 2]! + 1);
      d[i]![j] = best;
    }
  }
  return d[a.length]![b.length]!;
}

/**
 * The known name closest to `word`, or null when none is within a typo's reach: at most 1 edit for
 * names of up to 4 letters, 2 up to 8, and 3 beyond. A name that contains `word` (or the other way
 * round) also counts, so `pool_size` finds `default_pool_size`.
 */
export function suggest(word: string, known: Iterable<string>): string | null {
  const w = word.toLowerCase();
  const limit = w.length <= 4 ? 1 : w.length <= 8 ? 2 : 3;
  let best: string | null = null;
  let bestScore = Infinity;
  for (const k of known) {
    const candidate = k.toLowerCase();
    if (candidate === w) return k;
    let score = editDistance(w, candidate);
    if (score > limit && w.length >= 4 && (candidate.includes(w) || w.includes(candidate))) score = limit;
    if (score <= limit && score < bestScore) {
      best = k;
      bestScore = score;
    }
  }
  return best;
}

/** ` (did you mean "x"?)`, or '' when nothing is close. */
export function didYouMean(word: string, known: Iterable<string>, quote: (s: string) => string = (s) => `"${s}"`): string {
  const s = suggest(word, known);
  return s === null ? '' : ` (did you mean ${quote(s)}?)`;
}
