/*
 * moat-sanity: transport-level safety and header/MIME sanity of the message.
 *
 * Hooks: data (counts the header lines as received), data_post.
 * Config: moat-sanity.ini — [reject] nul, bare_cr, long_lines: enforce (true) or only record
 *   a symbol (false). The organisation's max_message_bytes is enforced here.
 * Symbols: HEADER_8BIT, LONG_LINE, MIME_PARSE_ERROR, MISSING_FROM, FROM_MALFORMED, MISSING_DATE,
 *   MISSING_MESSAGE_ID, DATE_INVALID, DATE_IN_FUTURE, FROM_REPLYTO_DIFFER, SUBJECT_ALLCAPS,
 *   HTML_ONLY, EMPTY_BODY, URL_IP_HOST, URL_ANCHOR_MISMATCH (see appliance/engine/filters/sanity.ts);
 *   the phishing signals PHISH_*, HTML_FORM, HTML_HIDDEN_TEXT, SPAM_GAMBLING, SPAM_ADULT_DATING,
 *   FROM_NAME_OBFUSCATED, SUBJECT_OBFUSCATED (filters/phishing.ts); URL_SHORTENER,
 *   URL_THROWAWAY_HOSTING, URL_IPFS, URL_BAD_HOST, FROM_DOMAIN_INVALID, FROM_RANDOM_DOMAIN, FROM_THROWAWAY_TENANT,
 *   FROM_NAME_HAS_ADDRESS, PHISH_HTML_ATTACHMENT(_FORM), PHISH_ATTACHMENT_DISGUISED, QR_CODE_URL (a link in a QR code
 *   in an image: engine/qr-codes.ts) (filters/phishing-links.ts);
 *   FROM_ABUSED_TLD, URL_ABUSED_TLD (filters/abused-tlds.ts).
 * Failure: an internal error is a 451 (guarded); malformed MIME is a symbol, not a failure.
 * Untrusted input: the whole message.
 *
 * Refuses (5xx, before 250) what Haraka could not keep whole: a header of max_lines lines or
 * more, a line over data_line_length (connection.ini).
 *
 * SECURITY: a bare CR (or NUL), in the header or the body, is never relayed onward: downstream servers disagree on what
 * it means, which is how SMTP smuggling works. Haraka itself already refuses bare LF.
 */
import { contentFilter } from '../../appliance/engine/engine'
import { addSymbols, constants, DSN, guarded, moatNotes, parsedMessage, rawMessage, type HarakaConnection, type HarakaPlugin, type Next } from '../../appliance/smtp/haraka'
import { runtime } from '../../appliance/smtp/runtime'

const filter = contentFilter('moat-sanity')

export function register(this: HarakaPlugin): void {
  this.load_config()
  this.register_hook('data', 'count_header')
  this.register_hook('data_post', 'check_message')
}

export function load_config(this: HarakaPlugin): void {
  this.cfg = this.config.get(
    'moat-sanity.ini',
    { booleans: ['+reject.nul', '+reject.bare_cr', '-reject.long_lines'] },
    () => this.load_config(),
  )
  const conn = this.config.get('connection.ini')
  this.maxHeaderLines = Number(conn?.headers?.max_lines) || 1000
  this.maxLineBytes = Number(conn?.max?.data_line_length) || 1000
}

function hasBareCr(raw: Buffer): boolean {
  for (let i = raw.indexOf(13); i !== -1; i = raw.indexOf(13, i + 1)) {
    if (raw[i + 1] !== 10) return true
  }
  return false
}

interface HeaderCount {
  /** lines before the first blank line, as received */
  lines: number
  bareCr: boolean
}

/**
 * Counts the header lines as they arrive. Haraka keeps only max_lines of them and rebuilds
 * the header from those (a message without a blank line is all header to it, and it later
 * moves what does not look like a header to the body, so its own count says nothing by
 * data_post); and the rebuilt header no longer shows a bare CR.
 */
export function count_header(this: HarakaPlugin, next: Next, connection: HarakaConnection): void {
  const txn = connection.transaction as (HarakaConnection['transaction'] & { add_data(line: Buffer): void }) | null
  if (!txn) return next()
  const header: HeaderCount = (txn.notes.moat_header = { lines: 0, bareCr: false })
  const addData = txn.add_data
  let inHeader = true
  txn.add_data = function (this: unknown, line: Buffer) {
    if (inHeader) {
      if (line[0] === 0x0a || (line[0] === 0x0d && line[1] === 0x0a)) {
        inHeader = false
      } else {
        header.lines++
        const cr = line.indexOf(13)
        if (cr !== -1 && cr < line.length - 2) header.bareCr = true
      }
    }
    return addData.call(this, line)
  }
  next()
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
    // What Haraka could not keep whole is refused before 250, never stored shortened:
    // header lines past its parse limit are dropped from the rebuilt header, and a line
    // past data_line_length is folded (connection.ini).
    const header: HeaderCount = txn.notes.moat_header ?? { lines: 0, bareCr: false }
    if (header.lines >= this.maxHeaderLines) {
      txn.results.add(this, { fail: 'header_lines' })
      return done(constants.DENY, DSN.create(552, `Message header too large: ${this.maxHeaderLines} or more lines before the first blank line`, 3, 4))
    }
    if (txn.notes.data_line_length_exceeded) {
      txn.results.add(this, { fail: 'line_length' })
      return done(constants.DENY, DSN.create(554, `Message has a line longer than ${this.maxLineBytes} octets`, 6, 0))
    }
    if (this.cfg.reject.bare_cr && header.bareCr) {
      txn.results.add(this, { fail: 'bare_cr' })
      return done(constants.DENY, DSN.create(550, 'Message header contains a bare CR not followed by LF; send CRLF line endings', 6, 0))
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
    if (this.cfg.reject.long_lines && symbols.some((s) => s.name === 'LONG_LINE')) {
      txn.results.add(this, { fail: 'long_line' })
      return done(constants.DENY, DSN.create(550, 'Message has a line longer than 998 octets (RFC 5322 2.1.1)', 6, 0))
    }
    addSymbols(txn, this, symbols)
    done()
  })
}
