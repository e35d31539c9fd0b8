/*
 * moat-bounce: backscatter protection. Outbound mail leaves with a BATV-tagged envelope
 * sender and a header stamp (appliance/smtp/delivery.ts); a bounce that comes back to a
 * tagged address has its tag checked and removed here, and a bounce without a valid stamp
 * is handled by the recipient organisation's backscatter policy.
 *
 * Hooks: rcpt (check and strip the tag; load before moat-recipients), data_post (decide).
 * Config: moat-bounce.ini ([main] validity_days).
 * Symbols: BOUNCE_STAMP_VALID, BOUNCE_NO_STAMP, BOUNCE_STAMP_EXPIRED, BOUNCE_STAMP_FORGED
 *   (weight 0: the policy acts, not the score). Writes notes.moat.backscatter = [orgId…].
 * Failure: an error is a 451, never a 5xx.
 * Untrusted input: the tagged address, the bounce's text (searched, never executed).
 */
import { BounceKeys, type StampCheck } from '../../appliance/services/bounce-keys'
import type { ParsedMessage } from '../../appliance/engine/message'
import { addSymbols, constants, DSN, guarded, moatNotes, parsedMessage, rawMessage, type HarakaAddress, type HarakaConnection, type HarakaPlugin, type Next } from '../../appliance/smtp/haraka'
import { runtime } from '../../appliance/smtp/runtime'

const BOUNCE_SENDER = /^(mailer-daemon|postmaster|mail-daemon|mailer|mdaemon|bounce|bounces)@/i
const BOUNCE_SUBJECT = /\b(undeliver(able|ed)|delivery (status )?notification|returned mail|failure notice|delivery (has )?failed|mail delivery (failed|system)|non.?delivery|nicht zustellbar|unzustellbar)\b/i

export function register(this: HarakaPlugin): void {
  this.load_config()
  this.register_hook('rcpt', 'strip_tag')
  this.register_hook('data_post', 'check_bounce')
}

export function load_config(this: HarakaPlugin): void {
  this.cfg = this.config.get('moat-bounce.ini', () => this.load_config())
  const days = Number(this.cfg.main?.validity_days)
  // The delivery side stamps with the same keys object, so both use this window.
  if (days > 0 && days < 500) runtime().bounceKeys = new BounceKeys(runtime().db, days)
  else if (this.cfg.main?.validity_days !== undefined) this.logerror(`moat-bounce: validity_days=${this.cfg.main.validity_days} is not 1-499; using ${runtime().bounceKeys.validityDays}`)
}

/** A bounce by content: a delivery-status report, or the usual NDR from a mailer daemon. */
export function looksLikeBounce(msg: ParsedMessage): boolean {
  const ct = msg.headers.get('content-type')?.[0] ?? ''
  if (/multipart\/report/i.test(ct) && /report-type\s*=\s*"?delivery-status/i.test(ct)) return true
  return !!msg.from && BOUNCE_SENDER.test(msg.from.address) && BOUNCE_SUBJECT.test(msg.subject)
}

export function strip_tag(this: HarakaPlugin, next: Next, connection: HarakaConnection, params: [HarakaAddress]): void {
  guarded(this, next, async (done) => {
    const rcpt = params[0]
    if (connection.relaying || !/^prvs=/i.test(rcpt.user ?? '')) return done()
    const check = runtime().bounceKeys.checkAddress(`${rcpt.user}@${rcpt.host}`)
    if (check.status === 'none') return done()
    const original = check.original
    const at = original.lastIndexOf('@')
    // The customer's server knows alice@, not prvs=…=alice@: deliver to the address we tagged.
    rcpt.user = original.slice(0, at)
    const tags: Record<string, StampCheck['status']> = (connection.transaction!.notes.moat_bounce_tags ??= {})
    tags[original.toLowerCase()] = check.status
    done()
  })
}

export function check_bounce(this: HarakaPlugin, next: Next, connection: HarakaConnection): void {
  guarded(this, next, async (done) => {
    const txn = connection.transaction!
    if (connection.relaying) return done()
    const msg = await parsedMessage(txn)
    const nullSender = !txn.mail_from.address
    if (!nullSender && !looksLikeBounce(msg)) return done()
    const rt = runtime()
    const tags: Record<string, StampCheck['status']> = txn.notes.moat_bounce_tags ?? {}
    const notes = moatNotes(txn)
    let text: string | null = null
    const unstamped = new Set<number>()
    const symbols = new Set<string>()
    for (const r of notes.rcpts) {
      let status = tags[r.address] ?? 'none'
      if (status !== 'valid') {
        // Some servers bounce to the From: address and quote our headers instead.
        text ??= (await rawMessage(txn)).toString('latin1')
        const h = rt.bounceKeys.checkHeaderStamps(text, r.address)
        if (h.status === 'valid' || status === 'none') status = h.status
      }
      symbols.add({ valid: 'BOUNCE_STAMP_VALID', none: 'BOUNCE_NO_STAMP', expired: 'BOUNCE_STAMP_EXPIRED', forged: 'BOUNCE_STAMP_FORGED' }[status])
      if (status !== 'valid') unstamped.add(r.orgId)
    }
    addSymbols(txn, this, [...symbols].map((name) => ({ name })))
    const acting = [...unstamped].filter((id) => (rt.tenants.orgById(id)?.backscatter_action ?? 'quarantine') !== 'off')
    if (!acting.length) return done()
    if (acting.length === new Set(notes.rcpts.map((r) => r.orgId)).size && acting.every((id) => rt.tenants.orgById(id)?.backscatter_action === 'reject')) {
      return done(constants.DENY, DSN.create(550, 'Bounce refused: it answers no message sent from here (backscatter)', 7, 1))
    }
    notes.backscatter = acting
    done()
  })
}
