/*
 * Phishing signals: mail that asks for credentials in the message itself, that wears a
 * brand's name without coming from the brand, and domains made to look like a brand's
 * (paypa1.com, micros0ft-support.net, secure-paypal-login.com) or written in punycode, and
 * subjects and display names written to slip past word filters (invisible characters inside
 * words, Cyrillic letters among Latin ones).
 * They run in the moat-sanity plugin with the other header and structure rules.
 */
import { registeredDomain } from '../../services/dnsbl'
import { domainOf, type ParsedMessage, urlHost } from '../message'
import type { Symbol } from '../symbols'

/** Brands phishing wears most, with the registered-domain labels that are really theirs. */
const BRANDS: { name: RegExp; key: string; own: string[] }[] = [
  { name: /\bpay\s?pal\b/i, key: 'paypal', own: ['paypal', 'paypal-communication', 'paypalobjects'] },
  { name: /\b(microsoft|office\s?365|outlook|onedrive|sharepoint)\b/i, key: 'microsoft', own: ['microsoft', 'outlook', 'office', 'office365', 'live', 'microsoftonline', 'sharepoint', 'onedrive', 'hotmail', 'msn'] },
  { name: /\b(apple|icloud|itunes)\b/i, key: 'apple', own: ['apple', 'icloud', 'itunes'] },
  { name: /\bamazon\b/i, key: 'amazon', own: ['amazon', 'amazonses', 'amazonaws'] },
  { name: /\bnetflix\b/i, key: 'netflix', own: ['netflix'] },
  { name: /\bdhl\b/i, key: 'dhl', own: ['dhl', 'dhl-news', 'deutschepost'] },
  { name: /\bfedex\b/i, key: 'fedex', own: ['fedex'] },
  { name: /\bUPS\b/, key: 'ups', own: ['ups'] },
  { name: /\bdocu\s?sign\b/i, key: 'docusign', own: ['docusign'] },
  { name: /\bwells\s?fargo\b/i, key: 'wellsfargo', own: ['wellsfargo', 'wf'] },
  { name: /\bchase\b/i, key: 'chase', own: ['chase', 'jpmorgan', 'jpmorganchase'] },
  { name: /\bbank\s+of\s+america\b/i, key: 'bankofamerica', own: ['bankofamerica', 'bofa'] },
  { name: /\bdropbox\b/i, key: 'dropbox', own: ['dropbox', 'dropboxmail'] },
  { name: /\b(coinbase)\b/i, key: 'coinbase', own: ['coinbase'] },
  { name: /\b(metamask)\b/i, key: 'metamask', own: ['metamask', 'consensys'] },
  { name: /\b(binance)\b/i, key: 'binance', own: ['binance'] },
  { name: /\badobe\b/i, key: 'adobe', own: ['adobe'] },
  { name: /\bgoogle\b|\bgmail\b/i, key: 'google', own: ['google', 'gmail', 'googlemail', 'googlegroups', 'youtube', 'withgoogle'] },
  { name: /\bstarbucks\b/i, key: 'starbucks', own: ['starbucks'] },
  { name: /\btemu\b/i, key: 'temu', own: ['temu'] },
  { name: /\bledger\b/i, key: 'ledger', own: ['ledger'] },
  { name: /\bdeutsche\s?bahn\b/i, key: 'bahn', own: ['bahn', 'deutschebahn'] },
  { name: /\bsam'?s club\b/i, key: 'samsclub', own: ['samsclub'] },
  { name: /\b(walmart|costco|ebay|aliexpress|alibaba|shein|zalando|booking\.com|airbnb)\b/i, key: 'shop', own: ['walmart', 'costco', 'ebay', 'aliexpress', 'alibaba', 'shein', 'zalando', 'booking', 'airbnb'] },
  { name: /\b(norton|mcafee|geek squad|avast)\b/i, key: 'antivirus', own: ['norton', 'mcafee', 'geeksquad', 'avast', 'nortonlifelock', 'gen'] },
  { name: /\b(usps|royal mail|post\s?nl|la poste|correos|hermes|dpd|gls)\b/i, key: 'post', own: ['usps', 'royalmail', 'postnl', 'laposte', 'correos', 'hermes', 'dpd', 'gls', 'myhermes'] },
  { name: /\b(facebook|instagram|whatsapp|meta)\b/i, key: 'facebook', own: ['facebook', 'facebookmail', 'instagram', 'whatsapp', 'meta', 'fb'] },
  { name: /\blinked\s?in\b/i, key: 'linkedin', own: ['linkedin'] },
  { name: /\b(spotify|disney\+?|hbo|hulu)\b/i, key: 'media', own: ['spotify', 'disney', 'disneyplus', 'hbo', 'hbomax', 'hulu'] },
  { name: /\b(at&t|verizon|t-mobile|xfinity|comcast|vodafone|telekom)\b/i, key: 'telecom', own: ['att', 'verizon', 't-mobile', 'tmobile', 'xfinity', 'comcast', 'vodafone', 'telekom'] },
  { name: /\b(irs|hmrc|finanzamt|tax refund)\b/i, key: 'tax', own: ['irs', 'hmrc', 'gov'] },
  { name: /\b(hsbc|barclays|santander|sparkasse|ing|commerzbank|american express|amex|visa|mastercard|citibank|capital one)\b/i, key: 'bank', own: ['hsbc', 'barclays', 'santander', 'sparkasse', 'ing', 'commerzbank', 'americanexpress', 'amex', 'aexp', 'visa', 'mastercard', 'citi', 'citibank', 'capitalone'] },
  { name: /\bwebmail\b|\bmailbox (admin|support|team)\b|\bemail (admin|support) team\b/i, key: 'webmail', own: [] },
]

/** Display names in "mathematical" letters or full of emoji dodge word filters and read as a brand. */
const OBFUSCATED_NAME = /[\u{1D400}-\u{1D7FF}]|(\p{Extended_Pictographic}.*){2}/u
/**
 * Characters that show nothing (or only a stroke) put inside a word, so "P\uFEFFayPal" or
 * "Pe\u0336nding" reads as the word but matches no filter: zero-width space and joiners' kin,
 * BOM, soft hyphen, the grapheme joiner, a combining overlay stroke, tag characters and the
 * supplementary variation selectors. (The zero-width joiner and VS16 are left out: emoji
 * sequences use them.)
 */
const HIDDEN_IN_WORD = /\p{L}[\u00AD\u034F\u0336\u200B\u2060-\u2064\uFEFF\u{E0000}-\u{E007F}\u{E0100}-\u{E01EF}]+\p{L}/u
/**
 * A display name padded with a run of spaces, or ending in a short "#tag": in a narrow list
 * view the padding pushes the real address out of sight, and the tag makes each copy of a
 * campaign unique to checksum filters.
 */
const PADDED_NAME = /\S[\s\u00A0\u2000-\u200A\u3000]{3,}\S|\s#[A-Za-z0-9]{2,6}$/
/** One word in two alphabets: a Cyrillic "е" or Greek "ο" among Latin letters ("Lеdgеr"). */
const MIXED_SCRIPT_WORD = /(?=\p{L}*\p{Script=Latin})(?=\p{L}*[\p{Script=Cyrillic}\p{Script=Greek}])\p{L}{3,}/u

/** Why a subject or display name is written to dodge filters, if it is. */
export function obfuscation(text: string): string | null {
  const t = text.slice(0, 1000)
  if (HIDDEN_IN_WORD.test(t)) return 'invisible characters inside a word'
  const mixed = MIXED_SCRIPT_WORD.exec(t)
  return mixed ? `a word in two alphabets: ${mixed[0].slice(0, 30)}` : null
}

const firstLabel = (domain: string) => domain.split('.')[0]

/** The brand's own names, its sub-brands (applecard.apple, paypal-community) and brand TLDs. */
function ownDomain(brand: { key: string; own: string[] }, domain: string): boolean {
  const label = firstLabel(domain)
  const tld = domain.split('.').at(-1)!
  return brand.own.some((o) => label === o || (o.length >= 4 && label.startsWith(o))) || brand.own.includes(tld)
}

/** Digits and letter pairs that stand in for letters in lookalike domains. */
function unconfuse(label: string): string {
  return label.replace(/rn/g, 'm').replace(/vv/g, 'w').replace(/0/g, 'o').replace(/1/g, 'l').replace(/3/g, 'e').replace(/5/g, 's').replace(/\$/g, 's')
}

function editDistanceAtMostOne(a: string, b: string): boolean {
  if (Math.abs(a.length - b.length) > 1) return false
  let i = 0
  let j = 0
  let edits = 0
  while (i < a.length && j < b.length) {
    if (a[i] === b[j]) {
      i++
      j++
      continue
    }
    if (++edits > 1) return false
    if (a.length > b.length) i++
    else if (b.length > a.length) j++
    else {
      i++
      j++
    }
  }
  return edits + (a.length - i) + (b.length - j) <= 1
}

/** The brand a registered domain imitates, if it does (and is not the brand's own). */
export function lookalikeOf(domain: string): string | null {
  const label = firstLabel(domain)
  const plain = unconfuse(label)
  for (const b of BRANDS) {
    if (!b.own.length || b.own.includes(label) || b.key.length < 4) continue
    if (plain !== label && (plain === b.key || b.own.includes(plain))) return b.key
    // One letter off only for longer names: for short ones it hits real words (apples, chasm).
    if (b.key.length >= 6 && editDistanceAtMostOne(label, b.key)) return b.key
    // The brand inside a longer name with words around it: paypal-secure, securepaypal-login.
    if (plain.includes(b.key) && /[-]|secure|login|verify|account|support|update|service/.test(plain)) return b.key
  }
  return null
}

export function phishingChecks(msg: ParsedMessage): Symbol[] {
  const out: Symbol[] = []
  const html = msg.html.slice(0, 500_000)
  if (/<form\b/i.test(html)) {
    if (/<input\b[^>]*type\s*=\s*["']?password/i.test(html)) out.push({ name: 'PHISH_PASSWORD_FORM', detail: 'a password field in the message' })
    else if (/<input\b/i.test(html)) out.push({ name: 'HTML_FORM', detail: 'a form to fill in the message' })
  }
  const fromDomain = msg.from ? registeredDomain(domainOf(msg.from.address)) : null
  if (msg.from && fromDomain) {
    const shown = msg.from.name
    const brand = BRANDS.find((b) => b.name.test(shown))
    if (brand && !ownDomain(brand, fromDomain)) out.push({ name: 'PHISH_BRAND_DISPLAY_NAME', detail: `"${shown.slice(0, 60)}" from ${fromDomain}` })
    if (OBFUSCATED_NAME.test(shown) || OBFUSCATED_NAME.test(msg.from.address) || PADDED_NAME.test(shown) || obfuscation(shown)) out.push({ name: 'FROM_NAME_OBFUSCATED', detail: shown.slice(0, 60) })
    const like = lookalikeOf(fromDomain)
    if (like) out.push({ name: 'PHISH_LOOKALIKE_FROM', detail: `${fromDomain} imitates ${like}` })
  }
  const subjectTrick = obfuscation(msg.subject)
  if (subjectTrick) out.push({ name: 'SUBJECT_OBFUSCATED', detail: subjectTrick })
  const hosts = new Set(msg.urls.slice(0, 200).map(urlHost).filter((h): h is string => !!h))
  const punycode = [...hosts].some((h) => /(^|\.)xn--/.test(h))
  // Many links share a registered domain; each is compared with the brands once.
  const seen = new Set<string>()
  for (const h of hosts) {
    const reg = registeredDomain(h)
    if (!reg || seen.has(reg)) continue
    seen.add(reg)
    const like = lookalikeOf(reg)
    if (like) {
      out.push({ name: 'PHISH_LOOKALIKE_URL', detail: `${reg} imitates ${like}` })
      break
    }
  }
  if (punycode || (fromDomain && /(^|\.)xn--/.test(fromDomain))) out.push({ name: 'PHISH_PUNYCODE_DOMAIN' })
  return out
}
