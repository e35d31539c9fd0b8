/*
 * moat-lists: applies allow and block lists (appliance/services/sender-lists.ts) per
 * recipient. A blocked sender's mail goes to the quarantine (or, when every recipient blocks
 * it, is refused at DATA); an allowed sender's is delivered whatever its score — unless it
 * failed sender authentication (allow-listed addresses are what spammers forge first) or
 * carries a virus or a dangerous attachment: then the entry is ignored, and says so.
 *
 * Hooks: data_post (after every filter, before moat-scorer). Config: moat-lists.ini.
 * Symbols: ALLOWLISTED_SENDER, BLOCKLISTED_SENDER, ALLOWLIST_IGNORED (weight 0: the lists act
 *   per recipient, not through the score). Writes notes.moat.listed[rcpt] = 'allow' | 'block'.
 * Failure: a database error is a 451.
 * Untrusted input: envelope sender and From header (compared, never interpreted).
 */
import { STRIPPABLE } from '../../appliance/engine/filters/attachments'
import { isVirusSymbol, type Symbol } from '../../appliance/engine/symbols'
import { SenderLists } from '../../appliance/services/sender-lists'
import { addSymbols, collectSymbols, constants, DSN, guarded, moatNotes, parsedMessage, type HarakaConnection, type HarakaPlugin, type Next } from '../../appliance/smtp/haraka'
import { runtime } from '../../appliance/smtp/runtime'

// What an allow entry never overrides: a virus, or an attachment dangerous enough to strip
// (the same set the attachment policy acts on, so the two cannot drift apart).
const isUnsafe = (name: string) => isVirusSymbol(name) || STRIPPABLE.has(name)
const SPOOFED = /^(SPF_FAIL|DKIM_FAIL|DMARC_FAIL(_QUARANTINE|_REJECT)?)$/

export function register(this: HarakaPlugin): void {
  this.load_config()
  this.lists = new SenderLists(runtime().db)
  this.register_hook('data_post', 'apply_lists')
}

export function load_config(this: HarakaPlugin): void {
  this.cfg = this.config.get('moat-lists.ini', { booleans: ['+main.reject_when_all_block'] }, () => this.load_config())
}

export function apply_lists(this: HarakaPlugin, next: Next, connection: HarakaConnection): void {
  guarded(this, next, async (done) => {
    if (connection.relaying) return done()
    const txn = connection.transaction!
    const notes = moatNotes(txn)
    const msg = await parsedMessage(txn)
    const senders = [txn.mail_from.address || '', msg.from?.address ?? ''].filter(Boolean)
    if (!senders.length || !notes.rcpts.length) return done()
    const raised = collectSymbols(txn).map((s) => s.name)
    const unsafe = raised.find(isUnsafe)
    const spoofed = raised.find((n) => SPOOFED.test(n))
    const lists = this.lists as SenderLists
    const listed: Record<string, 'allow' | 'block'> = {}
    const symbols: Symbol[] = []
    for (const r of notes.rcpts) {
      const m = lists.match(r.orgId, r.userId, senders)
      if (!m) continue
      if (m.kind === 'block') {
        listed[r.address] = 'block'
        symbols.push({ name: 'BLOCKLISTED_SENDER', detail: `${m.pattern} (${m.level})` })
      } else if (unsafe || spoofed) {
        symbols.push({ name: 'ALLOWLIST_IGNORED', detail: `${m.pattern} (${m.level}): ${unsafe ?? spoofed}` })
      } else {
        listed[r.address] = 'allow'
        symbols.push({ name: 'ALLOWLISTED_SENDER', detail: `${m.pattern} (${m.level})` })
      }
    }
    addSymbols(txn, this, symbols)
    notes.listed = listed
    if (this.cfg.main.reject_when_all_block && notes.rcpts.every((r) => listed[r.address] === 'block')) {
      return done(constants.DENY, DSN.create(550, 'Sender blocked by the recipient', 7, 1))
    }
    done()
  })
}
