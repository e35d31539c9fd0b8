/*
 * Where phishing must send its victim, and how it must hide that: link hosts and attachments
 * that a phish needs and a business rarely uses. Each is evidence for the weights table,
 * never a verdict on its own (real mail uses shorteners and cloud hosting too).
 *
 * - URL_SHORTENER: a link through a public URL shortener (hides the target from the reader
 *   and from domain blocklists). Not counted when the shortener is the sender's own (t.co
 *   in mail from Twitter/X).
 * - URL_THROWAWAY_HOSTING: a link to a site anyone can publish in a minute for free, under
 *   the platform's good name: Firebase (web.app, firebaseapp.com), Cloudflare Pages and
 *   Workers, Netlify, Vercel, GitHub Pages, Glitch, Heroku, Cloud Run, App Engine, Azure and
 *   S3/GCS/R2 storage buckets, site builders, online forms (Google Forms, forms.office.com),
 *   tunnels (ngrok, trycloudflare). Not counted when the sender's own domain is the platform.
 * - URL_IPFS: a link through an IPFS gateway (content-addressed, cannot be taken down).
 * - URL_BAD_HOST: a link whose host is written to be unreadable (percent-encoded, stray symbols).
 * - FROM_DOMAIN_INVALID: the From address's domain cannot exist (no TLD, numeric TLD, stray bytes).
 * - FROM_RANDOM_DOMAIN: the From address's registered domain is machine-made, letters and
 *   digits shuffled ("0jvr33k27i0jvstcj55s.com"): registered by the thousand for one campaign
 *   each; a business picks a name people can say.
 * - FROM_THROWAWAY_TENANT: sent from a *.onmicrosoft.com address, the name every Microsoft 365
 *   trial tenant gets; a business sends from its own domain.
 * - FROM_NAME_HAS_ADDRESS: the display name shows an e-mail address of another domain than
 *   the real sender's ("service@paypal.com" <x@evil.test>).
 * - PHISH_HTML_ATTACHMENT: an attached HTML or SVG page (opened locally, it escapes link
 *   scanners); PHISH_HTML_ATTACHMENT_FORM: one with a form, a password field or a script
 *   that sends the reader elsewhere.
 * - PHISH_ATTACHMENT_DISGUISED: an attachment whose name says one kind of file and whose
 *   declared type another (a picture named "invoice.pdf", a PDF named "invite.ics"): mail
 *   programs show the name, scanners trust the type. Generic types (octet-stream) say nothing.
 *
 * Trusts nothing: hosts and attachments are hostile input; every scan is bounded.
 */
import { registeredDomain } from '../../services/dnsbl'
import { domainOf, type ParsedMessage, urlHost } from '../message'
import type { Symbol } from '../symbols'

/** Public URL shorteners (registered domains). */
const SHORTENERS = new Set([
  'bit.ly', 'bitly.com', 'tinyurl.com', 'tinyurl.ph', 't.co', 'goo.gl', 'ow.ly', 'is.gd', 'v.gd', 'buff.ly', 'cutt.ly', 'rebrand.ly', 'shorturl.at', 'rb.gy',
  'tiny.cc', 'urlz.fr', 'urly.fi', 't.ly', 's.id', 'qrco.de', 'shorturl.asia', 'lnkd.in', 'bl.ink', 'short.io', 'shorte.st', 'adf.ly', 'bit.do', 'clck.ru',
  'u.to', 'x.gd', 'tiny.one', 'rotf.lol', 'snip.ly', 'linktr.ee', 'tr.ee', 'lnk.to', 'han.gl', 'me-qr.com', 'qr.io', 'surl.li', 'gg.gg', 'did.li', 'l.ead.me',
])

/**
 * Free publishing platforms, as host suffixes: a phish lives at a subdomain (or a path) of
 * the platform's name, so the platform's reputation carries it.
 */
const THROWAWAY_SUFFIXES = [
  'firebaseapp.com', 'web.app', 'pages.dev', 'workers.dev', 'netlify.app', 'netlify.com', 'vercel.app', 'github.io', 'gitlab.io', 'glitch.me', 'herokuapp.com',
  'run.app', 'appspot.com', 'azurewebsites.net', 'blob.core.windows.net', 'web.core.windows.net', 'storage.googleapis.com',
  'firebasestorage.googleapis.com', 's3.amazonaws.com', 'r2.dev', 'onrender.com', 'repl.co', 'replit.app', 'replit.dev', 'fly.dev', 'surge.sh',
  '000webhostapp.com', 'weebly.com', 'wixsite.com', 'godaddysites.com', 'square.site', 'webflow.io', 'framer.app', 'framer.website', 'notion.site',
  'canva.site', 'my.canva.site', 'ngrok.io', 'ngrok-free.app', 'ngrok.app', 'trycloudflare.com', 'mystrikingly.com', 'jimdosite.com', 'jimdofree.com',
  'blogspot.com', 'sites.google.com', 'forms.gle', 'forms.office.com', 'sway.office.com', 'typeform.com', 'jotform.com', 'formstack.com', 'wufoo.com',
  'zohopublic.com', 'carrd.co', 'tilda.ws', 'yolasite.com', 'site123.me', 'webnode.page', 'ucraft.site', 'strikingly.com', 'start.page', 'linkpage.me',
  'backblazeb2.com', 'digitaloceanspaces.com', 'deno.dev', 'bubbleapps.io', 'softr.app', 'glide.page', 'adobe.ly',
]
/** Paths on big shared hosts that serve anyone's page or form. */
const THROWAWAY_PATHS: [string, RegExp][] = [
  ['docs.google.com', /^\/(forms|presentation\/d\/e|document\/d\/e|drawings\/d)\//],
  ['drive.google.com', /^\/(file|uc)\b/],
]

const IPFS = /(^|\.)(ipfs\.io|dweb\.link|cloudflare-ipfs\.com|w3s\.link|nftstorage\.link|ipfs\.[a-z0-9-]+\.[a-z]+|gateway\.pinata\.cloud|fleek\.co|4everland\.io|infura-ipfs\.io|ipfs\.fleek\.co)$/
const IPFS_PATH = /\/ip[fn]s\/(Qm[1-9A-HJ-NP-Za-km-z]{44}|baf[a-z2-7]{50,})/

/** A host name: labels of letters (IDNs as letters or punycode), digits, hyphens; a letter TLD. */
const HOST_NAME = /^(?=.{1,253}$)([\p{L}\p{N}_](?:[\p{L}\p{N}_-]{0,61}[\p{L}\p{N}])?\.)+(\p{L}{2,63}|xn--[a-z0-9-]{2,59})$/u
/** Characters no host name has (percent-encoding, stray symbols) once trailing punctuation is gone. */
const NOT_HOST_CHARS = /[^\p{L}\p{N}._-]/u
const IP_HOST = /^(\d{1,3}(\.\d{1,3}){3}|\[[0-9a-f:.]+\])$/i

/**
 * Ten or more letters and digits with three digits or more, letters between digits: no brand
 * or word ("2020tourism", "365datascience" have one run of digits and pass).
 */
const MACHINE_MADE_LABEL = /^(?=(?:[a-z]*\d){3})(?=.*\d[a-z]+\d)[a-z0-9]{10,}$/
const endsWithSuffix = (host: string, suffix: string) => host === suffix || host.endsWith(`.${suffix}`)

function pathOf(url: string): string {
  const m = /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*(\/[^?#]*)?/i.exec(url)
  return m?.[1] ?? '/'
}

const HTML_TYPES = /^(text\/html|application\/xhtml\+xml|image\/svg\+xml)$/
const HTML_NAMES = /\.(s?html?|xhtml|svg|mht(ml)?)$/i
const ACTIVE_HTML = /<form\b|<input\b[^>]*type\s*=\s*["']?password|window\.location|location\.(href|replace)|document\.write\s*\(\s*(unescape|atob)|<meta[^>]+http-equiv\s*=\s*["']?refresh|\batob\s*\(/i

export function phishingLinkChecks(msg: ParsedMessage): Symbol[] {
  const out: Symbol[] = []
  const fromDomain = msg.from ? domainOf(msg.from.address) : ''
  const fromOrg = fromDomain ? registeredDomain(fromDomain) : null
  if (msg.from && fromDomain && !IP_HOST.test(fromDomain) && !HOST_NAME.test(fromDomain)) out.push({ name: 'FROM_DOMAIN_INVALID', detail: fromDomain.slice(0, 80) })
  const fromLabel = fromOrg?.split('.')[0] ?? ''
  if (MACHINE_MADE_LABEL.test(fromLabel)) out.push({ name: 'FROM_RANDOM_DOMAIN', detail: fromOrg! })
  if (fromDomain.endsWith('.onmicrosoft.com')) out.push({ name: 'FROM_THROWAWAY_TENANT', detail: fromDomain })
  const shownAddress = /[\w.+-]+@([\w-]+(?:\.[\w-]+)+)/.exec(msg.from?.name ?? '')
  if (shownAddress && fromOrg && registeredDomain(shownAddress[1].toLowerCase()) !== fromOrg) out.push({ name: 'FROM_NAME_HAS_ADDRESS', detail: `shows ${shownAddress[0].slice(0, 60)}` })

  let shortener: string | null = null
  let throwaway: string | null = null
  let ipfs: string | null = null
  let bad: string | null = null
  for (const url of msg.urls.slice(0, 200)) {
    const host = urlHost(url)
    if (!host) continue
    // Text URLs end where the parser guessed: a trailing comma or soft line break is not the host's.
    const trimmed = host.replace(/[,.;:!\\=]+$/, '')
    if (!IP_HOST.test(trimmed) && trimmed.includes('.') && NOT_HOST_CHARS.test(trimmed)) {
      bad ??= host
      continue
    }
    const org = registeredDomain(host)
    if (org && org === fromOrg) continue
    if (!shortener && org && SHORTENERS.has(org)) shortener = host
    if (!throwaway && (THROWAWAY_SUFFIXES.some((s) => endsWithSuffix(host, s)) || THROWAWAY_PATHS.some(([h, p]) => host === h && p.test(pathOf(url))))) throwaway = host
    if (!ipfs && (IPFS.test(host) || IPFS_PATH.test(url))) ipfs = host
  }
  // A link as a picture: no text or URL filter upstream could read it, which is the point.
  const qrLink = msg.qrCodes.map((q) => /^\s*https?:\/\/\S+/i.exec(q)?.[0]).find(Boolean)
  if (qrLink) out.push({ name: 'QR_CODE_URL', detail: (urlHost(qrLink) ?? qrLink).slice(0, 80) })
  if (shortener) out.push({ name: 'URL_SHORTENER', detail: shortener })
  if (throwaway) out.push({ name: 'URL_THROWAWAY_HOSTING', detail: throwaway })
  if (ipfs) out.push({ name: 'URL_IPFS', detail: ipfs })
  if (bad) out.push({ name: 'URL_BAD_HOST', detail: bad.slice(0, 80) })

  for (const a of msg.attachments.slice(0, 20)) {
    if (!HTML_TYPES.test(a.mimeType) && !HTML_NAMES.test(a.filename ?? '')) continue
    // Inline HTML bodies that postal-mime lists as attachments have no file name.
    if (!a.filename && a.mimeType === 'text/html') continue
    const text = Buffer.from(a.content.subarray(0, 2_000_000)).toString('latin1')
    if (ACTIVE_HTML.test(text)) out.push({ name: 'PHISH_HTML_ATTACHMENT_FORM', detail: a.filename ?? a.mimeType })
    else out.push({ name: 'PHISH_HTML_ATTACHMENT', detail: a.filename ?? a.mimeType })
    break
  }
  const disguised = msg.attachments.slice(0, 20).find((a) => {
    const named = KIND_BY_EXTENSION[a.filename?.toLowerCase().match(/\.([a-z0-9]{1,8})$/)?.[1] ?? '']
    const declared = declaredKind(a.mimeType)
    return named && declared && named !== declared
  })
  if (disguised) out.push({ name: 'PHISH_ATTACHMENT_DISGUISED', detail: `${disguised.filename} sent as ${disguised.mimeType}` })
  return out
}

/** What kind of file a name's extension says it is (only kinds whose types are unambiguous). */
const KIND_BY_EXTENSION: Record<string, string | undefined> = {
  jpg: 'image', jpeg: 'image', png: 'image', gif: 'image', bmp: 'image', webp: 'image', tif: 'image', tiff: 'image',
  pdf: 'pdf', htm: 'html', html: 'html', shtml: 'html', svg: 'svg', ics: 'calendar',
  zip: 'archive', rar: 'archive', '7z': 'archive', gz: 'archive',
  doc: 'office', docx: 'office', xls: 'office', xlsx: 'office', ppt: 'office', pptx: 'office',
}

/** The same kinds from a declared MIME type; null for generic or unknown types. */
function declaredKind(type: string): string | null {
  if (type === 'image/svg+xml') return 'svg'
  if (type.startsWith('image/')) return 'image'
  if (type === 'application/pdf') return 'pdf'
  if (type === 'text/html') return 'html'
  if (type === 'text/calendar') return 'calendar'
  if (/^application\/(zip|x-zip-compressed|x-rar-compressed|vnd\.rar|x-7z-compressed|gzip|x-gzip)$/.test(type)) return 'archive'
  if (/^application\/(msword|vnd\.ms-(excel|powerpoint)|vnd\.openxmlformats-officedocument\.)/.test(type)) return 'office'
  return null
}
