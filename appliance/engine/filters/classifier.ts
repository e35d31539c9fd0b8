/*
 * Turns the statistical classifier's spam probability into one bucket symbol, so the
 * weights table (not this code) says how much each level of certainty counts. The
 * probability is the model's calibrated one (see recipe/calibration.ts): a site's own model
 * lands on the same scale as the shipped one, so the same weights fit both.
 */
import { calibratedProbability, features, type LogisticModel } from '../logistic'
import type { ParsedMessage } from '../message'
import type { Symbol } from '../symbols'
import { tokenize, type Tokens } from '../tokenize'

// Finer near certainty: that is where ham that reads like spam and spam part-way separate.
export const BUCKETS: [number, string][] = [
  [0.9999, 'CLASSIFIER_9999'],
  [0.9998, 'CLASSIFIER_9998'],
  [0.9995, 'CLASSIFIER_9995'],
  [0.999, 'CLASSIFIER_999'],
  [0.998, 'CLASSIFIER_998'],
  [0.995, 'CLASSIFIER_995'],
  [0.99, 'CLASSIFIER_99'],
  [0.98, 'CLASSIFIER_98'],
  [0.97, 'CLASSIFIER_97'],
  [0.95, 'CLASSIFIER_95'],
  [0.93, 'CLASSIFIER_93'],
  [0.9, 'CLASSIFIER_90'],
  [0.85, 'CLASSIFIER_85'],
  [0.8, 'CLASSIFIER_80'],
  [0.7, 'CLASSIFIER_70'],
  [0.5, 'CLASSIFIER_50'],
  [0.2, 'CLASSIFIER_20'],
  [0.05, 'CLASSIFIER_05'],
  [0.01, 'CLASSIFIER_01'],
  [-1, 'CLASSIFIER_00'],
]

export function spamProbability(model: LogisticModel, msg: ParsedMessage, tokens: Tokens = tokenize(msg)): number {
  return calibratedProbability(model, features(tokens))
}

/** The bucket symbol of a spam probability. */
export function bucketSymbols(p: number): Symbol[] {
  const name = BUCKETS.find(([min]) => p >= min)![1]
  return [{ name, detail: `p=${p.toFixed(4)}` }]
}

export function classifierSymbols(model: LogisticModel, msg: ParsedMessage, tokens?: Tokens): Symbol[] {
  if (model.messages === 0) return []
  return bucketSymbols(spamProbability(model, msg, tokens))
}
