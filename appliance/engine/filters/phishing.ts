/*
 * Phishing signals: mail that asks for credentials in the message itself, that wears a
 * brand's name without coming from the brand, and domains made to look like a brand's
 * (paypa1.com, micros0ft-support.net, secure-paypal-login.com) or written in punycode, and
 * subjects and display names written to slip past word filters (invisible characters inside
 * words, Cyrillic letters among Latin ones). What a phish must say: an account threatened
 * (PHISH_ACCOUNT_THREAT; PHISH_BRAND_ACCOUNT when a brand says it and the sender is not the
 * brand), a request for a wallet's recovery phrase (PHISH_SEED_PHRASE), crypto bait
 * (PHISH_CRYPTO_LURE), a reader greeted by e-mail address (PHISH_ADDRESS_GREETING), and
 * filler text hidden out of sight (HTML_HIDDEN_TEXT), extortion for bitcoin (PHISH_EXTORTION),
 * gambling bait (SPAM_GAMBLING), and a fake charge with a toll-free number to "cancel" it
 * (PHISH_CALLBACK), or a brand's bill from a stranger with a number to call (PHISH_BRAND_CALLBACK),
 * sex-dating bait (SPAM_ADULT_DATING). Brand names are read as a reader sees
 * them (asRead): look-alike letters, spaced-out letters and invisible characters undone.
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
  { name: /\b(trust\s?wal+et|kraken|exodus|uniswap|opensea|trezor|kucoin|bybit|bitmart|crypto\.com|blockchain\.com)\b/i, key: 'wallet', own: ['trustwallet', 'kraken', 'exodus', 'uniswap', 'opensea', 'trezor', 'kucoin', 'bybit', 'bitmart', 'crypto', 'blockchain'] },
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
  { name: /\b(at&t|verizon|t-?mobile|xfinity|comcast|vodafone|telekom)\b/i, key: 'telecom', own: ['att', 'verizon', 't-mobile', 'tmobile', 'xfinity', 'comcast', 'vodafone', 'telekom'] },
  { name: /\b(irs|hmrc|finanzamt|tax refund)\b/i, key: 'tax', own: ['irs', 'hmrc', 'gov'] },
  { name: /\b(hsbc|barclays|santander|sparkasse|ing|commerzbank|american express|amex|visa|mastercard|citibank|capital one)\b/i, key: 'bank', own: ['hsbc', 'barclays', 'santander', 'sparkasse', 'ing', 'commerzbank', 'americanexpress', 'amex', 'aexp', 'visa', 'mastercard', 'citi', 'citibank', 'capitalone'] },
  // Brands phishing-kit rankings name most after the ones above: shops, carriers, banks and
  // health insurers in the Americas and Europe, payment apps, file sharing.
  { name: /\b(home\s?depot|lowe'?s|best\s?buy|kohl'?s|walgreens|harbor\s?freight|tractor\s?supply|omaha\s?steaks|yeti|etsy|wayfair|chewy|shopify|mercado\s?(livre|libre|pago)|magalu)\b/i, key: 'retail', own: ['homedepot', 'lowes', 'bestbuy', 'kohls', 'walgreens', 'harborfreight', 'tractorsupply', 'omahasteaks', 'yeti', 'etsy', 'wayfair', 'chewy', 'shopify', 'mercadolivre', 'mercadolibre', 'mercadopago', 'magalu', 'magazineluiza'] },
  { name: /\b(evri|canada\s?post|australia\s?post|poste\s?italiane|postnord|swiss\s?post|chronopost|colissimo|inpost|yodel|purolator|correios|aramex)\b/i, key: 'carrier', own: ['evri', 'canadapost', 'postescanada', 'auspost', 'poste', 'posteitaliane', 'postnord', 'swisspost', 'chronopost', 'colissimo', 'laposte', 'inpost', 'yodel', 'purolator', 'correios', 'aramex'] },
  { name: /\b(bradesco|ita[uú]|caixa|banco\s?do\s?brasil|nubank|santander|rabobank|abn\s?amro|bbva|unicredit|intesa|natwest|lloyds|halifax|monzo|revolut|zelle|venmo|cash\s?app|interac)\b/i, key: 'bank2', own: ['bradesco', 'itau', 'caixa', 'bb', 'bancodobrasil', 'nubank', 'santander', 'rabobank', 'abnamro', 'bbva', 'unicredit', 'intesasanpaolo', 'natwest', 'lloydsbank', 'lloyds', 'halifax', 'monzo', 'revolut', 'zellepay', 'zelle', 'venmo', 'cash', 'squareup', 'interac'] },
  { name: /\b(unitedhealthcare|aetna|cigna|humana|blue\s?cross|medicare|aarp|state\s?farm|geico|allstate)\b/i, key: 'insurer', own: ['uhc', 'unitedhealthcare', 'myuhc', 'aetna', 'cigna', 'humana', 'bcbs', 'bluecross', 'anthem', 'medicare', 'aarp', 'statefarm', 'geico', 'allstate'] },
  { name: /\b(receita\s?federal|gov\.br|dvla|belastingdienst|digid|impots|agenzia\s?delle\s?entrate|social\s?security\s?administration)\b/i, key: 'government', own: ['gov', 'gouv', 'receita', 'fazenda', 'dvla', 'belastingdienst', 'digid', 'impots', 'agenziaentrate', 'ssa'] },
  { name: /\b(wetransfer|sharefile|docusign|box\.com|godaddy|namecheap|cpanel|marriott|hilton|airbnb|uber|doordash|steam|roblox|tiktok|telegram|samsung)\b/i, key: 'service', own: ['wetransfer', 'sharefile', 'citrix', 'docusign', 'box', 'godaddy', 'namecheap', 'cpanel', 'marriott', 'hilton', 'airbnb', 'uber', 'doordash', 'steampowered', 'steamcommunity', 'roblox', 'tiktok', 'telegram', 'samsung'] },
  // Exchanges, wallets, brokers and private mail services: the names crypto and account
  // phishing wears now that the big wallets above are watched for.
  { name: /\b(ripple|xrp|lido|electrum|gemini|robinhood|schwab|aave|bitget|bisq|tether|cointracker|bittrex|ethereum|solana|etoro|proton\s?mail|proton\.me)\b/i, key: 'finance', own: ['ripple', 'xrpl', 'lido', 'electrum', 'gemini', 'google', 'robinhood', 'schwab', 'aave', 'bitget', 'bisq', 'tether', 'cointracker', 'bittrex', 'ethereum', 'solana', 'etoro', 'proton', 'protonmail'] },
  // Giveaways and "investment platforms" in a famous founder's name.
  { name: /\b(tesla|space\s?x|elon\s?musk)\b/i, key: 'musk', own: ['tesla', 'teslamotors', 'spacex'] },
  { name: /\bwebmail\b|\bmailbox (admin|support|team)\b|\bemail (admin|support) team\b/i, key: 'webmail', own: [] },
]

/**
 * What a phish must make the reader fear or want, said about an account: it is locked,
 * suspended, signed into from elsewhere, must be verified or paid, or a parcel waits.
 */
const ACCOUNT_THREAT =
  /\b(verify|confirm|validate|re-?activate|unlock|restore|update)\s+(your|the)\s+(account|identity|mailbox|wallet|password|payment|billing|details|information|email)\b|\b(account|mailbox|wallet|access|card|profile)\s+(has been|was|will be|is|are)\s+(temporarily\s+)?(suspended|locked|limited|restricted|disabled|deactivated|closed|blocked|compromised|on hold)\b|\bunusual\s+(sign[- ]?in|log[- ]?in|login|activity)\b|\b(mailbox|storage)\s+(is\s+)?(full|almost full|quota)\b|\bpassword\s+(is\s+|will\s+)?(expir|about to expire)|\b(payment|delivery)\s+(failed|declined|attempt failed|on hold)\b|\bfailed\s+(delivery|payment)\b|\bpending\s+(package|parcel|delivery|shipment)\b/i
/** Nobody real ever asks for these: they are the keys to a wallet. */
const SEED_PHRASE = /\b(seed|recovery|secret|backup|mnemonic)\s+(phrase|words)\b|\b(12|twelve|24|twenty[- ]four)[- ]word\s+(phrase|seed|recovery)\b/i

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
/**
 * One word in two alphabets: a Cyrillic "е" or Greek "ο" among Latin letters ("Lеdgеr"), or
 * letters of the other scripts whose letters pass for Latin ones (Armenian "օ", Cherokee "Ꮯ",
 * Tai Le "ᥣ", Lisu "ꓑ", Coptic, Canadian syllabics). Scripts that are written beside Latin in
 * one word for real (Japanese "iPhone用", Chinese) are not among them.
 */
const MIXED_SCRIPT_WORD =
  /(?=\p{L}*\p{Script=Latin})(?=\p{L}*[\p{Script=Cyrillic}\p{Script=Greek}\p{Script=Armenian}\p{Script=Cherokee}\p{Script=Tai_Le}\p{Script=Lisu}\p{Script=Coptic}\p{Script=Canadian_Aboriginal}])\p{L}{3,}/u
/**
 * Marks stacked on letter after letter ("Aܿcܿcܿoܿuܿnܿt"): composed (NFC) text keeps no
 * combining mark on a Latin letter unless it was put there to break the word; three count.
 */
const MARKS_BETWEEN_LETTERS = /(\p{Script=Latin}((?![\uFE00-\uFE0F])\p{M})+){3,}/u
/**
 * English words of the phishing vocabulary with accents sprinkled on ("Ýour wállet
 * re-válidation", "Bitčoin"): they read as the word and match no filter. Only words that no
 * language writes with those accents; two in one text count.
 */
const ENGLISH_BAIT = new Set(['your', 'you', 'have', 'been', 'sent', 'account', 'wallet', 'funds', 'bitcoin', 'usd', 'payment', 'password', 'verify', 'validation', 'update', 'claim', 'reward', 'winner', 'urgent', 'click', 'now', 'money', 'order', 'delivery', 'package', 'suspended', 'locked', 'login'])
const ACCENTED_WORD = /\p{L}*[\u00C0-\u024F]\p{L}*/gu

function accentedBait(t: string): string | null {
  const hits: string[] = []
  for (const m of t.matchAll(ACCENTED_WORD)) {
    const plain = m[0].normalize('NFD').replace(/\p{M}/gu, '').toLowerCase()
    if (plain !== m[0].toLowerCase() && ENGLISH_BAIT.has(plain)) hits.push(m[0])
  }
  return hits.length >= 2 ? `accents sprinkled on English words: ${hits.slice(0, 3).join(' ')}` : null
}

/** Why a subject or display name is written to dodge filters, if it is. */
export function obfuscation(text: string): string | null {
  const t = text.slice(0, 1000)
  if (HIDDEN_IN_WORD.test(t)) return 'invisible characters inside a word'
  const composed = t.normalize('NFC')
  if (MARKS_BETWEEN_LETTERS.test(composed)) return 'marks stacked on the letters of a word'
  const mixed = MIXED_SCRIPT_WORD.exec(t)
  if (mixed) return `a word in two alphabets: ${mixed[0].slice(0, 30)}`
  return accentedBait(composed)
}

// Cyrillic and Greek letters that look Latin, as phishing puts them into brand names.
const HOMOGLYPHS: Record<string, string> = {
  а: 'a', в: 'b', е: 'e', к: 'k', м: 'm', н: 'h', о: 'o', р: 'p', с: 'c', т: 't', у: 'y', х: 'x', і: 'i', ј: 'j', ԁ: 'd', ѕ: 's', ԛ: 'q', ԝ: 'w', ӏ: 'l',
  А: 'A', В: 'B', Е: 'E', К: 'K', М: 'M', Н: 'H', О: 'O', Р: 'P', С: 'C', Т: 'T', Х: 'X', І: 'I', Ј: 'J', Ѕ: 'S',
  α: 'a', ο: 'o', ρ: 'p', ν: 'v', ι: 'i', κ: 'k', τ: 't', υ: 'u', χ: 'x', Α: 'A', Β: 'B', Ε: 'E', Η: 'H', Ι: 'I', Κ: 'K', Μ: 'M', Ν: 'N', Ο: 'O', Ρ: 'P', Τ: 'T', Χ: 'X', Υ: 'Y', Ζ: 'Z',
}
const HOMOGLYPH_RE = new RegExp(`[${Object.keys(HOMOGLYPHS).join('')}]`, 'g')
const INVISIBLE = /[\u00AD\u034F\u0336\u200B-\u200F\u2060-\u2064\uFEFF\u{E0000}-\u{E007F}\u{E0100}-\u{E01EF}\uFE00-\uFE0F]/gu
/** "C o i n b a s e": four or more single letters, one space apart. */
const SPACED_LETTERS = /(?<![\p{L}])(\p{L} ){3,}\p{L}(?![\p{L}])/gu
const HAS_SPACED_LETTERS = new RegExp(SPACED_LETTERS.source, 'u')
/** A capital I between small letters stands in for an l: "WaIIet", "HeaIth". */
const CAPITAL_I_FOR_L = /(\p{Ll})(I+)(?=\p{Ll})/gu

/**
 * What a reader sees in a name written to dodge filters: compatibility forms (mathematical
 * letters) folded, invisible characters dropped, look-alike Cyrillic and Greek letters read
 * as Latin, spaced-out letters joined, and a capital I among small letters read as l.
 */
export function asRead(text: string): string {
  return text
    .slice(0, 500)
    .normalize('NFKC')
    .replace(INVISIBLE, '')
    .replace(HOMOGLYPH_RE, (c) => HOMOGLYPHS[c])
    .replace(SPACED_LETTERS, (m) => m.replace(/ /g, ''))
    .replace(CAPITAL_I_FOR_L, (_m, before: string, i: string) => before + 'l'.repeat(i.length))
}

/** How a display name was disguised, if it was: letters spaced out or an I posing as an l. */
function disguise(name: string): string | null {
  if (HAS_SPACED_LETTERS.test(name.normalize('NFKC'))) return 'letters spaced out'
  if (/\p{Ll}I+\p{Ll}/u.test(name)) return 'a capital I among small letters'
  return null
}

/** A greeting or subject that names the reader by e-mail address: the sender knows only that. */
const ADDRESS_GREETING = /^[ \t]*(dear|hi|hello|hey|attention|greetings|good (morning|afternoon|day)|bonjour|hallo|hola|ol[aá]|prezad[oa]\(?a?\)?|caro|cara|beste|sehr geehrte[rs]?)\b[ \t,:]*[\w.+-]+@[\w-]+(\.[\w-]+)*/im
const SUBJECT_ADDRESS = /^\s*[\w.+-]+@[\w-]+(\.[\w-]+)*\s*[,:]/

/** Crypto bait: a free token drop to claim, a wallet to connect or unblock, funds to withdraw now. */
const CRYPTO_LURE =
  /\b((token|coin)'?s?\s+(allocation|presale|pre-sale|launch)|staking\s+rewards?|earn\s+\S+(\s+\S+)?\s+by\s+staking|ready\s+for\s+claiming|eligible\s+for\s+\S+\s+(tokens?|rewards?)|(dividends?|payout)\s+awaits|airdrop|claim\s+(your\s+)?(free\s+)?([A-Z$]{2,6}\s+)?(tokens?|rewards?|nfts?|coins?|allocation)|withdraw\s+(your\s+)?(funds|balance|assets|\+?\$?\d[\d,.]*)|wallets?\s+(has|have|is|are|was|were|will\s+be)\s+(been\s+)?(blocked|suspended|locked|restricted|disabled|frozen|compromised)|(connect|validate|synchroni[sz]e|verify)\s+(your\s+)?wallet)\b/i

/** Extortion: the sender claims to have hacked the reader and wants bitcoin to keep quiet. */
const EXTORTION_CLAIM = /\b(hacked|infected|malware|trojan|spyware|access to (your|all your) (device|computer|accounts?)|recorded (you|a video)|webcam|video (of|with) you|intimate|adult (sites?|content))\b/i
const EXTORTION_DEMAND = /\b(bitcoin|btc|crypto\s?currency|wallet address)\b/i
/** Sex-dating bait: a stranger looking for a lover. Words no list or business mail uses. */
const ADULT_DATING = /\b(looking for (a )?(lover|sex|naughty|one[- ]night)|sex dating|ondeugende (man|vrouw)|wants to (suck|fuck)|horny (girls?|women|wives|milfs?)|milfs?\b|casual sex|sex tonight)\b/i
/** Gambling bait: casino bonuses that need no deposit, free spins. */
const GAMBLING = /\b(no[- ]deposit (required|bonus)|free spins|casino bonus|welcome bonus up to|deposit bonus|bonus up to \$?[\d,]+)\b/i
/**
 * Callback phishing: a fake order or renewal with a toll-free number to "cancel" it, where
 * a person talks the victim into a refund scam or remote access.
 */
const TOLL_FREE = /(\+?1[\s.-]*)?\(?8(00|33|44|55|66|77|88)\)?[\s.-]*\d{3}[\s.-]*\d{4}/
/**
 * The other callback phish: a brand's invoice, receipt or renewal sent by someone else, with a
 * number to call "about this order". A brand's own bill comes from the brand's domain.
 */
const CALL_US = /\b(call|contact|reach|dial|phone|helpline|hotline|support|tel)\b[^\n]{0,50}?(\+?1[\s.-]*)?\(?[2-9]\d\d\)?[\s.-]*\d{3}[\s.-]*\d{4}\b/i
const BILLING_STORY = /\b(renew(al|ed)|invoice|receipt|order confirmation|order #|subscription|billing|charged|payment (of|for))\b/i
/** A brand named as a way to pay ("Apple Pay", "pay with PayPal") is not the one billing. */
const PAYMENT_METHOD = /\b(apple|google|amazon|samsung)\s?pay\b|\b(pay|paid|checkout|check out|accepts?|accepted)\s+(with|via|using|by|through)\s+(\S+\s)?\S+/gi
const BILLED_BRANDS = /\b(norton|mcafee|geek\s?squad|avast|lifelock|pay\s?pal|coinbase|best\s?buy|amazon|apple|microsoft|windows defender)\b/i
const CALLBACK_STORY = /\b(not authori[sz]ed|unauthori[sz]ed|did(n'?t| not) (make|authori[sz]e|place|recogni[sz]e)|(has|have) been (charged|debited|deducted|auto-?renewed)|(was|were) (charged|debited|deducted|auto-?renewed))\b/i

/**
 * Text put out of sight with absurd offsets (margin-top: 470500px, height: 10000vh): filler for
 * the classifier that the reader never sees. Newsletters hide a preheader with display:none
 * or a zero size, which this does not count.
 */
const HIDDEN_BY_OFFSET = /(margin(-top|-left)?|top|left|text-indent)\s*:\s*-?\d{5,}(\.\d+)?px|height\s*:\s*\d{4,}(vh|%)/i

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
  const stranger = (brand: { key: string; own: string[] }) => !fromDomain || !ownDomain(brand, fromDomain)
  if (msg.from && fromDomain) {
    const shown = msg.from.name
    const readName = asRead(shown)
    const brand = BRANDS.find((b) => b.name.test(readName))
    if (brand && stranger(brand)) out.push({ name: 'PHISH_BRAND_DISPLAY_NAME', detail: `"${shown.slice(0, 60)}" from ${fromDomain}` })
    if (OBFUSCATED_NAME.test(shown) || OBFUSCATED_NAME.test(msg.from.address) || PADDED_NAME.test(shown) || obfuscation(shown) || disguise(shown)) out.push({ name: 'FROM_NAME_OBFUSCATED', detail: shown.slice(0, 60) })
    const like = lookalikeOf(fromDomain)
    if (like) out.push({ name: 'PHISH_LOOKALIKE_FROM', detail: `${fromDomain} imitates ${like}` })
  }
  // The threat is in the subject or the first screen of text, where the reader sees it.
  const body = msg.text || msg.htmlText
  const readSubject = asRead(msg.subject)
  const opening = `${readSubject}\n${body.slice(0, 3000)}`
  const threat = ACCOUNT_THREAT.exec(opening)
  if (threat) {
    // A brand that speaks with no From at all is a stranger too.
    const speaker = `${readSubject} ${asRead(msg.from?.name ?? '')}`
    const brand = BRANDS.find((b) => b.name.test(speaker))
    if (brand && stranger(brand)) out.push({ name: 'PHISH_BRAND_ACCOUNT', detail: `${brand.key}: "${threat[0]}" from ${fromDomain ?? 'no sender'}` })
    else out.push({ name: 'PHISH_ACCOUNT_THREAT', detail: threat[0] })
  }
  const seed = SEED_PHRASE.exec(`${msg.subject}\n${body.slice(0, 20_000)}`)
  if (seed) out.push({ name: 'PHISH_SEED_PHRASE', detail: seed[0] })
  const lure = CRYPTO_LURE.exec(opening)
  if (lure) out.push({ name: 'PHISH_CRYPTO_LURE', detail: lure[0] })
  const greeting = ADDRESS_GREETING.exec(body.slice(0, 2000)) ?? SUBJECT_ADDRESS.exec(msg.subject)
  if (greeting) out.push({ name: 'PHISH_ADDRESS_GREETING', detail: greeting[0].trim().slice(0, 60) })
  if (HIDDEN_BY_OFFSET.test(msg.html.slice(0, 200_000))) out.push({ name: 'HTML_HIDDEN_TEXT', detail: 'text moved out of sight' })
  const story = `${msg.subject}\n${body.slice(0, 5000)}`
  const claim = EXTORTION_CLAIM.exec(story)
  if (claim && EXTORTION_DEMAND.test(story)) out.push({ name: 'PHISH_EXTORTION', detail: claim[0] })
  const gambling = GAMBLING.exec(story)
  if (gambling) out.push({ name: 'SPAM_GAMBLING', detail: gambling[0] })
  const phone = TOLL_FREE.exec(story)
  const callback = phone && CALLBACK_STORY.exec(story)
  if (phone && callback) out.push({ name: 'PHISH_CALLBACK', detail: `${callback[0]}, call ${phone[0].replace(/\s+/g, ' ').trim()}` })
  else {
    const billed = BILLING_STORY.test(story) && BILLED_BRANDS.exec(story.replace(PAYMENT_METHOD, ' '))
    const brand = billed && BRANDS.find((b) => b.name.test(billed[0]))
    const call = brand && stranger(brand) && CALL_US.exec(story)
    if (call) out.push({ name: 'PHISH_BRAND_CALLBACK', detail: `${billed[0]} billing from ${fromDomain ?? 'no sender'}: ${call[0].replace(/\s+/g, ' ').trim().slice(0, 60)}` })
  }
  const adult = ADULT_DATING.exec(`${msg.subject}\n${msg.from?.name ?? ''}\n${body.slice(0, 3000)}`)
  if (adult) out.push({ name: 'SPAM_ADULT_DATING', detail: adult[0] })
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
