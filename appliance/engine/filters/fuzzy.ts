/*
 * FUZZY_*: the message belongs to a campaign someone already reported (learning/). One
 * symbol per kind of fingerprint, confirmed when the reporters' summed trust reaches
 * CONFIRMED (an admin, or several users), weak below it; the weights table says how much
 * each counts. The detail says how many reporters and, for text, how alike the copies are.
 */
import { CONFIRMED, CONFIRMED_SOURCES, type FingerprintIndex, type Match } from '../../learning/fingerprint-index'
import { fingerprintsOf } from '../../learning/fingerprints'
import type { ParsedMessage } from '../message'
import type { Symbol } from '../symbols'

const NAMES = { text: 'FUZZY_TEXT', url: 'FUZZY_URL', attachment: 'FUZZY_ATTACHMENT' } as const

export function fuzzySymbols(index: FingerprintIndex, msg: ParsedMessage): Symbol[] {
  if (index.size === 0) return []
  return matchSymbols(index.match(fingerprintsOf(msg)))
}

export function matchSymbols(matches: Match[]): Symbol[] {
  return matches.map((m) => ({
    name: m.strength >= CONFIRMED || m.sources >= CONFIRMED_SOURCES ? NAMES[m.kind] : `${NAMES[m.kind]}_WEAK`,
    detail: `${m.reporters} reporter${m.reporters === 1 ? '' : 's'}, trust ${m.strength}${m.similarity !== undefined ? `, ${Math.round(m.similarity * 100)} % alike` : ''}`,
  }))
}
