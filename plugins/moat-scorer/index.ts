/*
 * moat-scorer: the one place a verdict is made. Sums the weights of every symbol the filters
 * recorded (weights table: appliance/engine/weights.json) and applies each recipient
 * organisation's spam and surespam thresholds.
 *
 * Hooks: data_post (load it after every filter in config/plugins).
 * Config: moat-scorer.ini ([main] add_result_header).
 * Writes: transaction.notes.moat.verdicts[orgId] = { verdict, score, symbols }.
 * Failure: an internal error is a 451.
 */
import { score, verdictFor } from '../../appliance/engine/symbols'
import { collectSymbols, guarded, moatNotes, type HarakaConnection, type HarakaPlugin, type Next } from '../../appliance/smtp/haraka'
import { runtime } from '../../appliance/smtp/runtime'

export function register(this: HarakaPlugin): void {
  this.register_hook('data_post', 'decide')
}

export function decide(this: HarakaPlugin, next: Next, connection: HarakaConnection): void {
  guarded(this, next, async (done) => {
    const txn = connection.transaction!
    const notes = moatNotes(txn)
    const scored = score(collectSymbols(txn))
    const tenants = runtime().tenants
    for (const orgId of new Set(notes.rcpts.map((r) => r.orgId))) {
      const org = tenants.orgById(orgId)
      if (!org) continue
      let verdict = verdictFor(scored.score, { spam: org.spam_threshold, surespam: org.surespam_threshold })
      // A bounce without a valid stamp: the organisation's backscatter policy decides, not the score.
      const backscatter = notes.backscatter?.includes(orgId) ?? false
      if (backscatter) verdict = 'surespam'
      notes.verdicts[orgId] = { verdict, score: scored.score, symbols: scored.symbols, tag: backscatter && org.backscatter_action === 'tag' }
    }
    txn.results.add(this, { score: scored.score, symbol_names: scored.symbols.map((s) => s.name).join(' ') })
    done()
  })
}
