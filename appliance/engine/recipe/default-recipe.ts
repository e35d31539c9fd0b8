/*
 * The one recipe that makes what ships: the default classifier model and the weights table,
 * together. The model is trained on the allowed sources; the weights are fitted on the
 * calibrated probabilities that models trained by this same recipe gave mail they did not
 * train on (k-fold by sha256), so the table belongs to the model. Both record where they came
 * from (recipe, sources, training set), and the table records the hash of the model file it
 * was fitted for: a test fails when they part.
 *
 * Allowed sources (shared/corpus/README.md): the SpamAssassin corpus, foff-milter's mail and
 * the 2019–2026 mailing-list mail (its list giveaways removed: recipe/list-giveaways.ts).
 * phishing_pot (CC BY-NC) is never read here: it is the benchmark of phishing the shipped
 * model never saw.
 */
import crypto from 'node:crypto'
import path from 'node:path'
import { bucketSymbols } from '../filters/classifier'
import { type LogisticModel, serialiseLogistic } from '../logistic'
import { TOKEN_SCHEME } from '../tokenize'
import weightsTable from '../weights.json'
import { trainCalibrated } from './calibration'
import { LIST_SOURCES, loadSamples, type Sample } from './corpus'
import { type FitCounts, fitRows, fitWeights, handSetOr } from './fit-weights'

export const DEFAULT_RECIPE = {
  name: 'moat-default-4',
  sources: ['sa-easy_ham', 'sa-easy_ham_2', 'sa-hard_ham', 'sa-spam', 'sa-spam_2', 'foff-milter', ...LIST_SOURCES],
  /**
   * How many messages each message of a source counts as in training (default 1). Tried and
   * left off: foff-milter's modern mail 3x and the 2002-05 SpamAssassin mail half missed
   * less spam held out (6.5 -> 4.0 % at 0.1 % of ham flagged) but taught the model that a
   * person's name in From is spam (foff-milter's only ham is brand newsletters, its spam
   * wears people's names): "Hello Alice, the minutes from today." from Bob scored as spam.
   */
  sourceWeights: {} as Record<string, number>,
  folds: 5,
  /** The share of ham the spam threshold may flag, on held-out mail. */
  targetFp: 0.001,
}

/** The weights table in the source tree (the build copies it next to the code). */
export const WEIGHTS_PATH = path.resolve(__dirname, '../../../../appliance/engine/weights.json')

/** Sources the shipped model and weights must never learn from. */
export const NEVER_SHIPPED = ['phishing_pot']

export interface WeightsTable {
  about: string
  recipe?: RecipeRecord
  weights: Record<string, number>
}

export interface RecipeRecord {
  name: string
  sources: string[]
  ham: number
  spam: number
  /** sha256 over the sorted sha256 of every training message. */
  trainingSetSha256: string
  /** sha256 of the model file the weights were fitted for. */
  modelSha256: string
  fitted: string
  targetFp: number
  /** Rules with too little evidence in the training mail to fit: their weights are hand-set. */
  handSet: string[]
  /** The fit measured on folds the weights did not see. */
  nested: { hamFlagged: string; hamSurespam: string; spamMissed: string }
}

export interface DefaultBuild {
  modelFile: Buffer
  weights: WeightsTable
  samples: Sample[]
  inSample: FitCounts
  nested: FitCounts
}

export function trainingSetSha256(samples: { sha256: string }[]): string {
  return crypto.createHash('sha256').update(samples.map((s) => s.sha256).sort().join('\n')).digest('hex')
}

const pct = (n: number, d: number) => `${((100 * n) / Math.max(1, d)).toFixed(2)} %`

/** How many messages a sample counts as in training (DEFAULT_RECIPE.sourceWeights). */
export const trainingWeight = (s: { source: string }) => DEFAULT_RECIPE.sourceWeights[s.source] ?? 1

/** What the recipe makes from a set of samples: the calibrated model and the weights fitted for it. */
export interface RecipeResult {
  model: LogisticModel
  weights: Record<string, number>
  handSet: string[]
  inSample: FitCounts
  nested: FitCounts
}

/**
 * The recipe on given samples: the model with its calibration, and the weights fitted on the
 * calibrated held-out probabilities. `fold` deals the samples into the recipe's folds (the
 * benchmark runs the recipe inside its own cross-validation, with folds of its own).
 */
export function runRecipe(samples: Sample[], current: Record<string, number>, fold: (s: Sample) => number = (s) => s.fold): RecipeResult {
  const folds = DEFAULT_RECIPE.folds
  const dealt = samples.map(fold)
  const { model, heldOut } = trainCalibrated(samples.map((s, i) => ({ f: s.features, spam: s.spam, fold: dealt[i], weight: trainingWeight(s) })), folds, { scheme: TOKEN_SCHEME })
  const messages = samples.map((s, i) => ({ symbols: [...s.fixed, ...bucketSymbols(heldOut[i])].map((x) => x.name), spam: s.spam, fold: dealt[i] }))
  const { rows, names, handSet } = fitRows(messages, current)
  const { points, inSample, nested } = fitWeights(rows, names, folds, { targetFp: DEFAULT_RECIPE.targetFp })
  const weights = { ...current }
  for (const n of names) weights[n] = points.get(n)!
  for (const n of handSet) weights[n] = handSetOr(n, current) ?? 0
  return { model, weights, handSet, inSample, nested }
}

/** Samples the default recipe may learn from. */
export function allowedSource(source: string): boolean {
  return DEFAULT_RECIPE.sources.includes(source) && !NEVER_SHIPPED.includes(source)
}

/**
 * Builds the default model and its weights from the corpus. `filter` narrows the recipe
 * (tests build it on a small part); `current` is the table whose policy weights are kept.
 */
export async function buildDefault(corpus: string, opts: { filter?: (source: string, i: number) => boolean; current?: WeightsTable; now?: Date } = {}): Promise<DefaultBuild> {
  const recipe = DEFAULT_RECIPE
  const current = opts.current ?? (weightsTable as WeightsTable)
  const samples = await loadSamples(recipe.folds, (source, i) => allowedSource(source) && (opts.filter?.(source, i) ?? true), corpus)
  const { model, weights, handSet, inSample, nested } = runRecipe(samples, current.weights)
  const setSha = trainingSetSha256(samples)
  const ham = samples.filter((s) => !s.spam).length
  const sources = [...new Set(samples.map((s) => s.source))].sort()
  model.provenance = { recipe: recipe.name, sources, sourceWeights: recipe.sourceWeights, ham, spam: samples.length - ham, trainingSetSha256: setSha }
  const modelFile = serialiseLogistic(model)
  return {
    modelFile,
    samples,
    inSample,
    nested,
    weights: {
      about: current.about,
      recipe: {
        name: recipe.name,
        sources,
        ham,
        spam: samples.length - ham,
        trainingSetSha256: setSha,
        modelSha256: crypto.createHash('sha256').update(modelFile).digest('hex'),
        fitted: (opts.now ?? new Date()).toISOString().slice(0, 10),
        targetFp: recipe.targetFp,
        handSet,
        nested: { hamFlagged: pct(nested.fp, nested.ham), hamSurespam: pct(nested.sureHam, nested.ham), spamMissed: pct(nested.fn, nested.spam) },
      },
      weights,
    },
  }
}
