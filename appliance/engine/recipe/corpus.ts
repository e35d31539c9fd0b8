/*
 * The labelled corpus as the engine learns and is measured on it: each message with its
 * tokens, features and the symbols of every filter but the classifier. One loader for the
 * default recipe, the benchmarks and the tests, so what is measured is what is trained.
 *
 * Trusts nothing in the messages (they are real spam); reads only the corpus folder.
 */
import fs from 'node:fs'
import path from 'node:path'
import { CONTENT_FILTERS } from '../engine'
import { type FeatureVector, features } from '../logistic'
import { FOREIGN_VERDICT, parseMessage, type ParsedMessage } from '../message'
import type { Symbol } from '../symbols'
import { tokenize, type Tokens } from '../tokenize'
import { corpusDir, type ManifestRow, readManifest } from '../training'
import { listSource, stripListGiveaways } from './list-giveaways'

/** The 2019–2026 mailing-list sources of the corpus: their list giveaways are removed. */
export const LIST_SOURCES = [
  'jailhouse-dev.googlegroups.com',
  'ksummit.lists.linux.dev',
  'linux-bluetooth.vger.kernel.org',
  'linux-leds.vger.kernel.org',
  'linux-man.vger.kernel.org',
  'linux-raid.vger.kernel.org',
  'nouveau.lists.freedesktop.org',
  'open-iscsi.googlegroups.com',
  'openbmc.lists.ozlabs.org',
  'selinux.vger.kernel.org',
  'spice-devel.lists.freedesktop.org',
  'tipc-discussion.lists.sourceforge.net',
  'usrp-users.lists.ettus.com',
]

export interface Sample {
  source: string
  sha256: string
  spam: boolean
  fold: number
  tokens: Tokens
  features: FeatureVector
  parsed: ParsedMessage
  fixed: Symbol[]
}

/**
 * Header fields in which another filter gave its verdict on the way into the corpus (the
 * providers' and the lists' spam filters; the parser's own list). An appliance sees mail
 * before any of these is added, so every engine in these benchmarks gets it without them.
 */
export function stripVerdictHeaders(raw: Buffer): Buffer {
  const text = raw.toString('latin1')
  const m = /\r?\n\r?\n/.exec(text)
  const headEnd = m ? m.index : text.length
  const lines = text.slice(0, headEnd).split(/(?<=\n)/)
  const kept: string[] = []
  let dropping = false
  for (const l of lines) {
    if (/^[ \t]/.test(l)) {
      if (!dropping) kept.push(l)
      continue
    }
    dropping = FOREIGN_VERDICT.test(l.slice(0, Math.max(0, l.indexOf(':'))).trim().toLowerCase())
    if (!dropping) kept.push(l)
  }
  return Buffer.from(kept.join('') + text.slice(headEnd), 'latin1')
}

/**
 * phishing_pot replaced every victim's address with "phishing@pot", a domain that cannot
 * exist; real phishing shows the victim's real address. It gets a valid domain here, so no
 * rule (FROM_DOMAIN_INVALID) scores the anonymisation instead of the phish.
 */
const ANONYMISED_VICTIM = /phishing@pot(?![\w.-])/g

export function corpusRaw(row: ManifestRow, dir = corpusDir()): Buffer {
  const raw = stripVerdictHeaders(fs.readFileSync(path.join(dir, row.path)))
  return row.source === 'phishing_pot' ? Buffer.from(raw.toString('latin1').replace(ANONYMISED_VICTIM, 'phishing@pot.example'), 'latin1') : raw
}

export const foldOf = (row: { sha256: string }, folds: number) => parseInt(row.sha256.slice(0, 8), 16) % folds

/** A corpus message parsed as the engine sees it, list giveaways removed for list sources. */
export async function parseCorpusMessage(raw: Buffer, source: string): Promise<ParsedMessage> {
  const parsed = await parseMessage(raw)
  return LIST_SOURCES.includes(source) ? stripListGiveaways(parsed, listSource(source)) : parsed
}

export async function loadSamples(folds: number, filter: (source: string, i: number) => boolean = () => true, dir = corpusDir()): Promise<Sample[]> {
  const rows = readManifest(dir)
  const out: Sample[] = []
  let i = 0
  for (const r of rows) {
    if (!filter(r.source, i++)) continue
    const raw = corpusRaw(r, dir)
    const parsed = await parseCorpusMessage(raw, r.source)
    out.push({
      source: r.source,
      sha256: r.sha256,
      spam: r.label === 'spam',
      fold: foldOf(r, folds),
      tokens: tokenize(parsed),
      features: { index: new Uint32Array(0), value: new Float32Array(0) },
      parsed,
      // Every filter but the classifier (no model given: folds train their own). Dated corpus
      // mail must not be judged against today's clock. A site's exported reports add what
      // the receiving server knew (blocklists, authentication), which no file can recompute.
      fixed: [
        ...CONTENT_FILTERS.flatMap((f) => f.check(raw, parsed, { now: Date.parse(parsed.date ?? '') || Date.now() })),
        ...r.symbols.map((name) => ({ name, detail: 'when it was received' })),
      ],
    })
  }
  for (const s of out) s.features = features(s.tokens)
  return out
}
