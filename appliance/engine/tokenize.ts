/*
 * Tokens the statistical classifier learns from. Content, links and structure only: header
 * lines that mostly say *when* and *through which software* mail was sent (Received, Date,
 * X-Mailer) would teach the model the corpus' age instead of spam, so they are not used.
 */
import { type ParsedMessage, urlHost } from './message'

const WORD = /[\p{L}\p{N}][\p{L}\p{N}'$€£.-]*[\p{L}\p{N}$€£]|[\p{L}\p{N}$€£]/gu
// Anonymisation placeholders in part of the corpus; never let them become evidence.
const PLACEHOLDER = /<(domain|email|name|phone|url)>/gi
const MAX_BODY_CHARS = 100_000

function addWords(out: Set<string>, text: string, prefix: string, pairs = false): void {
  let prev = ''
  for (const m of text.matchAll(WORD)) {
    let w = m[0].toLowerCase()
    if (w.length < 2) continue
    if (w.length > 24) {
      // Long runs (hashes, base64 junk) are evidence by their shape, not their letters.
      out.add(`${prefix}skip:${w[0]}:${Math.min(10, Math.floor(w.length / 10)) * 10}`)
      prev = ''
      continue
    }
    if (/^\d+$/.test(w)) w = `#${w.length}`
    out.add(prefix + w)
    // Word pairs carry phrases ("click here", "dear friend") that single words do not.
    if (pairs && prev) out.add(`${prefix}${prev} ${w}`)
    prev = w
  }
}

export function tokenize(msg: ParsedMessage): Set<string> {
  const out = new Set<string>()
  addWords(out, msg.subject.replace(PLACEHOLDER, ' '), 's:', true)
  if (msg.subject && msg.subject === msg.subject.toUpperCase() && /[A-Z]{4}/.test(msg.subject)) out.add('s:ALLCAPS')

  const body = msg.text.slice(0, MAX_BODY_CHARS).replace(PLACEHOLDER, ' ')
  addWords(out, body, '', true)
  if (msg.htmlText && msg.htmlText !== msg.text) addWords(out, msg.htmlText.slice(0, MAX_BODY_CHARS).replace(PLACEHOLDER, ' '), '', true)

  if (msg.from) {
    const domain = msg.from.address.split('@')[1]
    if (domain && !PLACEHOLDER.test(domain)) out.add(`from:${domain}`)
    addWords(out, msg.from.name.replace(PLACEHOLDER, ' '), 'fromname:')
  } else {
    out.add('from:NONE')
  }
  for (const url of msg.urls.slice(0, 100)) {
    const host = urlHost(url)
    if (!host) continue
    if (/^\d+\.\d+\.\d+\.\d+$/.test(host) || host.startsWith('[')) {
      out.add('url:IP')
      continue
    }
    const labels = host.split('.')
    out.add(`url:${labels.slice(-2).join('.')}`)
    if (labels.length > 2) out.add(`url:${labels.slice(-3).join('.')}`)
  }
  out.add(`html:${msg.html ? (msg.text && msg.text !== msg.html ? 'yes' : 'only') : 'no'}`)
  for (const a of msg.attachments.slice(0, 20)) {
    out.add(`att:${a.mimeType}`)
    const ext = a.filename?.toLowerCase().match(/\.([a-z0-9]{1,8})$/)?.[1]
    if (ext) out.add(`attext:${ext}`)
  }
  const ct = msg.headers.get('content-type')?.[0]?.split(';')[0].trim().toLowerCase()
  if (ct) out.add(`ct:${ct}`)
  structure(out, msg)
  return out
}

const bucket = (n: number) => (n === 0 ? '0' : n === 1 ? '1' : n <= 3 ? '2-3' : n <= 10 ? '4-10' : n <= 30 ? '11-30' : 'many')

/** How the mail is built and who says they sent it, without the when and the software. */
function structure(out: Set<string>, msg: ParsedMessage): void {
  const from = msg.from?.address.split('@')[1]?.toLowerCase()
  const mid = /@([^>\s]+)>?\s*$/.exec(msg.messageId ?? '')?.[1]?.toLowerCase()
  // A missing Message-ID is the sanity filter's MISSING_MESSAGE_ID already, and message
  // length is left out: both taught the model that any short note is spam.
  if (mid) out.add(`mid:${from && (mid === from || mid.endsWith(`.${from.split('.').slice(-2).join('.')}`)) ? 'same' : 'other'}`)
  for (const h of ['list-unsubscribe', 'list-id', 'feedback-id', 'list-unsubscribe-post']) if (msg.headers.has(h)) out.add(`hdr:${h}`)
  const prec = msg.headers.get('precedence')?.[0]?.trim().toLowerCase()
  if (prec) out.add(`hdr:precedence:${prec.slice(0, 12)}`)
  const charset = /charset="?([\w-]+)/i.exec(msg.headers.get('content-type')?.[0] ?? '')?.[1]?.toLowerCase()
  if (charset) out.add(`charset:${charset}`)
  if (msg.html) {
    out.add(`img:${bucket((msg.html.match(/<img\b/gi) ?? []).length)}`)
    out.add(`links:${bucket(msg.links.length)}`)
    const ratio = msg.htmlText.length / Math.max(1, msg.html.length)
    out.add(`textratio:${ratio < 0.05 ? 'tiny' : ratio < 0.2 ? 'low' : ratio < 0.5 ? 'mid' : 'high'}`)
  }
}
