/*
 * Statistical text classifier: Robinson's per-token probabilities combined with Fisher's
 * chi-square method (as SpamBayes and bogofilter do). It says "unsure" (near 0.5) when the
 * evidence disagrees, instead of being forced to one side as plain naive Bayes is.
 *
 * The model is plain token counts, so it can be trained incrementally from user reports and
 * stored as a versioned blob in the database.
 */
import zlib from 'node:zlib'

export interface BayesModel {
  ham: number
  spam: number
  /** token -> [ham messages containing it, spam messages containing it] */
  tokens: Map<string, [number, number]>
}

export interface BayesResult {
  /** 0 = certainly ham, 1 = certainly spam. */
  probability: number
  /** How many tokens counted. */
  used: number
}

const STRENGTH = 0.45 // s: weight of the prior for rarely seen tokens
const PRIOR = 0.5 // x: what an unseen token says
const MIN_DEVIATION = 0.1 // tokens closer than this to 0.5 are noise
const MAX_TOKENS = 150

export function emptyModel(): BayesModel {
  return { ham: 0, spam: 0, tokens: new Map() }
}

export function train(model: BayesModel, tokens: Iterable<string>, isSpam: boolean, weight = 1): void {
  if (isSpam) model.spam += weight
  else model.ham += weight
  const i = isSpam ? 1 : 0
  for (const t of tokens) {
    let c = model.tokens.get(t)
    if (!c) {
      c = [0, 0]
      model.tokens.set(t, c)
    }
    c[i] = Math.max(0, c[i] + weight)
  }
}

function tokenProbability(model: BayesModel, counts: [number, number]): number {
  const hamRatio = counts[0] / Math.max(1, model.ham)
  const spamRatio = counts[1] / Math.max(1, model.spam)
  const p = spamRatio / (hamRatio + spamRatio)
  const n = counts[0] + counts[1]
  return (STRENGTH * PRIOR + n * p) / (STRENGTH + n)
}

/** Inverse chi-square with 2*v degrees of freedom (v an integer): P(X >= chi). */
function chi2Q(chi: number, v: number): number {
  const m = chi / 2
  let sum = Math.exp(-m)
  let term = sum
  for (let i = 1; i < v; i++) {
    term *= m / i
    sum += term
  }
  return Math.min(sum, 1)
}

export function classify(model: BayesModel, tokens: Iterable<string>): BayesResult {
  if (model.ham === 0 || model.spam === 0) return { probability: 0.5, used: 0 }
  const probs: number[] = []
  for (const t of tokens) {
    const c = model.tokens.get(t)
    if (!c) continue
    const p = tokenProbability(model, c)
    if (Math.abs(p - 0.5) >= MIN_DEVIATION) probs.push(p)
  }
  if (probs.length === 0) return { probability: 0.5, used: 0 }
  probs.sort((a, b) => Math.abs(b - 0.5) - Math.abs(a - 0.5))
  const used = probs.slice(0, MAX_TOKENS)
  let lnHam = 0
  let lnSpam = 0
  for (const p of used) {
    const q = Math.min(Math.max(p, 1e-6), 1 - 1e-6)
    lnSpam += Math.log(1 - q)
    lnHam += Math.log(q)
  }
  const n = used.length
  const spamminess = 1 - chi2Q(-2 * lnSpam, n) // high when tokens say spam
  const hamminess = 1 - chi2Q(-2 * lnHam, n)
  return { probability: (1 + spamminess - hamminess) / 2, used: n }
}

/** Drops tokens seen fewer than `min` times in all: they carry little and cost memory. */
export function prune(model: BayesModel, min: number): BayesModel {
  const tokens = new Map<string, [number, number]>()
  for (const [t, c] of model.tokens) if (c[0] + c[1] >= min) tokens.set(t, c)
  return { ham: model.ham, spam: model.spam, tokens }
}

export function serialise(model: BayesModel): Buffer {
  const json = JSON.stringify({ format: 'moat-bayes-1', ham: model.ham, spam: model.spam, tokens: [...model.tokens] })
  return zlib.gzipSync(json, { level: 9 })
}

export function deserialise(blob: Buffer): BayesModel {
  const data = JSON.parse(zlib.gunzipSync(blob).toString('utf8'))
  if (data.format !== 'moat-bayes-1') throw new Error(`unknown classifier model format "${data.format}"`)
  return { ham: data.ham, spam: data.spam, tokens: new Map(data.tokens) }
}
