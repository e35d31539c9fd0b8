/*
 * The contract between filters and the scorer: a filter decides *whether* a named symbol
 * fires; the weights table alone decides how much it counts.
 */
import weightsTable from './weights.json'

export interface Symbol {
  name: string
  /** Short, human-readable evidence ("reply-to example.net != from example.com"). */
  detail?: string
  /** Only for admin-defined rule symbols (RULE_*): the weight the rule carries. */
  weight?: number
}

export interface ScoredSymbol extends Symbol {
  weight: number
}

export type Verdict = 'clean' | 'spam' | 'surespam'

export interface Thresholds {
  spam: number
  surespam: number
}

export const DEFAULT_THRESHOLDS: Thresholds = { spam: 5, surespam: 10 }

const WEIGHTS: Readonly<Record<string, number>> = weightsTable.weights

/** A virus found by the scanner (AV_UNSCANNED is a scan that could not be made, not a virus). */
export function isVirusSymbol(name: string): boolean {
  return name.startsWith('AV_') && name !== 'AV_UNSCANNED'
}

/** A symbol's points; a weights table other than the shipped one serves the benchmark's folds. */
export type WeightsLookup = (name: string) => number

// "AV_*"-style entries weigh every symbol with that prefix (one per virus name).
export function weightsLookup(table: Readonly<Record<string, number>>): WeightsLookup {
  const prefixes = Object.entries(table)
    .filter(([k]) => k.endsWith('*'))
    .map(([k, w]) => [k.slice(0, -1), w] as const)
    .sort((a, b) => b[0].length - a[0].length)
  return (name) => table[name] ?? prefixes.find(([prefix]) => name.startsWith(prefix))?.[1] ?? 0
}

export const weightOf: WeightsLookup = weightsLookup(WEIGHTS)

export function knownSymbols(): string[] {
  return Object.keys(WEIGHTS)
}

export function score(symbols: Symbol[], weigh: WeightsLookup = weightOf): { score: number; symbols: ScoredSymbol[] } {
  const seen = new Set<string>()
  const scored: ScoredSymbol[] = []
  let total = 0
  for (const s of symbols) {
    // One symbol counts once, however many filters or parts raised it.
    if (seen.has(s.name)) continue
    seen.add(s.name)
    const weight = s.name.startsWith('RULE_') && s.weight !== undefined ? s.weight : weigh(s.name)
    total += weight
    scored.push({ ...s, weight })
  }
  return { score: Math.round(total * 100) / 100, symbols: scored }
}

export function verdictFor(total: number, t: Thresholds): Verdict {
  if (total >= t.surespam) return 'surespam'
  if (total >= t.spam) return 'spam'
  return 'clean'
}
