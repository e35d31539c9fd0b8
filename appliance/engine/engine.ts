/*
 * The content engine as one function, shared by the SMTP plugins and `moat scan`: the
 * content filters in their order, then the scorer. The Haraka plugins call the same filter
 * functions one hook at a time; this is the offline path through them.
 */
import { abusedTldChecks } from './filters/abused-tlds'
import { attachmentSymbols } from './filters/attachments'
import { classifierSymbols } from './filters/classifier'
import { fuzzySymbols } from './filters/fuzzy'
import type { FingerprintIndex } from '../learning/fingerprint-index'
import type { LogisticModel } from './logistic'
import { phishingChecks } from './filters/phishing'
import { phishingLinkChecks } from './filters/phishing-links'
import { rawChecks, sanityChecks } from './filters/sanity'
import { type ParsedMessage, parseMessage } from './message'
import { type ScoredSymbol, type Symbol, type Thresholds, type Verdict, DEFAULT_THRESHOLDS, score, verdictFor } from './symbols'

export interface EngineContext {
  /** Only the classifier reads it. */
  model?: LogisticModel
  /** Only moat-fuzzy reads it: the campaigns reported here and across the fleet. */
  fingerprints?: FingerprintIndex
  now?: number
}

export interface ContentFilter {
  /** The plugin that runs this filter in Haraka; symbols are recorded under this name. */
  name: string
  check(raw: Buffer, msg: ParsedMessage, ctx: EngineContext): Symbol[]
}

export const CONTENT_FILTERS: readonly ContentFilter[] = [
  { name: 'moat-sanity', check: (raw, msg, ctx) => [...rawChecks(raw), ...sanityChecks(msg, ctx.now), ...phishingChecks(msg), ...phishingLinkChecks(msg), ...abusedTldChecks(msg)] },
  { name: 'moat-attachments', check: (_raw, msg) => attachmentSymbols(msg) },
  { name: 'moat-classifier', check: (_raw, msg, ctx) => (ctx.model ? classifierSymbols(ctx.model, msg) : []) },
  { name: 'moat-fuzzy', check: (_raw, msg, ctx) => (ctx.fingerprints ? fuzzySymbols(ctx.fingerprints, msg) : []) },
]

export function contentFilter(name: string): ContentFilter {
  const f = CONTENT_FILTERS.find((c) => c.name === name)
  if (!f) throw new Error(`no content filter named ${name}`)
  return f
}

export interface ScanResult {
  verdict: Verdict
  score: number
  symbols: ScoredSymbol[]
  parsed: ParsedMessage
}

export async function scanMessage(
  raw: Buffer,
  ctx: EngineContext,
  thresholds: Thresholds = DEFAULT_THRESHOLDS,
): Promise<ScanResult> {
  const parsed = await parseMessage(raw)
  const symbols: Symbol[] = []
  for (const f of CONTENT_FILTERS) symbols.push(...f.check(raw, parsed, ctx))
  const s = score(symbols)
  return { verdict: verdictFor(s.score, thresholds), score: s.score, symbols: s.symbols, parsed }
}
