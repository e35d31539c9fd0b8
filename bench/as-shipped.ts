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
import { calibratedProbability, type LogisticModel } from '../appliance/engine/logistic'
import { loadDefaultModel } from '../appliance/engine/models'
import { loadSamples, type Sample } from '../appliance/engine/recipe/corpus'
import { allowedSource, DEFAULT_RECIPE, NEVER_SHIPPED, runRecipe } from '../appliance/engine/recipe/default-recipe'
import { DEFAULT_THRESHOLDS, score, verdictFor, weightOf, type WeightsLookup, weightsLookup } from '../appliance/engine/symbols'
import { countVerdict, emptyCounts, type SourceStats } from './accuracy'

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
