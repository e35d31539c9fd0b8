/*
 * Accuracy of the content engine on the labelled corpus, k-fold: every message is scored by
 * a model that never trained on it (fold = sha256 prefix mod K). Prints, per corpus source,
 * ham flagged (false positives) and spam missed (false negatives) at the spam and surespam
 * levels, at the default thresholds and weights.
 */
import fs from 'node:fs'
import path from 'node:path'
import { CONTENT_FILTERS } from '../appliance/engine/engine'
import { bucketSymbols } from '../appliance/engine/filters/classifier'
import { type FeatureVector, features, predictFeatures, trainLogistic } from '../appliance/engine/logistic'
import { FOREIGN_VERDICT, parseMessage, type ParsedMessage } from '../appliance/engine/message'
import { DEFAULT_THRESHOLDS, score, type Symbol, type Verdict, verdictFor } from '../appliance/engine/symbols'
import { tokenize, type Tokens } from '../appliance/engine/tokenize'
import { corpusDir, type ManifestRow, readManifest } from '../appliance/engine/training'

export interface Sample {
  source: string
  spam: boolean
  fold: number
  tokens: Tokens
  features: FeatureVector
  parsed: ParsedMessage
  fixed: Symbol[]
}

/**
 * Header fields in which another filter gave its verdict on the way into the corpus (the
 * providers' and the lists' spam filters; the parser's own list). An appliance sees mail
 * before any of these is added, so every engine in these benchmarks gets it without them.
 */
export function stripVerdictHeaders(raw: Buffer): Buffer {
  const text = raw.toString('latin1')
  const m = /\r?\n\r?\n/.exec(text)
  const headEnd = m ? m.index : text.length
  const lines = text.slice(0, headEnd).split(/(?<=\n)/)
  const kept: string[] = []
  let dropping = false
  for (const l of lines) {
    if (/^[ \t]/.test(l)) {
      if (!dropping) kept.push(l)
      continue
    }
    dropping = FOREIGN_VERDICT.test(l.slice(0, Math.max(0, l.indexOf(':'))).trim().toLowerCase())
    if (!dropping) kept.push(l)
  }
  return Buffer.from(kept.join('') + text.slice(headEnd), 'latin1')
}

export function corpusRaw(row: ManifestRow): Buffer {
  return stripVerdictHeaders(fs.readFileSync(path.join(corpusDir(), row.path)))
}

export const foldOf = (row: ManifestRow, folds: number) => parseInt(row.sha256.slice(0, 8), 16) % folds

export async function loadSamples(folds: number, filter: (source: string, i: number) => boolean = () => true): Promise<Sample[]> {
  const dir = corpusDir()
  const rows = readManifest(dir)
  const out: Sample[] = []
  let i = 0
  for (const r of rows) {
    if (!filter(r.source, i++)) continue
    const raw = corpusRaw(r)
    const parsed = await parseMessage(raw)
    out.push({
      source: r.source,
      spam: r.label === 'spam',
      fold: foldOf(r, folds),
      tokens: tokenize(parsed),
      features: { index: new Uint32Array(0), value: new Float32Array(0) },
      parsed,
      // Every filter but the classifier (no model given: folds train their own). Dated corpus
      // mail must not be judged against today's clock. A site's exported reports add what
      // the receiving server knew (blocklists, authentication), which no file can recompute.
      fixed: [
        ...CONTENT_FILTERS.flatMap((f) => f.check(raw, parsed, { now: Date.parse(parsed.date ?? '') || Date.now() })),
        ...r.symbols.map((name) => ({ name, detail: 'when it was received' })),
      ],
    })
  }
  for (const s of out) s.features = features(s.tokens)
  return out
}

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

/** Each sample's spam probability, from a model trained on the other folds. */
export function heldOutProbabilities(samples: Sample[], folds: number): number[] {
  const out: number[] = new Array(samples.length)
  for (let k = 0; k < folds; k++) {
    const model = trainLogistic(samples.filter((s) => s.fold !== k).map((s) => ({ f: s.features, spam: s.spam })))
    samples.forEach((s, i) => {
      if (s.fold === k) out[i] = predictFeatures(model, s.features)
    })
  }
  return out
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
