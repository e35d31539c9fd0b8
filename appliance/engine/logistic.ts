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

export interface LogisticModel {
  bias: number
  weights: Float32Array
  /** AdaGrad sums of squared gradients, per feature (and [SIZE] for the bias). */
  grads: Float32Array
  messages: number
}

export function emptyLogistic(): LogisticModel {
  return { bias: 0, weights: new Float32Array(SIZE), grads: new Float32Array(SIZE + 1), messages: 0 }
}

/** FNV-1a, 32 bit. */
export function featureHash(token: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < token.length; i++) {
    h ^= token.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  return (h >>> 0) & MASK
}

export function features(tokens: Iterable<string>): Uint32Array {
  const set = new Set<number>()
  for (const t of tokens) set.add(featureHash(t))
  return Uint32Array.from(set)
}

function sigmoid(z: number): number {
  if (z < -35) return 1e-15
  if (z > 35) return 1 - 1e-15
  return 1 / (1 + Math.exp(-z))
}

/** Feature values are 1/sqrt(n) so long and short messages weigh alike. */
export function predictFeatures(m: LogisticModel, f: Uint32Array): number {
  const x = 1 / Math.sqrt(Math.max(1, f.length))
  let z = m.bias
  for (let i = 0; i < f.length; i++) z += m.weights[f[i]] * x
  return sigmoid(z)
}

export function learnFeatures(m: LogisticModel, f: Uint32Array, isSpam: boolean, rate = 0.5, l2 = 1e-6, weight = 1): void {
  if (m.grads.length !== SIZE + 1) throw new Error('this classifier model was loaded for scoring only; load it with { learn: true } to learn')
  const x = 1 / Math.sqrt(Math.max(1, f.length))
  const g = (predictFeatures(m, f) - (isSpam ? 1 : 0)) * weight
  for (let i = 0; i < f.length; i++) {
    const j = f[i]
    const grad = g * x + l2 * m.weights[j]
    m.grads[j] += grad * grad
    m.weights[j] -= (rate * grad) / Math.sqrt(m.grads[j] + 1e-8)
  }
  m.grads[SIZE] += g * g
  m.bias -= (rate * g) / Math.sqrt(m.grads[SIZE] + 1e-8)
  m.messages++
}

export function trainLogistic(samples: { f: Uint32Array; spam: boolean }[], epochs = 6, seed = 1): LogisticModel {
  const m = emptyLogistic()
  const order = samples.map((_, i) => i)
  let s = seed
  const rnd = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32)
  const spamShare = samples.filter((x) => x.spam).length / Math.max(1, samples.length)
  for (let e = 0; e < epochs; e++) {
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(rnd() * (i + 1))
      ;[order[i], order[j]] = [order[j], order[i]]
    }
    // Balance the classes, so the prior of the training mix does not become the verdict.
    for (const i of order) learnFeatures(m, samples[i].f, samples[i].spam, 0.5, 1e-6, samples[i].spam ? 0.5 / spamShare : 0.5 / (1 - spamShare))
  }
  m.messages = samples.length
  return m
}

export function serialiseLogistic(m: LogisticModel): Buffer {
  const idx: number[] = []
  for (let i = 0; i < SIZE; i++) if (m.weights[i] !== 0) idx.push(i)
  const index = Uint32Array.from(idx)
  const w = Float32Array.from(idx, (i) => m.weights[i])
  const g = Float32Array.from(idx, (i) => m.grads[i] ?? 0)
  const head = Buffer.from(JSON.stringify({ format: 'moat-logistic-1', bits: HASH_BITS, bias: m.bias, biasGrad: m.grads[SIZE] ?? 0, messages: m.messages, n: idx.length }))
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
  if (head.format !== 'moat-logistic-1' || head.bits !== HASH_BITS) throw new Error(`unknown classifier model format "${head.format}"`)
  const m: LogisticModel = opts.learn ? emptyLogistic() : { bias: 0, weights: new Float32Array(SIZE), grads: new Float32Array(0), messages: 0 }
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
