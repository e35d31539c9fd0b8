/*
 * One parse of a raw message into what the filters look at. MIME decoding is postal-mime's
 * (a maintained, dependency-free parser); this module only shapes its output.
 *
 * Trusts nothing: the input is hostile mail. A message the parser cannot read is not an error
 * for the caller: it comes back with `parseError` set, so the mail is still scored and kept.
 */
import { inlineImages, qrCodeTexts } from './qr-codes'
import PostalMime, { decodeWords } from 'postal-mime'
import { htmlLinks, htmlToText } from './html-text'
import { applyPostalMimeSpeedup } from './postal-mime-speedup'

applyPostalMimeSpeedup()

/** The domain part of an address (after the last @). */
export function domainOf(address: string): string {
  return address.slice(address.lastIndexOf('@') + 1)
}

export interface ParsedMessage {
  /** Header name (lower case) to its decoded values, in message order. */
  headers: Map<string, string[]>
  from: { name: string; address: string } | null
  /**
   * The From field names one sender but no mail program would write it so: a display name
   * with an unquoted comma or other specials before the address ("Microsoft account team
   * ,_<x@evil.example>"). Parsers split it into a name without an address and a second
   * entry, so filters that read From see nobody, while the reader's mail program shows the
   * brand. `from` then holds what the reader sees: the whole display name and the address
   * (null when the field shows a name with an empty address).
   */
  fromMalformed: boolean
  replyTo: string[]
  to: string[]
  subject: string
  date: string | null
  messageId: string | null
  /** The plain-text part, or the HTML part as text when there is no plain part. */
  text: string
  html: string
  /** The HTML part as text ('' without one): spam often says different things in each part. */
  htmlText: string
  links: { href: string; text: string }[]
  urls: string[]
  /** The text of QR codes in the message's images; those that are web links are in `urls` too. */
  qrCodes: string[]
  attachments: { filename: string | null; mimeType: string; size: number; content: Uint8Array }[]
  parseError: string | null
  /** Headers of other filters that must never influence our verdict were present. */
  rawSize: number
}

const URL_RE = /\bhttps?:\/\/[^\s<>"'()\]\[]{2,2000}/gi
// Spam-filter verdicts added by other systems upstream: the appliance sees mail before any
// such header could be trusted, so they are dropped before anything reads the headers.
export const FOREIGN_VERDICT = /^(x-spam-|x-microsoft-antispam|x-ms-exchange-organization-scl|x-forefront-antispam|x-foff-|x-spam-checked-in-group|x-moat-)/

function flattenAddresses(list: PostalMime.Address[] | undefined): string[] {
  const out: string[] = []
  for (const a of list ?? []) {
    if (a.group) for (const m of a.group) out.push(m.address.toLowerCase())
    else if (a.address) out.push(a.address.toLowerCase())
  }
  return out
}

function attachmentBytes(content: ArrayBuffer | Uint8Array | string): Uint8Array {
  if (typeof content === 'string') return Buffer.from(content, 'utf8')
  return content instanceof Uint8Array ? content : new Uint8Array(content)
}

export async function parseMessage(raw: Buffer): Promise<ParsedMessage> {
  const msg: ParsedMessage = {
    headers: new Map(),
    from: null,
    fromMalformed: false,
    replyTo: [],
    to: [],
    subject: '',
    date: null,
    messageId: null,
    text: '',
    html: '',
    htmlText: '',
    links: [],
    urls: [],
    qrCodes: [],
    attachments: [],
    parseError: null,
    rawSize: raw.length,
  }
  let email: PostalMime.Email
  try {
    email = await PostalMime.parse(raw, { attachmentEncoding: 'arraybuffer', maxNestingDepth: 64 })
  } catch (err) {
    msg.parseError = (err as Error).message || String(err)
    // Fall back to the undecoded text so the words still count.
    msg.text = raw.toString('latin1').slice(0, 200_000)
    return msg
  }
  for (const h of email.headers) {
    if (FOREIGN_VERDICT.test(h.key)) continue
    const list = msg.headers.get(h.key)
    if (list) list.push(h.value)
    else msg.headers.set(h.key, [h.value])
  }
  if (email.from && !email.from.group && email.from.address) {
    msg.from = { name: email.from.name || '', address: email.from.address.toLowerCase() }
  } else {
    msg.from = mailboxAsShown(msg.headers.get('from')?.[0])
    // A name with an empty address ('"Facebook" <>') is no sender either, only a brand shown.
    msg.fromMalformed = msg.from !== null || (!!email.from && !email.from.group && !!email.from.name)
  }
  msg.replyTo = flattenAddresses(email.replyTo)
  msg.to = flattenAddresses(email.to).concat(flattenAddresses(email.cc))
  msg.subject = email.subject ?? ''
  msg.date = email.date ?? null
  msg.messageId = email.messageId ?? null
  msg.html = email.html ?? ''
  msg.htmlText = msg.html ? htmlToText(msg.html) : ''
  msg.text = email.text ? email.text : msg.htmlText
  msg.links = msg.html ? htmlLinks(msg.html) : []
  const urls = new Set<string>()
  for (const l of msg.links) if (/^https?:/i.test(l.href)) urls.add(l.href)
  for (const m of msg.text.matchAll(URL_RE)) {
    urls.add(m[0])
    if (urls.size >= 500) break
  }
  msg.attachments = email.attachments.map((a) => {
    const content = attachmentBytes(a.content)
    return { filename: a.filename, mimeType: (a.mimeType || 'application/octet-stream').toLowerCase(), size: content.byteLength, content }
  })
  msg.qrCodes = await qrCodeTexts([...msg.attachments, ...(msg.html.includes('data:image/') ? inlineImages(msg.html) : [])])
  for (const text of msg.qrCodes) {
    const m = /^\s*(https?:\/\/\S+)/i.exec(text)
    if (m) urls.add(m[1])
  }
  msg.urls = [...urls]
  return msg
}

/**
 * One mailbox from a From value the parser could not read as one: the single <address> in
 * it, and everything before it as the display name. Null unless there is exactly one address.
 */
export function mailboxAsShown(value: string | undefined): { name: string; address: string } | null {
  if (!value || value.length > 2000) return null
  const angled = [...value.matchAll(/<([^<>\s@]+@[^<>\s@]+)>/g)]
  if (angled.length !== 1) return null
  const name = decodeWords(value.slice(0, angled[0].index))
    .replace(/["\\]/g, '')
    .replace(/[\s,;:_]+$/, '')
    .trim()
  return { name, address: angled[0][1].toLowerCase() }
}

export function firstHeader(msg: ParsedMessage, name: string): string | undefined {
  return msg.headers.get(name)?.[0]
}

/** Host part of a URL, lower case, without credentials or port; null if unparseable. */
export function urlHost(url: string): string | null {
  const m = /^[a-z][a-z0-9+.-]*:\/\/(?:[^@/?#]*@)?(\[[^\]]+\]|[^:/?#]+)/i.exec(url)
  return m ? m[1].toLowerCase().replace(/\.$/, '') : null
}
