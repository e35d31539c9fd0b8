/*
 * A fast guard against a collapsed engine (a broken tokenizer, a bad weights table): 3-fold
 * cross-validation on a fifth of the corpus (about 1,900 messages). The real figures come from
 * `npm run bench -- accuracy`; this only fails when accuracy falls apart.
 */
import t from 'tap'
import { accuracyRows, crossValidate, heldOutClassifierSymbols, heldOutPoints, heldOutProbabilities, loadSamples, missedAtFlagRate } from '../../../bench/accuracy'

t.test('cross-validated accuracy on a corpus sample has not collapsed', async (t) => {
  const samples = await loadSamples(3, (_source, i) => i % 5 === 0)
  t.ok(samples.length > 1500, `${samples.length} messages`)
  const probabilities = heldOutProbabilities(samples, 3)
  const stats = crossValidate(samples, 3, heldOutClassifierSymbols(samples, 3, probabilities))
  let ham = 0, fp = 0, spam = 0, fn = 0, sure = 0
  for (const s of stats.values()) {
    ham += s.ham
    fp += s.hamFlagged
    sure += s.hamSurespam
    spam += s.spam
    fn += s.spamMissed
  }
  t.comment(JSON.stringify(accuracyRows(stats).at(-1)))
  t.ok(fp / ham <= 0.02, `ham flagged ${fp}/${ham}`)
  // The default thresholds are fitted to a model trained on the whole corpus; trained on a
  // fifth of it, the model misses ~13 % at them (5.3 % with the whole corpus).
  t.ok(fn / spam <= 0.2, `spam missed ${fn}/${spam}`)
  t.equal(sure, 0, 'no ham at the surespam level')

  // Whatever the thresholds, the engine must still rank: with the cut set where 2 % of ham is
  // flagged, at most 10 % of spam may be missed (ties at the cut count as missed).
  const atCut = missedAtFlagRate(heldOutPoints(samples, probabilities), samples.map((s) => s.spam), 0.02)
  t.ok(atCut.spamMissed / atCut.spam <= 0.1, `spam missed with ${atCut.hamFlagged}/${atCut.ham} ham flagged: ${atCut.spamMissed}/${atCut.spam}`)
})
