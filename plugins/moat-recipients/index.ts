/*
 * moat-recipients: accepts RCPT TO only for provisioned recipients of provisioned domains, and
 * for a domain with recipient verification on, for those its own server accepts (asked by
 * callout, smtp/recipient-callout.ts; its server unreachable: 451, so nothing bounces).
 *
 * Hooks: rcpt. Config: moat-recipients.ini ([main] max_recipients, callout_timeout_ms).
 * Symbols: none; it answers at RCPT. Records each accepted recipient's organisation in
 *   transaction.notes.moat.rcpts for the filters and the queue.
 * Failure: a database error is a 451, never a 5xx and never an accept.
 * Untrusted input: the envelope recipient.
 *
 * SECURITY: this is the relay control for inbound mail. A domain that is not ours is refused
 * here; do not move that check to a later hook, or RCPT would accept anything: an open relay.
 */
import { constants, DSN, guarded, moatNotes, type HarakaAddress, type HarakaConnection, type HarakaPlugin, type Next } from '../../appliance/smtp/haraka'
import { RecipientCallout } from '../../appliance/smtp/recipient-callout'
import { runtime } from '../../appliance/smtp/runtime'

// Local parts that route elsewhere on some servers behind us (percent hack, bang paths,
// embedded @): a catch-all domain must not turn them into a relay.
const ROUTING_LOCAL_PART = /[%!@"\\\s/]/

export function register(this: HarakaPlugin): void {
  this.load_config()
  this.register_hook('rcpt', 'check_recipient')
}

export function load_config(this: HarakaPlugin): void {
  this.cfg = this.config.get('moat-recipients.ini', () => this.load_config())
  this.maxRecipients = Number(this.cfg.main?.max_recipients) || 1000
  this.calloutTimeoutMs = Number(this.cfg.main?.callout_timeout_ms) || 10_000
}

export function check_recipient(this: HarakaPlugin, next: Next, connection: HarakaConnection, params: [HarakaAddress]): void {
  guarded(this, next, async (done) => {
    const rcpt = params[0]
    const txn = connection.transaction!
    if (connection.relaying) return done() // authenticated relay is handled by the outbound path
    if (!rcpt.host) return done(constants.DENY, DSN.create(550, 'Recipient address must be fully qualified', 1, 3))
    if (ROUTING_LOCAL_PART.test(rcpt.user)) {
      return done(constants.DENY, DSN.create(550, 'Recipient address syntax not accepted here', 1, 3))
    }
    const notes = moatNotes(txn)
    if (notes.rcpts.length >= this.maxRecipients) {
      return done(constants.DENYSOFT, DSN.create(452, 'Too many recipients in this transaction', 5, 3))
    }
    const res = runtime().recipients.resolve(rcpt.user, rcpt.host)
    if (res.ok) {
      notes.rcpts.push({ address: res.address, orgId: res.orgId, domainId: res.domainId, userId: res.userId, tagMode: res.tagMode })
      return done(constants.OK)
    }
    switch (res.reason) {
      case 'verify': {
        this.callout ??= new RecipientCallout({ helo: runtime().settings.hostname, timeoutMs: this.calloutTimeoutMs })
        const answer = await (this.callout as RecipientCallout).check(res.address, res.host, res.port)
        if (answer === 'valid') {
          notes.rcpts.push({ address: res.address, orgId: res.orgId, domainId: res.domainId, userId: null, tagMode: res.tagMode })
          return done(constants.OK)
        }
        if (answer === 'invalid') return done(constants.DENY, DSN.create(550, `No such user here: ${rcpt.user}@${rcpt.host}`, 1, 1))
        return done(constants.DENYSOFT, DSN.create(451, 'Cannot verify this recipient with its mail server now; try again later', 4, 3))
      }
      case 'unknown-domain':
        return done(constants.DENY, DSN.create(550, `Relaying denied: ${rcpt.host} is not a domain this server accepts mail for`, 7, 1))
      case 'suspended':
        return done(constants.DENY, DSN.create(550, 'Mailbox disabled: the organisation is suspended', 2, 1))
      case 'unknown-user':
        return done(constants.DENY, DSN.create(550, `No such user here: ${rcpt.user}@${rcpt.host}`, 1, 1))
    }
  })
}
