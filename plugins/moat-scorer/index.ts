/*
 * moat-scorer: the one place a verdict is made. Sums the weights of every symbol the filters
 * recorded (weights table: appliance/engine/weights.json) and applies each recipient
 * organisation's spam and surespam thresholds.
 *
 * Hooks: data_post (load it after every filter in config/plugins).
 * Config: moat-scorer.ini ([main] add_result_header).
 * Policy overrides, per recipient organisation: a virus is surespam (reason virus); a
 *   dangerous attachment is surespam (reason attachment), or, for an organisation that
 *   strips and when moat-attachments made the stripped copy, is left out of the score and
 *   the copy delivered (as is the copy a strip rule made for the organisation); a DMARC failure the organisation honours is at least spam; an
 *   unstamped bounce follows the backscatter policy.
 * Writes: transaction.notes.moat.verdicts[orgId] = { verdict, score, symbols, reason, stripped }.
 * Failure: an internal error is a 451.
 */
import { STRIPPABLE } from '../../appliance/engine/filters/attachments'
import { isVirusSymbol, score, type Symbol, type Verdict, verdictFor } from '../../appliance/engine/symbols'
import { collectSymbols, guarded, moatNotes, type MoatNotes, type OrgVerdict, recipientOrgs, type HarakaConnection, type HarakaPlugin, type Next } from '../../appliance/smtp/haraka'
import type { Organisation } from '../../appliance/services/tenants'

const atLeast = (v: Verdict, floor: Verdict): Verdict => (v === 'surespam' || floor === 'surespam' ? 'surespam' : v === 'spam' || floor === 'spam' ? 'spam' : 'clean')

/** One organisation's verdict over the symbols, with its policies applied. */
export function orgVerdict(org: Organisation, symbols: Symbol[], opts: { backscatter: boolean; stripped: MoatNotes['stripped'] | null }): OrgVerdict {
  const dangerous = symbols.some((s) => STRIPPABLE.has(s.name))
  // A dangerous attachment is stripped only under the organisation's policy (and then the
  // copy is free of it); otherwise the copy a strip rule made for this organisation serves.
  const strip = dangerous ? !!opts.stripped?.dangerous && org.attachment_action === 'strip' : !!opts.stripped?.ruleOrgs.includes(org.id)
  // What was stripped is not in the delivered copy: it does not count towards that copy's score.
  const scored = score(strip ? symbols.filter((s) => !STRIPPABLE.has(s.name)) : symbols)
  if (strip) {
    for (const s of symbols) if (STRIPPABLE.has(s.name) && !scored.symbols.some((x) => x.name === s.name)) scored.symbols.push({ ...s, detail: `removed: ${s.detail ?? ''}`, weight: 0 })
  }
  let verdict = verdictFor(scored.score, { spam: org.spam_threshold, surespam: org.surespam_threshold })
  let reason: OrgVerdict['reason'] = 'score'
  if (org.dmarc_action === 'honour' && symbols.some((s) => s.name === 'DMARC_FAIL_QUARANTINE' || s.name === 'DMARC_FAIL_REJECT')) verdict = atLeast(verdict, 'spam')
  if (dangerous && !strip) [verdict, reason] = ['surespam', 'attachment']
  if (symbols.some((s) => isVirusSymbol(s.name))) [verdict, reason] = ['surespam', 'virus']
  // A bounce without a valid stamp: the organisation's backscatter policy decides, not the score.
  if (opts.backscatter && reason === 'score') [verdict, reason] = ['surespam', 'backscatter']
  return {
    verdict,
    score: scored.score,
    symbols: scored.symbols,
    reason,
    tag: opts.backscatter && org.backscatter_action === 'tag',
    stripped: strip && verdict === 'clean',
  }
}

export function register(this: HarakaPlugin): void {
  this.register_hook('data_post', 'decide')
}

export function decide(this: HarakaPlugin, next: Next, connection: HarakaConnection): void {
  guarded(this, next, async (done) => {
    const txn = connection.transaction!
    const notes = moatNotes(txn)
    const symbols = collectSymbols(txn)
    for (const org of recipientOrgs(txn)) {
      notes.verdicts[org.id] = orgVerdict(org, symbols, { backscatter: notes.backscatter?.includes(org.id) ?? false, stripped: notes.stripped ?? null })
    }
    const scored = score(symbols)
    txn.results.add(this, { score: scored.score, symbol_names: scored.symbols.map((s) => s.name).join(' ') })
    done()
  })
}
