/*
 * Turns the classifier's probability into one bucket symbol, as SpamAssassin's BAYES_xx do,
 * so the weights table (not this code) says how much each level of certainty counts.
 */
import { type BayesModel, classify } from '../bayes'
import type { ParsedMessage } from '../message'
import type { Symbol } from '../symbols'
import { tokenize } from '../tokenize'

const BUCKETS: [number, string][] = [
  [0.999, 'BAYES_999'],
  [0.99, 'BAYES_99'],
  [0.95, 'BAYES_95'],
  [0.8, 'BAYES_80'],
  [0.4, 'BAYES_50'],
  [0.2, 'BAYES_20'],
  [0.01, 'BAYES_05'],
  [-1, 'BAYES_00'],
]

export function bayesSymbols(model: BayesModel, msg: ParsedMessage): Symbol[] {
  const { probability, used } = classify(model, tokenize(msg))
  if (used === 0) return []
  const name = BUCKETS.find(([min]) => probability >= min)![1]
  return [{ name, detail: `p=${probability.toFixed(4)} from ${used} tokens` }]
}
