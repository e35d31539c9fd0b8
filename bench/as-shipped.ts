/*
 * The shipped configuration, measured as a user gets it (npm run bench -- accuracy):
 * - cross-validated over the default recipe's own sources (folds by sha256): for each fold,
 *   the whole recipe (model, calibration, weights fitted on its own inner folds) is run on
 *   the other folds and scores this one, so neither the model nor the weights saw it;
 * - the model file and weights table that ship, unchanged, on all of phishing_pot, which
 *   neither was ever trained or fitted on: phishing the shipped model has never seen.
 */
import weightsTable from '../appliance/engine/weights.json'
import { bucketSymbols } from '../appliance/engine/filters/classifier'
import { calibrate, calibratedProbability, type LogisticModel, logitFeatures, trainLogistic } from '../appliance/engine/logistic'
import { heldOutCalibrated } from '../appliance/engine/recipe/calibration'
import { loadDefaultModel } from '../appliance/engine/models'
import { loadSamples, type Sample } from '../appliance/engine/recipe/corpus'
import { allowedSource, DEFAULT_RECIPE, NEVER_SHIPPED, runRecipe, trainingWeight } from '../appliance/engine/recipe/default-recipe'
import { DEFAULT_THRESHOLDS, score, verdictFor, weightOf, type WeightsLookup, weightsLookup } from '../appliance/engine/symbols'
import { countVerdict, emptyCounts, missedAtFlagRate, type SourceStats } from './accuracy'

/** Inner folds for the recipe run inside the outer cross-validation: other bits of the sha256. */
const innerFold = (s: Sample) => parseInt(s.sha256.slice(8, 16), 16) % DEFAULT_RECIPE.folds

function tally(stats: Map<string, SourceStats>, s: Sample, model: LogisticModel, weigh: WeightsLookup, label = s.source): void {
  const p = calibratedProbability(model, s.features)
  const verdict = verdictFor(score([...s.fixed, ...bucketSymbols(p)], weigh).score, DEFAULT_THRESHOLDS)
  let st = stats.get(label)
  if (!st) stats.set(label, (st = { source: label, ...emptyCounts() }))
  countVerdict(st, s.spam, verdict)
}

export async function asShipped(): Promise<{ crossValidated: Map<string, SourceStats>; neverSeen: Map<string, SourceStats> }> {
  const folds = DEFAULT_RECIPE.folds
  const samples = await loadSamples(folds, (source) => allowedSource(source) || NEVER_SHIPPED.includes(source))
  const allowed = samples.filter((s) => allowedSource(s.source))
  const crossValidated = new Map<string, SourceStats>()
  for (let k = 0; k < folds; k++) {
    const r = runRecipe(allowed.filter((s) => s.fold !== k), weightsTable.weights, innerFold)
    const weigh = weightsLookup(r.weights)
    for (const s of allowed) if (s.fold === k) tally(crossValidated, s, r.model, weigh)
  }
  const shipped = loadDefaultModel().model
  const neverSeen = new Map<string, SourceStats>()
  for (const s of samples) if (NEVER_SHIPPED.includes(s.source)) tally(neverSeen, s, shipped, weightOf)
  return { crossValidated, neverSeen }
}

export interface CurvePoint {
  share: number
  trained: number
  /** Spam missed (allowed sources, held out) with the cut where at most 0.1 % / 0.5 % of ham is flagged. */
  missedAt01: number
  missedAt05: number
  /** phishing_pot missed at the 0.1 % cut, by a model trained on that share of all the allowed mail. */
  phishingMissed: number
}

/**
 * The learning curve of the recipe's classifier (alone, calibrated, weighted as the recipe
 * weighs its sources): trained on a quarter, half, three quarters and all of each training
 * part, scored on the fold it did not see. Whether more of the same mail would help.
 */
export async function learningCurve(shares = [0.25, 0.5, 0.75, 1]): Promise<CurvePoint[]> {
  const folds = DEFAULT_RECIPE.folds
  const samples = await loadSamples(folds, (source) => allowedSource(source) || NEVER_SHIPPED.includes(source))
  const allowed = samples.filter((s) => allowedSource(s.source))
  const phishing = samples.filter((s) => NEVER_SHIPPED.includes(s.source))
  // Another part of the sha256 than the folds', so every share keeps the sources' mix.
  const inShare = (s: { sha256: string }, share: number) => parseInt(s.sha256.slice(16, 24), 16) / 2 ** 32 < share
  const spam = allowed.map((s) => s.spam)
  const out: CurvePoint[] = []
  const examples = allowed.map((s) => ({ f: s.features, spam: s.spam, fold: s.fold, weight: trainingWeight(s), sha256: s.sha256 }))
  for (const share of shares) {
    const { calibration, heldOut } = heldOutCalibrated(examples, folds, {}, (e) => inShare(e, share))
    const at01 = missedAtFlagRate(heldOut, spam, 0.001)
    const at05 = missedAtFlagRate(heldOut, spam, 0.005)
    const trainedOn = examples.filter((e) => inShare(e, share))
    const whole = trainLogistic(trainedOn)
    const missed = phishing.filter((s) => calibrate(calibration, logitFeatures(whole, s.features)) <= at01.cut).length
    out.push({ share, trained: trainedOn.length, missedAt01: at01.spamMissed / at01.spam, missedAt05: at05.spamMissed / at05.spam, phishingMissed: missed / phishing.length })
  }
  return out
}
