/*
 * Platt scaling: one slope and one offset that map a model's raw score onto a calibrated
 * spam probability, fitted on scores the model gave mail it did not train on (k-fold).
 *
 * Why: the weights table gives points per probability bucket. A model trained on other mail
 * (a site's own `moat train`, a smaller corpus) is more or less sure of itself than the one
 * the table was fitted for; without calibration its 0.7 is the shipped model's 0.95, and the
 * table takes points away where it should add them. Calibrated on held-out scores with ham
 * and spam weighed alike, every model's probability means the same thing, so one table
 * serves the shipped model and every model a site trains.
 */
import { calibrate, type Calibration, type FeatureVector, IDENTITY_CALIBRATION, logitFeatures, type LogisticModel, sigmoid, type TrainOptions, trainLogistic } from '../logistic'

/**
 * The slope and offset with the least log loss (ham and spam weighed alike), pulled gently
 * towards the identity so a handful of messages cannot make it wild. Newton steps on two
 * parameters, each halved until the loss falls (a full step can overshoot when the scores
 * are large, as a confident model's are).
 */
export function fitPlatt(logits: number[], spam: boolean[]): Calibration {
  const nSpam = spam.filter(Boolean).length
  const nHam = spam.length - nSpam
  if (!nSpam || !nHam) return IDENTITY_CALIBRATION
  // The pull towards a = 1, b = 0, in messages' worth: enough to keep a few perfectly
  // separated held-out scores from making the slope wild, too little to matter on thousands.
  const prior = 10
  const weight = spam.map((s) => (s ? spam.length / (2 * nSpam) : spam.length / (2 * nHam)))
  const z = logits.map((l) => Math.max(-50, Math.min(50, l)))
  const loss = (a: number, b: number) => {
    let l = (prior * ((a - 1) ** 2 + b ** 2)) / 2
    for (let i = 0; i < z.length; i++) {
      const t = a * z[i] + b
      // log(1 + e^-t) for spam, log(1 + e^t) for ham, computed without overflow.
      const m = spam[i] ? -t : t
      l += weight[i] * (m > 0 ? m + Math.log1p(Math.exp(-m)) : Math.log1p(Math.exp(m)))
    }
    return l
  }
  let a = 1
  let b = 0
  let current = loss(a, b)
  for (let iter = 0; iter < 100; iter++) {
    let ga = prior * (a - 1)
    let gb = prior * b
    let haa = prior
    let hab = 0
    let hbb = prior
    for (let i = 0; i < z.length; i++) {
      const p = sigmoid(a * z[i] + b)
      const g = (p - (spam[i] ? 1 : 0)) * weight[i]
      const h = p * (1 - p) * weight[i]
      ga += g * z[i]
      gb += g
      haa += h * z[i] * z[i]
      hab += h * z[i]
      hbb += h
    }
    const det = haa * hbb - hab * hab
    if (!(det > 0)) break
    const da = (hbb * ga - hab * gb) / det
    const db = (haa * gb - hab * ga) / det
    let step = 1
    while (step > 1e-6 && loss(a - step * da, b - step * db) > current) step /= 2
    if (step <= 1e-6) break
    a -= step * da
    b -= step * db
    const next = loss(a, b)
    const done = current - next < 1e-10 * Math.max(1, Math.abs(current))
    current = next
    if (done) break
  }
  return { a, b }
}

export interface TrainingSample {
  f: FeatureVector
  spam: boolean
  /** Counts as this many messages in training (not in calibration). */
  weight?: number
  /** Which of the k folds the sample is held out in. */
  fold: number
}

export interface CalibratedModel {
  model: LogisticModel
  /** Each sample's calibrated probability from the fold model that did not train on it. */
  heldOut: number[]
}

/**
 * How sure the recipe is on mail it never saw: k fold models, each scoring the fold it did not
 * train on, and the calibration fitted on those scores. The held-out probabilities
 * (calibrated) are what the weights table is fitted on and what the benchmarks count.
 */
export function heldOutCalibrated<T extends TrainingSample>(
  samples: T[],
  folds: number,
  opts: TrainOptions = {},
  /** Which samples the fold models may learn from (the learning curve trains on a share); all are scored. */
  learnsFrom: (s: T) => boolean = () => true,
): { calibration: Calibration; heldOut: number[] } {
  const logits = new Array<number>(samples.length).fill(0)
  const usable = folds >= 2 && samples.some((s) => s.spam) && samples.some((s) => !s.spam)
  if (!usable) return { calibration: IDENTITY_CALIBRATION, heldOut: logits.map(() => 0.5) }
  for (let k = 0; k < folds; k++) {
    const train = samples.filter((s) => s.fold !== k && learnsFrom(s))
    if (!train.some((s) => s.spam) || !train.some((s) => !s.spam)) continue
    const m = trainLogistic(train, opts)
    samples.forEach((s, i) => {
      if (s.fold === k) logits[i] = logitFeatures(m, s.f)
    })
  }
  const calibration = fitPlatt(logits, samples.map((s) => s.spam))
  return { calibration, heldOut: logits.map((z) => calibrate(calibration, z)) }
}

/** The held-out calibration, then the model trained on everything, carrying it. */
export function trainCalibrated(samples: TrainingSample[], folds: number, opts: TrainOptions = {}): CalibratedModel {
  const { calibration, heldOut } = heldOutCalibrated(samples, folds, opts)
  const model = trainLogistic(samples, opts)
  model.calibration = calibration
  return { model, heldOut }
}
