/*
 * An appliance's standing with the console, earned the way reporters earn it in Razor-like
 * networks: by being right before. Its spam words on fingerprints another appliance of the
 * same MSP also called spam are corroborated; those another appliance called ham, or the MSP
 * withdrew, are contradicted. An appliance with PROVEN_AFTER corroborated words and almost
 * no contradicted ones is proven: the console vouches for its next words (relays them with
 * trust VOUCHED), and each other appliance lets such a word count alone, as weak evidence
 * (learning/fingerprint-index.ts). So the first report of a campaign by a proven appliance
 * protects the others without waiting for a second site, and an unproven or hostile one
 * still moves nothing alone.
 *
 * Fingerprints are compared by key, so corroboration comes mostly from links and
 * attachments (a campaign's copies share them after normalising); text signatures differ
 * slightly between copies and rarely match exactly.
 */
import type BetterSqlite3 from 'better-sqlite3'
import type { Db } from '../db/database'

/** Corroborated spam words (fingerprint keys) before an appliance is proven. */
export const PROVEN_AFTER = 6
/** Contradicted words allowed per corroborated one: a user's slip is forgiven, a pattern is not. */
export const CONTRADICTION_TOLERANCE = 0.1

export interface Standing {
  corroborated: number
  contradicted: number
  proven: boolean
}

export function isProven(corroborated: number, contradicted: number): boolean {
  return corroborated >= PROVEN_AFTER && contradicted <= corroborated * CONTRADICTION_TOLERANCE
}

/** How long a host's standing is reused: counting it walks all its spam fingerprints. */
export const STANDING_TTL_MS = 60_000

export class Reputation {
  private readonly counts: BetterSqlite3.Statement
  private readonly cache = new Map<number, { at: number; standing: Standing }>()

  constructor(db: Db) {
    this.counts = db.prepare(
      `SELECT
         count(CASE WHEN f.trust > 0 AND f.withdrawn_by IS NULL AND EXISTS (
           SELECT 1 FROM fleet_fingerprints o WHERE o.msp_id = f.msp_id AND o.kind = f.kind AND o.key = f.key AND o.label = 'spam'
             AND o.host_id <> f.host_id AND o.trust > 0 AND o.withdrawn_by IS NULL) THEN 1 END) AS corroborated,
         count(CASE WHEN f.withdrawn_by IS NOT NULL OR EXISTS (
           SELECT 1 FROM fleet_fingerprints o WHERE o.msp_id = f.msp_id AND o.kind = f.kind AND o.key = f.key AND o.label = 'ham'
             AND o.host_id <> f.host_id AND o.trust > 0) THEN 1 END) AS contradicted
       FROM fleet_fingerprints f WHERE f.host_id = ? AND f.label = 'spam'`,
    )
  }

  /**
   * The host's standing: reused for a minute (a report batch from each appliance every few
   * seconds would otherwise count it each time), counted afresh when `fresh`, as a
   * contradiction must be: a host loses its standing at once, and gains it a minute late at most.
   */
  of(hostId: number, fresh = false, now = Date.now()): Standing {
    const hit = this.cache.get(hostId)
    if (!fresh && hit && now >= hit.at && now - hit.at < STANDING_TTL_MS) return hit.standing
    const r = this.counts.get(hostId) as { corroborated: number; contradicted: number }
    const standing = { ...r, proven: isProven(r.corroborated, r.contradicted) }
    this.cache.set(hostId, { at: now, standing })
    return standing
  }
}
