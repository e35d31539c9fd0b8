/*
 * Tokens the statistical classifier learns from. Content, links, structure and who the mail
 * says it is from; header lines that mostly say *when* and *through which software* mail was
 * sent (Received, Date, X-Mailer) would teach the model the corpus' age instead of spam, so
 * they are not used.
 *
 * Three groups, weighed apart by the classifier (see logistic.ts): words and word pairs,
 * character 4-grams of the start of the text (they survive the misspellings, glued words and
 * look-alike letters that spam uses to dodge word lists), and a few dozen "meta" tokens about
 * structure and sender whose evidence must not be drowned by a long text.
 */
import { registeredDomain } from '../services/dnsbl'
import { charGrams } from './logistic'
import { domainOf, type ParsedMessage, urlHost } from './message'

/** Changes whenever tokens change: a model trained on other tokens is not used. */
export const TOKEN_SCHEME = 'moat-tokens-3'

export interface Tokens {
  words: Set<string>
  /** The text whose character 4-grams are features (hashed as they are read: 3,000 strings less). */
  charText: string
  meta: Set<string>
}

const WORD = /[\p{L}\p{N}][\p{L}\p{N}'$€£.-]*[\p{L}\p{N}$€£]|[\p{L}\p{N}$€£]/gu
// Anonymisation placeholders in part of the corpus; never let them become evidence.
const PLACEHOLDER = /<(domain|email|name|phone|url)>/gi
const DIGITS = /^\d+$/
const isDigit = (c: number) => c >= 48 && c <= 57
const MAX_BODY_CHARS = 100_000
// Spam says what it is early; 3,000 characters keep 4-grams cheap on long mail.
const CHAR_GRAM_CHARS = 3000

function addWords(out: Set<string>, text: string, prefix: string, pairs = false): void {
  // Lower-casing the text once costs far less than once per word; a text whose length
  // changes with it (a Turkish dotted İ) is lowered word by word, so words stay whole.
  const lowered = text.toLowerCase()
  const once = lowered.length === text.length
  const source = once ? lowered : text
  let prev = ''
  WORD.lastIndex = 0
  for (let m = WORD.exec(source); m !== null; m = WORD.exec(source)) {
    let w = once ? m[0] : m[0].toLowerCase()
    if (w.length < 2) continue
    if (w.length > 24) {
      // Long runs (hashes, base64 junk) are evidence by their shape, not their letters.
      out.add(`${prefix}skip:${w[0]}:${Math.min(10, Math.floor(w.length / 10)) * 10}`)
      prev = ''
      continue
    }
    if (isDigit(w.charCodeAt(0)) && DIGITS.test(w)) w = `#${w.length}`
    out.add(prefix + w)
    // Word pairs carry phrases ("click here", "dear friend") that single words do not.
    if (pairs && prev) out.add(`${prefix}${prev} ${w}`)
    prev = w
  }
}

export function tokenize(msg: ParsedMessage): Tokens {
  const words = new Set<string>()
  const meta = new Set<string>()
  addWords(words, msg.subject.replace(PLACEHOLDER, ' '), 's:', true)
  if (msg.subject && msg.subject === msg.subject.toUpperCase() && /[A-Z]{4}/.test(msg.subject)) meta.add('s:ALLCAPS')

  const body = msg.text.slice(0, MAX_BODY_CHARS).replace(PLACEHOLDER, ' ')
  addWords(words, body, '', true)
  if (msg.htmlText && msg.htmlText !== msg.text) addWords(words, msg.htmlText.slice(0, MAX_BODY_CHARS).replace(PLACEHOLDER, ' '), '', true)

  if (msg.from) {
    const domain = domainOf(msg.from.address)
    if (domain && !/[<>]/.test(domain)) meta.add(`from:${domain}`)
    addWords(meta, msg.from.name.replace(PLACEHOLDER, ' '), 'fromname:')
  } else {
    meta.add('from:NONE')
  }
  const hosts = msg.urls.slice(0, 100).flatMap((url) => urlHost(url) ?? [])
  for (const host of hosts) {
    if (/^\d+\.\d+\.\d+\.\d+$/.test(host) || host.startsWith('[')) {
      meta.add('url:IP')
      continue
    }
    const labels = host.split('.')
    meta.add(`url:${labels.slice(-2).join('.')}`)
    if (labels.length > 2) meta.add(`url:${labels.slice(-3).join('.')}`)
  }
  meta.add(`html:${msg.html ? (msg.text && msg.text !== msg.html ? 'yes' : 'only') : 'no'}`)
  for (const a of msg.attachments.slice(0, 20)) {
    meta.add(`att:${a.mimeType}`)
    const ext = a.filename?.toLowerCase().match(/\.([a-z0-9]{1,8})$/)?.[1]
    if (ext) meta.add(`attext:${ext}`)
  }
  const ct = msg.headers.get('content-type')?.[0]?.split(';')[0].trim().toLowerCase()
  if (ct) meta.add(`ct:${ct}`)
  structure(meta, msg)
  sender(meta, msg, hosts)
  return { words, charText: charText(msg), meta }
}

/** Every token of a message, one set (for tests and explanations). */
export function allTokens(t: Tokens): Set<string> {
  return new Set([...t.words, ...charGrams(t.charText), ...t.meta])
}

function charText(msg: ParsedMessage): string {
  return `${msg.subject} ${msg.from?.name ?? ''} ${msg.text || msg.htmlText}`
    .slice(0, CHAR_GRAM_CHARS)
    .replace(PLACEHOLDER, ' ')
    .toLowerCase()
    .replace(/\s+/g, ' ')
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

// The big free mailbox providers: anyone can have an address there, so it says little of who sent it.
const FREEMAIL = new Set(['gmail.com', 'googlemail.com', 'yahoo.com', 'yahoo.co.uk', 'hotmail.com', 'outlook.com', 'live.com', 'msn.com', 'aol.com', 'icloud.com', 'me.com', 'mail.com', 'gmx.de', 'gmx.net', 'web.de', 'yandex.ru', 'mail.ru', 'qq.com', '163.com', 'proton.me', 'protonmail.com'])
const ROLE_LOCAL = /^(no-?reply|noreply|do-?not-?reply|info|news|newsletters?|support|service|hello|contact|team|notifications?|alerts?|billing|account)\b/

/**
 * Whether the sender's own names agree: the From domain against the envelope's Return-Path,
 * the DKIM signer, the Reply-To and the links. Mail from a real business is coherent
 * (its links and signature are its own or its mail provider's); a phish wears a name it
 * cannot sign for and links elsewhere. Unverified here: the signature's validity is moat-auth's.
 * `hosts` are the link hosts tokenize() already read.
 */
function sender(out: Set<string>, msg: ParsedMessage, hosts: string[]): void {
  const address = msg.from?.address ?? ''
  const domain = address.includes('@') ? domainOf(address) : ''
  const org = registeredDomain(domain)
  if (!org) return
  const labels = domain.split('.')
  out.add(`fromtld:${labels.at(-1)}`)
  // Second-level suffixes sold like TLDs (ru.com, sa.com, co.uk) say as much as a TLD.
  if (labels.length > 2) out.add(`fromsuffix:${labels.slice(-2).join('.')}`)
  if (FREEMAIL.has(org)) out.add('from:freemail')
  const local = address.slice(0, address.lastIndexOf('@'))
  out.add(`fromlocal:${/\d{2,}/.test(local) ? 'digits' : /^[a-z]+$/.test(local) ? 'alpha' : 'mixed'}`)
  if (ROLE_LOCAL.test(local)) out.add('fromlocal:role')
  const label = org.split('.')[0]
  const name = (msg.from?.name ?? '').toLowerCase().replace(/[^a-z0-9]/g, '')
  if (name && label.length >= 3) out.add(`fromname:${name.includes(label) || label.includes(name.slice(0, 6)) ? 'matches' : 'differs'}`)

  const sameOrg = (host: string | undefined | null) => !!host && registeredDomain(host) === org
  const returnPath = msg.headers.get('return-path')?.[0]?.replace(/[<>\s]/g, '')
  if (returnPath?.includes('@')) out.add(`rp:${sameOrg(domainOf(returnPath)) ? 'same' : 'other'}`)
  const signatures = msg.headers.get('dkim-signature') ?? []
  if (!signatures.length) out.add('dkim:none')
  for (const sig of signatures.slice(0, 5)) {
    const d = /\bd=([^;\s]+)/.exec(sig)?.[1]
    if (d) out.add(`dkim:${sameOrg(d) ? 'aligned' : 'other'}`)
  }
  const replyTo = msg.replyTo[0]
  if (replyTo) {
    const r = registeredDomain(domainOf(replyTo))
    out.add(`replyto:${r === org ? 'same' : r && FREEMAIL.has(r) ? 'freemail' : 'other'}`)
  }
  if (!msg.urls.length) return
  let own = 0
  let foreign = 0
  const others = new Set<string>()
  for (const host of hosts) {
    const linked = registeredDomain(host)
    if (linked === org) own++
    else {
      foreign++
      others.add(linked ?? host)
    }
  }
  out.add(`links:own:${bucket(own)}`)
  out.add(`links:otherorgs:${bucket(others.size)}`)
  out.add(`links:share:${own === 0 ? 'none' : own >= foreign ? 'most' : 'some'}`)
}
