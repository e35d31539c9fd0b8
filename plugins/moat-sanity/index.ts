/*
 * moat-sanity: transport-level safety and header/MIME sanity of the message.
 *
 * Hooks: data_post.
 * Config: moat-sanity.ini — [reject] nul, bare_cr, long_lines: enforce (true) or only record
 *   a symbol (false). The organisation's max_message_bytes is enforced here.
 * Symbols: HEADER_8BIT, LONG_LINE, MIME_PARSE_ERROR, MISSING_FROM, MISSING_DATE,
 *   MISSING_MESSAGE_ID, DATE_INVALID, DATE_IN_FUTURE, FROM_REPLYTO_DIFFER, SUBJECT_ALLCAPS,
 *   HTML_ONLY, EMPTY_BODY, URL_IP_HOST, URL_ANCHOR_MISMATCH (see appliance/engine/filters/sanity.ts);
 *   the phishing signals PHISH_*, HTML_FORM, HTML_HIDDEN_TEXT, SPAM_GAMBLING,
 *   FROM_NAME_OBFUSCATED, SUBJECT_OBFUSCATED (filters/phishing.ts); URL_SHORTENER,
 *   URL_THROWAWAY_HOSTING, URL_IPFS, URL_BAD_HOST, FROM_DOMAIN_INVALID, FROM_THROWAWAY_TENANT,
 *   FROM_NAME_HAS_ADDRESS, PHISH_HTML_ATTACHMENT(_FORM) (filters/phishing-links.ts);
 *   FROM_ABUSED_TLD, URL_ABUSED_TLD (filters/abused-tlds.ts).
 * Failure: an internal error is a 451 (guarded); malformed MIME is a symbol, not a failure.
 * Untrusted input: the whole message.
 *
 * SECURITY: a bare CR (or NUL) is never relayed onward: downstream servers disagree on what
 * it means, which is how SMTP smuggling works. Haraka itself already refuses bare LF.
 */
import { contentFilter } from '../../appliance/engine/engine'
import { addSymbols, constants, DSN, guarded, moatNotes, parsedMessage, rawMessage, type HarakaConnection, type HarakaPlugin, type Next } from '../../appliance/smtp/haraka'
import { runtime } from '../../appliance/smtp/runtime'

const filter = contentFilter('moat-sanity')

export function register(this: HarakaPlugin): void {
  this.load_config()
  this.register_hook('data_post', 'check_message')
}

export function load_config(this: HarakaPlugin): void {
  this.cfg = this.config.get(
    'moat-sanity.ini',
    { booleans: ['+reject.nul', '+reject.bare_cr', '-reject.long_lines'] },
    () => this.load_config(),
  )
}

function hasBareCr(raw: Buffer): boolean {
  for (let i = raw.indexOf(13); i !== -1; i = raw.indexOf(13, i + 1)) {
    if (raw[i + 1] !== 10) return true
  }
  return false
}

export function check_message(this: HarakaPlugin, next: Next, connection: HarakaConnection): void {
  guarded(this, next, async (done) => {
    const txn = connection.transaction!
    const rt = runtime()
    let limit = Infinity
    for (const r of moatNotes(txn).rcpts) limit = Math.min(limit, rt.tenants.orgById(r.orgId)?.max_message_bytes ?? Infinity)
    if (txn.data_bytes > limit) {
      return done(constants.DENY, DSN.create(552, `Message size ${txn.data_bytes} exceeds the limit of ${limit} bytes`, 3, 4))
    }
    const raw = await rawMessage(txn)
    if (this.cfg.reject.nul && raw.includes(0)) {
      txn.results.add(this, { fail: 'nul' })
      return done(constants.DENY, DSN.create(550, 'Message contains NUL characters, which SMTP does not allow', 6, 0))
    }
    if (this.cfg.reject.bare_cr && hasBareCr(raw)) {
      txn.results.add(this, { fail: 'bare_cr' })
      return done(constants.DENY, DSN.create(550, 'Message contains a bare CR not followed by LF; send CRLF line endings', 6, 0))
    }
    const symbols = filter.check(raw, await parsedMessage(txn), { model: rt.model() })
    // Haraka folds DATA lines over data_line_length before we see them; it leaves a note.
    if (txn.notes.data_line_length_exceeded && !symbols.some((s) => s.name === 'LONG_LINE')) {
      symbols.push({ name: 'LONG_LINE', detail: 'folded by the SMTP receiver' })
    }
    if (this.cfg.reject.long_lines && symbols.some((s) => s.name === 'LONG_LINE')) {
      txn.results.add(this, { fail: 'long_line' })
      return done(constants.DENY, DSN.create(550, 'Message has a line longer than 998 octets (RFC 5322 2.1.1)', 6, 0))
    }
    addSymbols(txn, this, symbols)
    done()
  })
}
