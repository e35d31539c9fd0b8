/*
 * Copies of one spam as a campaign sends them: each recipient greeted by name, links with
 * their own tracking tokens, numbers changed, and invisible HTML noise (zero-width
 * characters, hidden spans of random words) so that no two copies have the same bytes.
 * Made from a real corpus message's decoded text and HTML, as a fresh MIME message.
 * Deterministic for a seed, so tests and the fleet simulation repeat exactly.
 */
import type { ParsedMessage } from '../appliance/engine/message'

const NAMES = ['Anna', 'Ben', 'Chloe', 'David', 'Emma', 'Farid', 'Grace', 'Hugo', 'Ines', 'Jonas', 'Kemal', 'Lena', 'Marta', 'Nils', 'Olga', 'Pavel']
const NOISE = ['lorem', 'umbra', 'calix', 'tessa', 'morrow', 'quill', 'fable', 'nimbus', 'orbit', 'pique', 'rune', 'sable']

export function rng(seed: number): () => number {
  let s = seed >>> 0 || 1
  return () => {
    s ^= s << 13
    s ^= s >>> 17
    s ^= s << 5
    return (s >>> 0) / 0x100000000
  }
}

const pick = <T>(r: () => number, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]
const token = (r: () => number, n: number) => Array.from({ length: n }, () => 'abcdefghijklmnopqrstuvwxyz0123456789'[Math.floor(r() * 36)]).join('')

function retokenUrl(url: string, r: () => number): string {
  // The link's own query is replaced by this copy's tracking, and a per-recipient path segment added.
  const base = url.split(/[?#]/)[0].replace(/\/$/, '')
  return `${base}/${token(r, 12)}?utm_source=${token(r, 6)}&rid=${token(r, 16)}`
}

function vary(text: string, r: () => number): string {
  // Numbers change, but not inside links: a campaign keeps its hosts.
  return text.replace(/\bhttps?:\/\/[^\s<>"')\]]+|\d+/gi, (m) => (/^http/i.test(m) ? retokenUrl(m, r) : String(Math.floor(r() * 10 ** Math.min(m.length, 6)))))
}

function htmlNoise(html: string, r: () => number): string {
  let out = html.replace(/href="(https?:[^"]+)"/gi, (_m, u: string) => `href="${retokenUrl(u, r)}"`)
  out = out.replace(/>([^<]{12,})</g, (_m, text: string) => `>${text.replace(/ /g, () => (r() < 0.15 ? ' \u200b' : ' '))}<`)
  const hidden = `<span style="display:none">${Array.from({ length: 8 }, () => pick(r, NOISE)).join(' ')}</span>`
  return out.includes('</body>') ? out.replace('</body>', `${hidden}</body>`) : out + hidden
}

/** One copy of the campaign for one recipient. */
export function campaignCopy(original: Pick<ParsedMessage, 'subject' | 'text' | 'html'>, seed: number, rcpt = `user${seed}@example.com`): Buffer {
  const r = rng(seed * 2654435761)
  const name = pick(r, NAMES)
  const greeting = `Dear ${name},`
  const subject = vary(original.subject, r).replace(/[\r\n]+/g, ' ') + (r() < 0.5 ? ` [${token(r, 5)}]` : '')
  const text = `${greeting}\n\n${vary(original.text, r)}\n\nRef: ${token(r, 10)}\n`
  const boundary = `b_${token(r, 16)}`
  const head = [
    `From: "Service ${token(r, 4)}" <news@${token(r, 8)}.example>`,
    `To: ${name} <${rcpt}>`,
    `Subject: =?UTF-8?B?${Buffer.from(subject).toString('base64')}?=`,
    `Message-ID: <${token(r, 20)}@mailer.example>`,
    'Date: Mon, 07 Dec 2026 10:00:00 +0000',
    'MIME-Version: 1.0',
  ]
  const part = (type: string, body: string) => [`--${boundary}`, `Content-Type: ${type}; charset=utf-8`, 'Content-Transfer-Encoding: base64', '', Buffer.from(body).toString('base64').replace(/.{76}/g, '$&\r\n'), ''].join('\r\n')
  const parts = [part('text/plain', text)]
  if (original.html) parts.push(part('text/html', htmlNoise(original.html.replace(/<body[^>]*>/i, (b) => `${b}<p>${greeting}</p>`), r)))
  return Buffer.from([...head, `Content-Type: multipart/alternative; boundary="${boundary}"`, '', ...parts, `--${boundary}--`, ''].join('\r\n'))
}
