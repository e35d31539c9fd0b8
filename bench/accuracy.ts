/*
 * Accuracy of the content engine on the labelled corpus, k-fold: every message is scored by
 * a model that never trained on it (fold = sha256 prefix mod K). Prints, per corpus source,
 * ham flagged (false positives) and spam missed (false negatives) at the spam and surespam
 * levels, at the default thresholds and weights.
 */
import { bucketSymbols } from '../appliance/engine/filters/classifier'
import { heldOutCalibrated } from '../appliance/engine/recipe/calibration'
import type { Sample } from '../appliance/engine/recipe/corpus'
import { DEFAULT_THRESHOLDS, score, type Symbol, type Verdict, verdictFor } from '../appliance/engine/symbols'

export { corpusRaw, foldOf, loadSamples, type Sample, stripVerdictHeaders } from '../appliance/engine/recipe/corpus'

export interface VerdictCounts {
  ham: number
  hamFlagged: number
  hamSurespam: number
  spam: number
  spamMissed: number
  spamNotSure: number
}

export interface SourceStats extends VerdictCounts {
  source: string
}

export const emptyCounts = (): VerdictCounts => ({ ham: 0, hamFlagged: 0, hamSurespam: 0, spam: 0, spamMissed: 0, spamNotSure: 0 })

export function countVerdict(c: VerdictCounts, spam: boolean, v: Verdict): void {
  if (spam) {
    c.spam++
    if (v === 'clean') c.spamMissed++
    if (v !== 'surespam') c.spamNotSure++
  } else {
    c.ham++
    if (v !== 'clean') c.hamFlagged++
    if (v === 'surespam') c.hamSurespam++
  }
}

/** Each sample's calibrated spam probability, from a model trained on the other folds. */
export function heldOutProbabilities(samples: Sample[], folds: number): number[] {
  return heldOutCalibrated(samples.map((s) => ({ f: s.features, spam: s.spam, fold: s.fold })), folds).heldOut
}

/** Each sample's classifier symbols, from a model trained on the other folds. */
export function heldOutClassifierSymbols(samples: Sample[], folds: number, probabilities = heldOutProbabilities(samples, folds)): Symbol[][] {
  return probabilities.map(bucketSymbols)
}

export function crossValidate(samples: Sample[], folds: number, classifier = heldOutClassifierSymbols(samples, folds)): Map<string, SourceStats> {
  const stats = new Map<string, SourceStats>()
  samples.forEach((s, i) => {
    const symbols = [...s.fixed, ...classifier[i]]
    const verdict = verdictFor(score(symbols).score, DEFAULT_THRESHOLDS)
    let st = stats.get(s.source)
    if (!st) stats.set(s.source, (st = { source: s.source, ...emptyCounts() }))
    countVerdict(st, s.spam, verdict)
  })
  return stats
}

/**
 * Threshold-free: with the cut set where at most `rate` of ham is flagged (just above the
 * highest ham score left unflagged), how much spam falls at or under it. This is the
 * trade-off curve the default thresholds pick one point of.
 */
export function missedAtFlagRate(points: number[], spam: boolean[], rate: number): { cut: number; hamFlagged: number; spamMissed: number; ham: number; spam: number } {
  const ham = points.filter((_, i) => !spam[i]).sort((a, b) => b - a)
  const cut = ham[Math.floor(ham.length * rate)] ?? -Infinity
  const spamPoints = points.filter((_, i) => spam[i])
  return { cut, hamFlagged: ham.filter((p) => p > cut).length, spamMissed: spamPoints.filter((p) => p <= cut).length, ham: ham.length, spam: spamPoints.length }
}

/** The engine's points per message, from its held-out spam probability, for missedAtFlagRate. */
export function heldOutPoints(samples: Sample[], probabilities: number[]): number[] {
  // The probability breaks ties between messages with the same points, as a finer bucket would.
  return samples.map((s, i) => score([...s.fixed, ...bucketSymbols(probabilities[i])]).score + probabilities[i] / 100)
}

export const pct = (n: number, d: number) => (d ? `${((100 * n) / d).toFixed(2)} %` : '')

export function accuracyRows(stats: Map<string, SourceStats>): Record<string, string | number>[] {
  const all: SourceStats = { source: 'ALL', ...emptyCounts() }
  const rows: Record<string, string | number>[] = []
  for (const st of [...stats.values()].sort((a, b) => a.source.localeCompare(b.source))) {
    for (const k of ['ham', 'hamFlagged', 'hamSurespam', 'spam', 'spamMissed', 'spamNotSure'] as const) all[k] += st[k]
    rows.push(row(st))
  }
  rows.push(row(all))
  return rows
  function row(st: SourceStats): Record<string, string | number> {
    return {
      source: st.source,
      ham: st.ham,
      'ham flagged (FP)': pct(st.hamFlagged, st.ham),
      'ham as surespam': pct(st.hamSurespam, st.ham),
      spam: st.spam,
      'spam missed (FN)': pct(st.spamMissed, st.spam),
      'spam not surespam': pct(st.spamNotSure, st.spam),
    }
  }
}
