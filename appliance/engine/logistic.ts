/*
 * Logistic regression over hashed token features, trained with AdaGrad SGD. Unlike naive
 * Bayes it weighs tokens jointly, so word salad added to beat filters ("hash busting")
 * does not cancel real evidence, and it gives calibrated probabilities.
 *
 * The model is a sparse weight vector (feature hash -> weight) plus the AdaGrad
 * accumulators, so one user report can be learned incrementally.
 */
import zlib from 'node:zlib'

export const HASH_BITS = 22
const SIZE = 1 << HASH_BITS
const MASK = SIZE - 1
// 2: feature values per token group, and the token scheme the model was trained on.
const FORMAT = 'moat-logistic-2'

export interface LogisticModel {
  bias: number
  weights: Float32Array
  /** AdaGrad sums of squared gradients, per feature (and [SIZE] for the bias). */
  grads: Float32Array
  messages: number
  /** The token scheme the model was trained on ('' if unknown); other tokens mean nothing to it. */
  scheme: string
  /**
   * Maps the raw score onto the scale the weights table was fitted on (Platt scaling, fitted
   * on the model's own held-out scores); identity for a model that has none.
   */
  calibration: Calibration
  /** How the model was made (recipe, sources, training set), for the weights table to name. */
  provenance: Record<string, unknown> | null
}

/** p = sigmoid(a·z + b) for a raw score z. */
export interface Calibration {
  a: number
  b: number
}

export const IDENTITY_CALIBRATION: Calibration = { a: 1, b: 0 }

export function emptyLogistic(scheme = ''): LogisticModel {
  return { bias: 0, weights: new Float32Array(SIZE), grads: new Float32Array(SIZE + 1), messages: 0, scheme, calibration: IDENTITY_CALIBRATION, provenance: null }
}

function fnv(h: number, s: string, from: number, to: number): number {
  for (let i = from; i < to; i++) {
    h ^= s.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  return h
}

/** FNV-1a, 32 bit. */
export function featureHash(token: string): number {
  return (fnv(0x811c9dc5, token, 0, token.length) >>> 0) & MASK
}

/** Hashed features with their values. */
export interface FeatureVector {
  index: Uint32Array
  value: Float32Array
}

export interface TokenGroups {
  words?: Set<string> | string[]
  /** Every CHAR_GRAM characters of it, once each, are a feature (hashed as CHAR_GRAM_PREFIX + gram). */
  charText?: string
  meta?: Set<string> | string[]
}

const CHAR_GRAM = 4
const CHAR_GRAM_PREFIX = 'c4:'
const PREFIX_HASH = fnv(0x811c9dc5, CHAR_GRAM_PREFIX, 0, CHAR_GRAM_PREFIX.length)

/**
 * What one token of each group is worth. Words and character grams are scaled by
 * 1/sqrt(count), so long and short messages weigh alike; grams overlap each other, so they
 * count half. Meta tokens are few and each says much, so each has a fixed value that a
 * long text cannot dilute. Measured on the corpus (npm run bench -- accuracy).
 */
const GROUP_SCALE = { words: 1, chars: 0.5, meta: 0.25 }

/** The character grams of a text as tokens (for tests and explanations; features() hashes the same ones). */
export function charGrams(text: string): Set<string> {
  const out = new Set<string>()
  for (let i = 0; i + CHAR_GRAM <= text.length; i++) out.add(CHAR_GRAM_PREFIX + text.slice(i, i + CHAR_GRAM))
  return out
}

export function features(groups: TokenGroups): FeatureVector {
  const words = groups.words ?? []
  const meta = groups.meta ?? []
  const text = groups.charText ?? ''
  const grams = new Set<number>()
  for (let i = 0; i + CHAR_GRAM <= text.length; i++) grams.add((fnv(PREFIX_HASH, text, i, i + CHAR_GRAM) >>> 0) & MASK)
  const nWords = Array.isArray(words) ? words.length : words.size
  const nMeta = Array.isArray(meta) ? meta.length : meta.size
  const index = new Uint32Array(nWords + grams.size + nMeta)
  const value = new Float32Array(index.length)
  // Two tokens may share a hash: both entries stay, and their values add up in the sum.
  let k = 0
  const wordValue = GROUP_SCALE.words / Math.sqrt(Math.max(1, nWords))
  for (const t of words) {
    index[k] = featureHash(t)
    value[k++] = wordValue
  }
  const gramValue = GROUP_SCALE.chars / Math.sqrt(Math.max(1, grams.size))
  for (const h of grams) {
    index[k] = h
    value[k++] = gramValue
  }
  for (const t of meta) {
    index[k] = featureHash(t)
    value[k++] = GROUP_SCALE.meta
  }
  return { index, value }
}

export function sigmoid(z: number): number {
  if (z < -35) return 1e-15
  if (z > 35) return 1 - 1e-15
  return 1 / (1 + Math.exp(-z))
}

/** The raw score (log-odds before calibration). */
export function logitFeatures(m: LogisticModel, f: FeatureVector): number {
  let z = m.bias
  for (let i = 0; i < f.index.length; i++) z += m.weights[f.index[i]] * f.value[i]
  return z
}

/** The raw probability, as training sees it. */
export function predictFeatures(m: LogisticModel, f: FeatureVector): number {
  return sigmoid(logitFeatures(m, f))
}

/** A raw score mapped through a calibration. */
export function calibrate(c: Calibration, z: number): number {
  return sigmoid(c.a * z + c.b)
}

/** The calibrated spam probability: what the classifier's bucket symbols are made from. */
export function calibratedProbability(m: LogisticModel, f: FeatureVector): number {
  return calibrate(m.calibration, logitFeatures(m, f))
}

export function learnFeatures(m: LogisticModel, f: FeatureVector, isSpam: boolean, rate = 0.5, l2 = 1e-6, weight = 1): void {
  if (m.grads.length !== SIZE + 1) throw new Error('this classifier model was loaded for scoring only; load it with { learn: true } to learn')
  const g = (predictFeatures(m, f) - (isSpam ? 1 : 0)) * weight
  for (let i = 0; i < f.index.length; i++) {
    const j = f.index[i]
    const grad = g * f.value[i] + l2 * m.weights[j]
    m.grads[j] += grad * grad
    m.weights[j] -= (rate * grad) / Math.sqrt(m.grads[j] + 1e-8)
  }
  m.grads[SIZE] += g * g
  m.bias -= (rate * g) / Math.sqrt(m.grads[SIZE] + 1e-8)
  m.messages++
}

export interface TrainOptions {
  epochs?: number
  /** Models trained on different shuffles and averaged: one shuffle's luck decides less. */
  seeds?: number
  /** A ham wrongly flagged costs this many spams missed. */
  hamWeight?: number
  scheme?: string
}

/** A training message; `weight` (default 1) makes it count as that many messages. */
export interface TrainingExample {
  f: FeatureVector
  spam: boolean
  weight?: number
}

function trainOne(samples: TrainingExample[], epochs: number, hamWeight: number, seed: number): LogisticModel {
  const m = emptyLogistic()
  const order = samples.map((_, i) => i)
  let s = seed
  const rnd = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32)
  const total = samples.reduce((t, x) => t + (x.weight ?? 1), 0)
  const spamShare = samples.reduce((t, x) => t + (x.spam ? (x.weight ?? 1) : 0), 0) / Math.max(1, total)
  // Balance the classes, so the prior of the training mix does not become the verdict.
  const spamWeight = 0.5 / Math.max(spamShare, 1e-9)
  const hamWeightBalanced = (hamWeight * 0.5) / Math.max(1 - spamShare, 1e-9)
  for (let e = 0; e < epochs; e++) {
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(rnd() * (i + 1))
      ;[order[i], order[j]] = [order[j], order[i]]
    }
    for (const i of order) learnFeatures(m, samples[i].f, samples[i].spam, 0.5, 1e-6, (samples[i].spam ? spamWeight : hamWeightBalanced) * (samples[i].weight ?? 1))
  }
  return m
}

export function trainLogistic(samples: TrainingExample[], opts: TrainOptions = {}): LogisticModel {
  const { epochs = 6, seeds = 3, hamWeight = 2, scheme = '' } = opts
  const out = emptyLogistic(scheme)
  // A linear model's average is the average of its votes, so the ensemble stays one model.
  for (let k = 0; k < seeds; k++) {
    const m = trainOne(samples, epochs, hamWeight, 1 + 6 * k)
    for (let i = 0; i < SIZE; i++) {
      out.weights[i] += m.weights[i] / seeds
      out.grads[i] += m.grads[i] / seeds
    }
    out.grads[SIZE] += m.grads[SIZE] / seeds
    out.bias += m.bias / seeds
  }
  out.messages = samples.length
  return out
}

export function serialiseLogistic(m: LogisticModel): Buffer {
  const idx: number[] = []
  for (let i = 0; i < SIZE; i++) if (m.weights[i] !== 0) idx.push(i)
  const index = Uint32Array.from(idx)
  const w = Float32Array.from(idx, (i) => m.weights[i])
  const g = Float32Array.from(idx, (i) => m.grads[i] ?? 0)
  const head = Buffer.from(
    JSON.stringify({ format: FORMAT, bits: HASH_BITS, scheme: m.scheme, bias: m.bias, biasGrad: m.grads[SIZE] ?? 0, messages: m.messages, n: idx.length, calibration: m.calibration, provenance: m.provenance }),
  )
  const len = Buffer.alloc(4)
  len.writeUInt32BE(head.length)
  return zlib.gzipSync(Buffer.concat([len, head, Buffer.from(index.buffer), Buffer.from(w.buffer), Buffer.from(g.buffer)]), { level: 6 })
}

/**
 * The AdaGrad sums are needed only to learn; the SMTP service only scores, so by default
 * they are not loaded (16 MB less per process).
 */
export function deserialiseLogistic(blob: Buffer, opts: { learn?: boolean } = {}): LogisticModel {
  const buf = zlib.gunzipSync(blob)
  const hl = buf.readUInt32BE(0)
  const head = JSON.parse(buf.subarray(4, 4 + hl).toString('utf8'))
  if (head.format !== FORMAT || head.bits !== HASH_BITS) throw new Error(`unknown classifier model format "${head.format}"`)
  const m: LogisticModel = opts.learn ? emptyLogistic() : { bias: 0, weights: new Float32Array(SIZE), grads: new Float32Array(0), messages: 0, scheme: '', calibration: IDENTITY_CALIBRATION, provenance: null }
  m.scheme = String(head.scheme ?? '')
  // Versions stored before calibration existed have none: their scores are taken as they are.
  if (Number.isFinite(head.calibration?.a) && Number.isFinite(head.calibration?.b)) m.calibration = { a: head.calibration.a, b: head.calibration.b }
  m.provenance = head.provenance ?? null
  m.bias = head.bias
  if (opts.learn) m.grads[SIZE] = head.biasGrad
  m.messages = head.messages
  const body = buf.subarray(4 + hl)
  const n = head.n
  const copy = (offset: number) => new Uint8Array(body.subarray(offset, offset + n * 4)).buffer
  const index = new Uint32Array(copy(0))
  const w = new Float32Array(copy(n * 4))
  const g = new Float32Array(copy(n * 8))
  for (let i = 0; i < n; i++) {
    m.weights[index[i]] = w[i]
    if (opts.learn) m.grads[index[i]] = g[i]
  }
  return m
}
