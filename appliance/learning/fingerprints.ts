/*
 * Campaign fingerprints: what stays the same across the copies of one spam run while the
 * spammer changes each copy (the recipient's name, tracking tokens, invisible HTML noise,
 * numbers). Three kinds, each a string key:
 *
 *   text        a MinHash signature of the message's words in overlapping 4-word shingles,
 *               after normalising away case, numbers, links and markup. Two copies whose
 *               shingle sets overlap by Jaccard ≥ ~0.6 share at least one LSH band, and
 *               their signatures agree in about that share of slots.
 *   url         each link's host and path with query, fragment and token-like path
 *               segments dropped ("evil.example/track/*\/login").
 *   attachment  the SHA-256 of each attachment's bytes (≥ 512 bytes; smaller ones are
 *               signatures and logos that ham shares).
 *
 * Only hashes leave this module: a fingerprint says nothing readable of the message, so it
 * can be shared across customers (learning/fleet-share.ts).
 *
 * Untrusted input: the parsed message. Costs one pass over at most MAX_WORDS words.
 */
import crypto from 'node:crypto'
import type { ParsedMessage } from '../engine/message'
import { urlHost } from '../engine/message'

export const SLOTS = 32
export const BAND_ROWS = 4
export const BANDS = SLOTS / BAND_ROWS
const SHINGLE = 4
// A message shorter than this says too little to be told apart from other short mail ("Thanks!").
export const MIN_SHINGLES = 12
const MAX_WORDS = 4000
const MIN_ATTACHMENT_BYTES = 512

export interface Fingerprints {
  /** The MinHash signature, SLOTS unsigned 32-bit values; null for short messages. */
  text: Uint32Array | null
  urls: string[]
  attachments: string[]
}

// Fixed odd multipliers and offsets: a signature must mean the same on every appliance.
const MUL = new Uint32Array(SLOTS)
const ADD = new Uint32Array(SLOTS)
{
  let seed = 0x9e3779b9
  const next = () => {
    seed ^= seed << 13
    seed ^= seed >>> 17
    seed ^= seed << 5
    return seed >>> 0
  }
  for (let i = 0; i < SLOTS; i++) {
    MUL[i] = next() | 1
    ADD[i] = next()
  }
}

function fnv1a(s: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  // One avalanche round: FNV's low bits are weak for the linear permutations below.
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  return h >>> 0
}

/**
 * The words a reader sees, the same whichever copy they got: lower case, links and
 * addresses removed, every word with a digit counted as one placeholder, punctuation gone.
 */
export function normalisedWords(msg: Pick<ParsedMessage, 'subject' | 'text' | 'htmlText'>): string[] {
  const body = msg.text || msg.htmlText
  const text = `${msg.subject}\n${body}`
    .toLowerCase()
    .replace(/\b(?:https?:\/\/|www\.)\S+/g, ' ')
    .replace(/\S+@\S+/g, ' ')
    // Invisible characters spammers sprinkle between letters.
    .replace(/[\u00ad\u200b-\u200f\u2060-\u2064\ufeff]/g, '')
  const words: string[] = []
  for (const m of text.matchAll(/[\p{L}\p{N}]+/gu)) {
    words.push(/\d/.test(m[0]) ? '#' : m[0])
    if (words.length >= MAX_WORDS) break
  }
  return words
}

export function textSignature(words: string[]): Uint32Array | null {
  if (words.length - SHINGLE + 1 < MIN_SHINGLES) return null
  const sig = new Uint32Array(SLOTS).fill(0xffffffff)
  const seen = new Set<number>()
  for (let i = 0; i + SHINGLE <= words.length; i++) {
    const h = fnv1a(words.slice(i, i + SHINGLE).join(' '))
    if (seen.has(h)) continue
    seen.add(h)
    for (let s = 0; s < SLOTS; s++) {
      const v = (Math.imul(h, MUL[s]) + ADD[s]) >>> 0
      if (v < sig[s]) sig[s] = v
    }
  }
  if (seen.size < MIN_SHINGLES) return null
  return sig
}

/** Share of slots in which two signatures agree: an estimate of their shingle sets' Jaccard. */
export function similarity(a: Uint32Array, b: Uint32Array): number {
  let same = 0
  for (let i = 0; i < SLOTS; i++) if (a[i] === b[i]) same++
  return same / SLOTS
}

/** The LSH band keys of a signature: near-duplicates share at least one. */
export function bandKeys(sig: Uint32Array): string[] {
  const keys: string[] = []
  for (let b = 0; b < BANDS; b++) {
    let k = `${b}:`
    for (let r = 0; r < BAND_ROWS; r++) k += sig[b * BAND_ROWS + r].toString(36) + '.'
    keys.push(k)
  }
  return keys
}

export function signatureToHex(sig: Uint32Array): string {
  return Buffer.from(sig.buffer, sig.byteOffset, sig.byteLength).toString('hex')
}

export function signatureFromHex(hex: string): Uint32Array | null {
  if (!/^[0-9a-f]+$/.test(hex) || hex.length !== SLOTS * 8) return null
  const b = Buffer.from(hex, 'hex')
  const sig = new Uint32Array(SLOTS)
  for (let i = 0; i < SLOTS; i++) sig[i] = b.readUInt32LE(i * 4)
  return sig
}

// A path segment that differs per copy: long, or mixing digits and letters, or hex.
const TOKEN_SEGMENT = /^(?=.*\d)[\w.~%=-]{6,}$|^[\w~%=-]{20,}$|^[0-9a-f]{8,}$/i

/** A link's host and path, without what changes per recipient; null for what is not a web link. */
export function normalisedUrl(url: string): string | null {
  const host = urlHost(url)
  if (!host || !/^https?:/i.test(url)) return null
  const rest = url.replace(/^[a-z]+:\/\/[^/?#]*/i, '')
  const path = rest.split(/[?#]/)[0]
  const segments = path
    .split('/')
    .filter(Boolean)
    .slice(0, 6)
    .map((s) => (TOKEN_SEGMENT.test(s) ? '*' : s.toLowerCase()))
  return `${host.replace(/^www\./, '')}/${segments.join('/')}`
}

// Links every list and newsletter carries, spam that came through a list included: they say
// which list, not which campaign.
const LIST_MANAGEMENT = /\/(?:mailman|listinfo|lists?|unsubscribe|optout|opt-out|preferences|subscription|manage)\b/

function sha(s: string | Uint8Array): string {
  return crypto.createHash('sha256').update(s).digest('hex').slice(0, 32)
}

export function urlKey(normalised: string): string {
  return sha(`url:${normalised}`)
}

export function fingerprintsOf(msg: ParsedMessage): Fingerprints {
  const urls = new Set<string>()
  for (const u of msg.urls) {
    const n = normalisedUrl(u)
    if (n && !LIST_MANAGEMENT.test(n.slice(n.indexOf('/')))) urls.add(urlKey(n))
    if (urls.size >= 50) break
  }
  const attachments = new Set<string>()
  for (const a of msg.attachments) if (a.size >= MIN_ATTACHMENT_BYTES) attachments.add(sha(a.content))
  return { text: textSignature(normalisedWords(msg)), urls: [...urls], attachments: [...attachments] }
}
