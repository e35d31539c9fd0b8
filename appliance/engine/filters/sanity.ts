/*
 * Header and MIME sanity: structural evidence that holds on today's mail as well as on old
 * corpora. Each check raises at most one symbol; weights live in weights.json.
 */
import { domainOf, firstHeader, type ParsedMessage, urlHost } from '../message'
import type { Symbol } from '../symbols'

const DAY = 86_400_000

/** Registrable-ish tail of a host: enough to tell brand.com from evil.net. */
function tail(host: string): string {
  return host.split('.').slice(-2).join('.')
}

export function rawChecks(raw: Buffer): Symbol[] {
  const out: Symbol[] = []
  const headerEnd = raw.indexOf('\r\n\r\n')
  const head = raw.subarray(0, headerEnd < 0 ? raw.length : headerEnd)
  for (let i = 0; i < head.length; i++) {
    if (head[i] > 0x7f) {
      out.push({ name: 'HEADER_8BIT' })
      break
    }
  }
  let lineStart = 0
  for (let i = raw.indexOf(10); i !== -1; i = raw.indexOf(10, i + 1)) {
    if (i - lineStart > 1000) {
      out.push({ name: 'LONG_LINE', detail: `line of ${i - lineStart - 1} octets` })
      break
    }
    lineStart = i + 1
  }
  return out
}

export function sanityChecks(msg: ParsedMessage, now: number = Date.now()): Symbol[] {
  const out: Symbol[] = []
  if (msg.parseError) out.push({ name: 'MIME_PARSE_ERROR', detail: msg.parseError.slice(0, 200) })
  if (msg.fromMalformed) out.push({ name: 'FROM_MALFORMED', detail: (firstHeader(msg, 'from') ?? '').slice(0, 120) })
  else if (!msg.from) out.push({ name: 'MISSING_FROM' })
  if (!firstHeader(msg, 'message-id')) out.push({ name: 'MISSING_MESSAGE_ID' })
  const date = firstHeader(msg, 'date')
  if (!date) {
    out.push({ name: 'MISSING_DATE' })
  } else {
    const t = Date.parse(date.replace(/\s*\([^)]*\)\s*$/, ''))
    if (Number.isNaN(t)) out.push({ name: 'DATE_INVALID', detail: date.slice(0, 80) })
    else if (t > now + 2 * DAY) out.push({ name: 'DATE_IN_FUTURE', detail: date.slice(0, 80) })
  }
  if (msg.from && msg.replyTo.length) {
    const fromDomain = tail(domainOf(msg.from.address))
    const other = msg.replyTo.find((r) => tail(domainOf(r)) !== fromDomain)
    if (other) out.push({ name: 'FROM_REPLYTO_DIFFER', detail: `reply-to ${domainOf(other)} != from ${domainOf(msg.from.address)}` })
  }
  const letters = msg.subject.replace(/[^\p{L}]/gu, '')
  if (letters.length >= 8 && letters === letters.toUpperCase() && letters !== letters.toLowerCase()) {
    out.push({ name: 'SUBJECT_ALLCAPS' })
  }
  if (msg.html && /^\s*text\/html/i.test(firstHeader(msg, 'content-type') ?? '')) out.push({ name: 'HTML_ONLY' })
  if (msg.text.trim().length === 0 && msg.attachments.length === 0) out.push({ name: 'EMPTY_BODY' })
  for (const url of msg.urls) {
    const host = urlHost(url)
    if (host && (/^\d{1,3}(\.\d{1,3}){3}$/.test(host) || host.startsWith('['))) {
      out.push({ name: 'URL_IP_HOST', detail: host })
      break
    }
  }
  for (const link of msg.links) {
    const shown = /^\s*(https?:\/\/)?([a-z0-9-]+\.)+[a-z]{2,}(\/\S*)?\s*$/i.exec(link.text)
    if (!shown) continue
    const shownHost = urlHost(/^https?:/i.test(link.text.trim()) ? link.text.trim() : `http://${link.text.trim()}`)
    const realHost = urlHost(link.href)
    if (shownHost && realHost && tail(shownHost) !== tail(realHost)) {
      out.push({ name: 'URL_ANCHOR_MISMATCH', detail: `shows ${shownHost}, goes to ${realHost}` })
      break
    }
  }
  return out
}
