/*
 * The fingerprints an appliance knows, in memory, for the SMTP path: a message's text
 * signature is looked up through its LSH band keys, its URL and attachment keys directly,
 * in microseconds.
 *
 * Each entry is one reporter's word on one fingerprint: spam or ham, with the reporter's
 * trust (TRUST). A message matches a fingerprint's spam entries with a strength, the summed
 * trust of the distinct reporters who said spam; any ham entry on a matching fingerprint
 * (a "not spam" report, the organisation's own outbound mail) vetoes it, so a newsletter
 * one user reported does not follow everyone who wants it.
 *
 * Words relayed from the fleet count per appliance (`fleet:<host>`, trust capped by the
 * console), and one appliance alone never makes a match: see combined().
 */
import { BANDS, bandKeys, type Fingerprints, similarity } from './fingerprints'

export type FingerprintKind = 'text' | 'url' | 'attachment'
export type Label = 'spam' | 'ham'

/** How much one reporter's word counts (learning/fingerprint-store.ts maps who said it). */
export const TRUST = { user: 1, auto: 2, admin: 3 } as const
/**
 * Summed trust from which a match is confirmed (FUZZY_*) rather than weak (FUZZY_*_WEAK); two
 * appliances whose users reported the campaign independently confirm it too.
 */
export const CONFIRMED = 3
export const CONFIRMED_SOURCES = 2
/** Reporters of words relayed from the MSP's other appliances are `fleet:<host id>`. */
export const FLEET_REPORTER = 'fleet:'
/**
 * The trust the console relays a proven appliance's spam word with (fleet/reputation.ts):
 * such a word may count alone, but only as weak evidence, so it tips mail that already looks
 * like spam and never flags mail that looks clean on its own.
 */
export const FLEET_VOUCHED = 3
/** Signatures agreeing in at least this share of slots are the same campaign. */
export const TEXT_MATCH = 0.6

export interface Entry {
  id: number
  kind: FingerprintKind
  /** text: the signature (SLOTS values); url and attachment: the key */
  key: string
  sig?: Uint32Array
  label: Label
  reporter: string
  trust: number
}

export interface Match {
  kind: FingerprintKind
  strength: number
  reporters: number
  /** appliances that said so: this one (if a reporter of its own did) and each fleet host */
  sources: number
  /** text: the best signature agreement */
  similarity?: number
}

interface Fingerprint {
  sig?: Uint32Array
  ids: Set<number>
  spam: Map<string, number>
  ham: Set<string>
}

function count(fp: Fingerprint, e: Entry): void {
  if (e.label === 'ham') fp.ham.add(e.reporter)
  else fp.spam.set(e.reporter, Math.max(fp.spam.get(e.reporter) ?? 0, e.trust))
}

function combined(kind: FingerprintKind, matched: Fingerprint[]): Match | null {
  const reporters = new Map<string, number>()
  for (const fp of matched) {
    if (fp.ham.size) return null
    for (const [who, trust] of fp.spam) reporters.set(who, Math.max(reporters.get(who) ?? 0, trust))
  }
  if (!reporters.size) return null
  // A word relayed from the fleet is one other appliance's: alone it moves nothing here (it may
  // be a hostile or broken host), unless the console vouches for that appliance's record, and
  // then only as weak evidence; with a second appliance's, or a reporter of our own, it does.
  let local = 0
  for (const who of reporters.keys()) if (!who.startsWith(FLEET_REPORTER)) local++
  if (local === 0 && reporters.size < 2) {
    const [only] = reporters.values()
    if (only < FLEET_VOUCHED) return null
    return { kind, strength: Math.min(only, CONFIRMED - 1), reporters: 1, sources: 1 }
  }
  let strength = 0
  for (const t of reporters.values()) strength += t
  return { kind, strength, reporters: reporters.size, sources: reporters.size - local + (local ? 1 : 0) }
}

export class FingerprintIndex {
  private readonly byKey = new Map<string, Fingerprint>()
  private readonly bands = new Map<string, Set<string>>()
  private readonly entries = new Map<number, Entry>()

  get size(): number {
    return this.entries.size
  }

  add(e: Entry): void {
    if (this.entries.has(e.id)) return
    this.entries.set(e.id, e)
    const key = `${e.kind}:${e.key}`
    let fp = this.byKey.get(key)
    if (!fp) {
      fp = { sig: e.sig, ids: new Set(), spam: new Map(), ham: new Set() }
      this.byKey.set(key, fp)
      if (e.sig) for (const b of bandKeys(e.sig)) (this.bands.get(b) ?? this.bands.set(b, new Set()).get(b)!).add(key)
    }
    fp.ids.add(e.id)
    count(fp, e)
  }

  remove(id: number): void {
    const e = this.entries.get(id)
    if (!e) return
    this.entries.delete(id)
    const key = `${e.kind}:${e.key}`
    const fp = this.byKey.get(key)
    if (!fp) return
    // Another entry of the same reporter and label may still stand: recount what is left.
    fp.ids.delete(id)
    fp.spam.clear()
    fp.ham.clear()
    for (const other of fp.ids) count(fp, this.entries.get(other)!)
    if (fp.ids.size) return
    this.byKey.delete(key)
    if (fp.sig) for (const b of bandKeys(fp.sig)) this.bands.get(b)?.delete(key)
  }

  /**
   * What of a message matches known spam, per kind: the words of every matching fingerprint
   * together (each user reported their own copy, and the copies differ), each reporter once.
   * A kind on which any matching fingerprint has a ham word is left out.
   */
  match(fps: Fingerprints): Match[] {
    const out: Match[] = []
    if (fps.text) {
      const candidates = new Set<string>()
      for (const b of bandKeys(fps.text)) for (const k of this.bands.get(b) ?? []) candidates.add(k)
      // A pathological band (one shingle set reported thousands of times): never let one lookup cost milliseconds.
      if (candidates.size > 64 * BANDS) candidates.clear()
      const matched: Fingerprint[] = []
      let best = 0
      for (const k of candidates) {
        const fp = this.byKey.get(k)!
        const sim = similarity(fps.text, fp.sig!)
        if (sim < TEXT_MATCH) continue
        matched.push(fp)
        best = Math.max(best, sim)
      }
      const m = combined('text', matched)
      if (m) out.push({ ...m, similarity: best })
    }
    for (const kind of ['url', 'attachment'] as const) {
      const matched = (kind === 'url' ? fps.urls : fps.attachments).map((key) => this.byKey.get(`${kind}:${key}`)).filter((fp): fp is Fingerprint => !!fp)
      const m = combined(kind, matched)
      if (m) out.push(m)
    }
    return out
  }
}
