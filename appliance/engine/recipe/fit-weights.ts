/*
 * Fits the weights table to labelled mail instead of guessing it. Each message comes with
 * the symbols every filter gave it and the classifier bucket of its held-out (calibrated)
 * probability; a logistic regression over those symbols, ham and spam weighing the same in
 * total, gives each symbol its weight, scaled so that the spam threshold (5 points) keeps
 * the flagged ham at or under the target rate and no ham reaches surespam (10 points).
 *
 * Bounds, because a fit follows its corpus' noise: rules may only add points (a filter that
 * fires must never excuse spam), and less than the threshold each; the classifier's buckets
 * keep their order (a surer bucket never weighs less), subtract at most 3 points (none once
 * spam is the likelier label) and alone never reach surespam. Policy symbols (viruses, dangerous attachments, RBLs, authentication,
 * lists) keep the weights an admin expects, and a rule that fires on too few training
 * messages to be fitted (a phishing rule the training mail barely shows) gets its hand-set
 * weight (recipe/hand-set.ts); the table says which those are.
 */
import { BUCKETS } from '../filters/classifier'
import { HAND_SET } from './hand-set'

/** However sure the classifier is that mail is ham, it excuses at most this much. */
const CLASSIFIER_MIN_POINTS = -3
/**
 * A calibrated probability of 0.5 or more says spam is the likelier label, so that bucket
 * never excuses anything (0 at least). Fitted freely, the buckets up to 0.8 sank to -3 with
 * the ham-sure ones, and a phish the classifier leaned on at 0.8 needed 8 points of rules.
 * Measured (npm run bench -- accuracy, as shipped): phishing_pot missed 17.9 -> 16.0 %, ham
 * flagged cross-validated 0.036 -> 0.054 %, the corpus' spam missed unchanged.
 */
const LEANS_SPAM = new Set(BUCKETS.filter(([min]) => min >= 0.5).map(([, name]) => name))
/**
 * Surespam is quarantined quietly: the classifier alone never puts mail there, and a rule
 * worth 1.5 points at least must agree (at 9.9 any stray rule did, and flagged hard ham).
 */
const CLASSIFIER_MAX_POINTS = 8.5
/** No one rule of ours quarantines on its own (5 points). */
const RULE_MAX_POINTS = 4.5
/**
 * A rule that fires on more than 2 % of ham is weak evidence however the fit weighs it
 * (a Reply-To elsewhere, an HTML-only body): at most 1 point, so two of them and a
 * classifier that is fairly sure cannot quarantine a newsletter.
 */
const COMMON_IN_HAM = 0.02
const COMMON_RULE_MAX_POINTS = 1
/** Symbols whose weight is policy, not statistics; also those that never fire offline. */
export const POLICY_SYMBOLS = /^(ATTACH_|FUZZY_|AV_|BOUNCE_|ALLOWLIST|BLOCKLIST|RBL_|DBL_|SURBL_|SPF_|DKIM_|DMARC_|ARC_|RULE_)/
/** A rule seen on fewer training messages than this keeps its hand-set weight. */
export const MIN_EVIDENCE = 15
/** Rules never fitted, whatever the evidence: their hand-set weight is a judgement the corpus cannot make (see hand-set.ts). */
const NEVER_FITTED = new Set(['HEADER_8BIT'])

export interface Row {
  /** Symbols whose weights are fitted. */
  names: string[]
  spam: boolean
  fold: number
  /** Points from symbols whose weights are not fitted (policy, too little evidence). */
  fixedPoints: number
}

export interface FitOptions {
  /** The share of ham the spam threshold may flag. */
  targetFp: number
  /** A flagged ham costs this many missed spam in the fit. */
  hamCost?: number
}

/**
 * Splits each message's symbols into fitted ones and fixed points. `current` is the table
 * now; a symbol is fitted unless it is policy or fires on fewer than MIN_EVIDENCE messages.
 */
export function fitRows(messages: { symbols: string[]; spam: boolean; fold: number }[], current: Record<string, number>): { rows: Row[]; names: string[]; handSet: string[] } {
  const fired = new Map<string, number>()
  for (const m of messages) for (const n of new Set(m.symbols)) fired.set(n, (fired.get(n) ?? 0) + 1)
  const fitted = (n: string) => !POLICY_SYMBOLS.test(n) && !NEVER_FITTED.has(n) && (n.startsWith('CLASSIFIER_') || (fired.get(n) ?? 0) >= MIN_EVIDENCE)
  const rows = messages.map((m) => {
    const names = [...new Set(m.symbols)]
    return { names: names.filter(fitted), spam: m.spam, fold: m.fold, fixedPoints: names.filter((n) => !fitted(n)).reduce((t, n) => t + (handSetOr(n, current) ?? 0), 0) }
  })
  const names = [...new Set([...rows.flatMap((r) => r.names), ...BUCKETS.map(([, n]) => n)])].sort()
  const handSet = [...new Set([...fired.keys(), ...Object.keys(HAND_SET)])].filter((n) => !fitted(n) && !POLICY_SYMBOLS.test(n)).sort()
  return { rows, names, handSet }
}

/** A rule's weight when it is not fitted: its hand-set one, else the table's. */
export function handSetOr(name: string, current: Record<string, number>): number | undefined {
  return POLICY_SYMBOLS.test(name) ? current[name] : (HAND_SET[name] ?? current[name])
}

export function fit(rows: Row[], names: string[], opts: FitOptions): { w: Float64Array; b: number } {
  const idx = new Map(names.map((n, i) => [n, i]))
  const w = new Float64Array(names.length)
  let b = 0
  const nHam = rows.filter((r) => !r.spam).length
  const nSpam = rows.length - nHam
  const hamCost = opts.hamCost ?? 1
  const cost = (r: Row) => (r.spam ? 1 / nSpam : hamCost / nHam)
  const l2 = 1e-4
  const x = rows.map((r) => r.names.map((n) => idx.get(n)).filter((i): i is number => i !== undefined))
  const bucketOrder = classifierBuckets(names)
  // Full-batch gradient descent: a few dozen features, convex, cheap.
  for (let step = 0; step < 3000; step++) {
    const gw = new Float64Array(names.length)
    let gb = 0
    for (let k = 0; k < rows.length; k++) {
      let z = b
      for (const i of x[k]) z += w[i]
      const p = 1 / (1 + Math.exp(-z))
      const g = (p - (rows[k].spam ? 1 : 0)) * cost(rows[k])
      for (const i of x[k]) gw[i] += g
      gb += g
    }
    const rate = 2.0
    for (let i = 0; i < names.length; i++) {
      w[i] -= rate * (gw[i] + l2 * w[i])
      if (!names[i].startsWith('CLASSIFIER_') && w[i] < 0) w[i] = 0
    }
    monotone(w, bucketOrder)
    b -= rate * gb
  }
  return { w, b }
}

/** Indexes of the classifier's bucket symbols in `names`, least spammy first. */
function classifierBuckets(names: string[]): number[] {
  return BUCKETS.map(([, name]) => names.indexOf(name))
    .filter((i) => i >= 0)
    .reverse()
}

/**
 * A surer classifier bucket never weighs less than a less sure one (pool adjacent
 * violators): with few messages in a bucket the fit would otherwise follow their noise.
 */
function monotone(w: Float64Array, order: number[]): void {
  const blocks: { sum: number; n: number }[] = []
  for (const i of order) {
    blocks.push({ sum: w[i], n: 1 })
    while (blocks.length > 1 && blocks.at(-2)!.sum / blocks.at(-2)!.n > blocks.at(-1)!.sum / blocks.at(-1)!.n) {
      const last = blocks.pop()!
      blocks.at(-1)!.sum += last.sum
      blocks.at(-1)!.n += last.n
    }
  }
  let k = 0
  for (const block of blocks) for (let j = 0; j < block.n; j++) w[order[k++]] = block.sum / block.n
}

/** 5 points less what rounding each weight to 0.01 can add up to over a message's symbols. */
const SPAM_CUT = 4.97

/**
 * Points per symbol: the fitted logit scaled as far as the targets allow. A ham's points at
 * scale s are about s·z + f (z its fitted logit, f its fixed points: policy and hand-set
 * rules), so it is flagged from s = (5 − f) / z on; that gives a first scale just short of
 * the (allowed + 1)-th such ham and of any ham reaching surespam. The bounds (a classifier
 * that excuses at most 3 points, weak rules worth at most 1) and rounding move points from
 * that line, so the scale is then searched around it: the one that misses the least spam
 * while holding the ham target and keeping ham out of surespam, in-sample.
 */
export function toPoints(rows: Row[], names: string[], m: { w: Float64Array; b: number }, opts: FitOptions): Map<string, number> {
  const idx = new Map(names.map((n, i) => [n, i]))
  const z = (r: Row) => r.names.reduce((s, n) => s + (idx.has(n) ? m.w[idx.get(n)!] : 0), 0)
  const hamRows = rows.filter((r) => !r.spam)
  const ham = hamRows.map((r) => ({ z: z(r), f: r.fixedPoints }))
  const allowed = Math.floor(ham.length * opts.targetFp)
  // Ham the fixed points alone flag, whatever the scale, use up the allowance first.
  const always = ham.filter((h) => h.z <= 0 && h.f >= SPAM_CUT).length
  const flaggedFrom = ham
    .filter((h) => h.z > 0)
    .map((h) => (SPAM_CUT - h.f) / h.z)
    .sort((a, b) => a - b)
  const room = allowed - always
  let first = room < 0 ? flaggedFrom[0] ?? 1 : flaggedFrom[room] ?? Infinity
  first = Math.max(1e-6, first * (1 - 1e-6))
  for (const h of ham) if (h.z > 0) first = Math.min(first, Math.max(1e-6, (9.9 - h.f) / h.z))
  if (!Number.isFinite(first)) first = 1

  const common = new Set(names.filter((n) => !n.startsWith('CLASSIFIER_') && hamRows.filter((r) => r.names.includes(n)).length > COMMON_IN_HAM * hamRows.length))
  const bound = (n: string, p: number) =>
    n.startsWith('CLASSIFIER_') ? Math.min(CLASSIFIER_MAX_POINTS, Math.max(LEANS_SPAM.has(n) ? 0 : CLASSIFIER_MIN_POINTS, p)) : Math.min(common.has(n) ? COMMON_RULE_MAX_POINTS : RULE_MAX_POINTS, p)
  const at = (s: number) => new Map(names.map((n, i) => [n, Math.round(bound(n, m.w[i] * s) * 100) / 100]))
  let best = at(first)
  let bestFn = Infinity
  for (let k = -70; k <= 70; k++) {
    const points = at(first * 1.01 ** k)
    const e = evaluate(rows, points)
    if (e.fp <= allowed && e.sureHam === 0 && e.fn < bestFn) {
      best = points
      bestFn = e.fn
    }
  }
  return best
}

export interface FitCounts {
  fp: number
  fn: number
  sureHam: number
  sureMissed: number
  ham: number
  spam: number
}

export function evaluate(rows: Row[], points: Map<string, number>): FitCounts {
  const out = { fp: 0, fn: 0, sureHam: 0, sureMissed: 0, ham: 0, spam: 0 }
  for (const r of rows) {
    const s = r.fixedPoints + r.names.reduce((t, n) => t + (points.get(n) ?? 0), 0)
    if (r.spam) {
      out.spam++
      if (s < 5) out.fn++
      if (s < 10) out.sureMissed++
    } else {
      out.ham++
      if (s >= 5) out.fp++
      if (s >= 10) out.sureHam++
    }
  }
  return out
}

/** Weights fitted on every row, and the same fit nested (fold k scored by weights fitted without it). */
export function fitWeights(rows: Row[], names: string[], folds: number, opts: FitOptions): { points: Map<string, number>; inSample: FitCounts; nested: FitCounts } {
  const nested = { fp: 0, fn: 0, sureHam: 0, sureMissed: 0, ham: 0, spam: 0 }
  for (let k = 0; k < folds; k++) {
    const train = rows.filter((r) => r.fold !== k)
    const e = evaluate(rows.filter((r) => r.fold === k), toPoints(train, names, fit(train, names, opts), opts))
    for (const key of Object.keys(nested) as (keyof FitCounts)[]) nested[key] += e[key]
  }
  const points = toPoints(rows, names, fit(rows, names, opts), opts)
  return { points, inSample: evaluate(rows, points), nested }
}
