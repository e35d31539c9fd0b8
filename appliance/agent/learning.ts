/*
 * On a Moat appliance, the agent carries learning both ways (fleet/learning.ts has the
 * console's side):
 *
 *   share  every few seconds, the words this appliance's own reporters gave on campaign
 *          fingerprints (local rows of fuzzy_hashes, version by version, withdrawals as
 *          trust 0) go into the report buffer, for organisations that allow sharing. Only
 *          hashes travel: the reporter as a hash keyed by this host, never an address.
 *          The cursor is saved with the buffered report, so nothing is sent twice or lost.
 *   pull   after each delivered batch, what the MSP's other appliances said since the last
 *          pull: a bundle signed by the console's key (pinned at the first pull), written
 *          into fuzzy_hashes as `fleet:<host>` words, where moat-fuzzy finds them seconds
 *          later. Re-applying a bundle changes nothing, so the version is saved after.
 */
import crypto from 'node:crypto'
import type BetterSqlite3 from 'better-sqlite3'
import { databasePath } from '../config'
import { BUNDLE_KEY_HEADER, BUNDLE_SIGNATURE_HEADER, FINGERPRINTS_PATH, HOST_HEADER, SIGNATURE_HEADER, sign } from '../fleet/protocol'
import { type Bundle, MAX_WORDS_PER_BUNDLE, MAX_WORDS_PER_REPORT, type RelayedWord, type SharedWord, verifyBundle } from '../fleet/learning'
import { FLEET_REPORTER } from '../learning/fingerprint-index'
import { recordFingerprints, revokeFingerprints } from '../learning/fingerprint-store'
import { request } from './client'
import type { AgentState } from './state'

export const SHARED_VERSION_KEY = 'fingerprints-shared-version'
export const PULLED_VERSION_KEY = 'fingerprints-pulled-version'
export const BUNDLE_KEY_PIN = 'fingerprints-bundle-key'

function openAppliance(dataDir: string, readonly: boolean): BetterSqlite3.Database {
  // Loaded here, on appliances only, and never migrated by the agent: the appliance does that.
  const Database = require('better-sqlite3') as typeof BetterSqlite3
  const db = new Database(databasePath(dataDir), { readonly, fileMustExist: true })
  db.pragma('busy_timeout = 10000')
  return db
}

/** Buffers this appliance's new words; returns how many. */
export function shareFingerprints(state: AgentState, dataDir: string, hostId: number): number {
  const db = openAppliance(dataDir, true)
  try {
    let shared = 0
    for (;;) {
      const after = Number(state.get(SHARED_VERSION_KEY) ?? 0)
      // The newest version first, then the rows up to it: a word committed meanwhile has a higher one.
      const top = (db.prepare(`SELECT max(version) FROM fuzzy_hashes`).pluck().get() as number | null) ?? 0
      if (top <= after) return shared
      const rows = db
        .prepare(
          `SELECT f.kind, f.key, f.label, f.reporter, f.trust, f.revoked_at, f.version FROM fuzzy_hashes f LEFT JOIN organisations o ON o.id = f.org_id
            WHERE f.version > ? AND f.version <= ? AND f.origin = 'local' AND (f.org_id IS NULL OR o.share_learning = 1) ORDER BY f.version LIMIT ?`,
        )
        .all(after, top, MAX_WORDS_PER_REPORT) as { kind: SharedWord['kind']; key: string; label: SharedWord['label']; reporter: string; trust: number; revoked_at: number | null; version: number }[]
      // Versions of words not shared (the fleet's own, organisations that opted out) move the cursor too.
      const next = rows.length === MAX_WORDS_PER_REPORT ? rows[rows.length - 1].version : top
      if (!rows.length) {
        state.set(SHARED_VERSION_KEY, String(next))
        return shared
      }
      const words: SharedWord[] = rows.map((r) => ({
        kind: r.kind,
        key: r.key,
        label: r.label,
        reporter: crypto.createHash('sha256').update(`${hostId}:${r.reporter}`).digest('hex').slice(0, 24),
        trust: r.revoked_at === null ? Math.min(3, r.trust) : 0,
      }))
      state.enqueue('fingerprints', { words }, Date.now(), { key: SHARED_VERSION_KEY, value: String(next) })
      shared += words.length
    }
  } finally {
    db.close()
  }
}

/** Writes relayed words into the appliance's fingerprints, one transaction; applying them twice changes nothing. */
export function applyBundle(db: BetterSqlite3.Database, words: RelayedWord[], now = Date.now()): void {
  db.transaction(() => {
    for (const w of words) {
      const reporter = `${FLEET_REPORTER}${w.host}`
      if (w.trust > 0) recordFingerprints(db, [{ kind: w.kind, key: w.key }], { label: w.label, reporter, trust: w.trust, origin: 'fleet' }, now)
      // Withdrawn is this word only: the same appliance may also have said the other label.
      else revokeFingerprints(db, { reporter, kind: w.kind, key: w.key, label: w.label }, now)
    }
  })()
}

/** Pulls and applies what the other appliances learned; returns how many words were applied. */
export async function pullFingerprints(state: AgentState, dataDir: string): Promise<number> {
  const id = state.identity()
  if (!id) return 0
  let applied = 0
  for (;;) {
    const since = Number(state.get(PULLED_VERSION_KEY) ?? 0)
    const path = `${FINGERPRINTS_PATH}?since=${since}`
    const a = await request(id.consoleUrl, {
      method: 'GET', path, pin: id.pin,
      headers: { [HOST_HEADER]: String(id.hostId), [SIGNATURE_HEADER]: sign(id.privateKey, 'GET', path, id.hostId, '') },
    })
    if (a.status !== 200) throw new Error(`the console answered ${a.status} for the fleet's fingerprints`)
    const key = a.headers[BUNDLE_KEY_HEADER] ?? ''
    const pinned = state.get(BUNDLE_KEY_PIN)
    if (pinned && key !== pinned) throw new Error('the fleet bundle is signed with another key than the one pinned')
    if (!verifyBundle(a.body, a.headers[BUNDLE_SIGNATURE_HEADER] ?? '', key)) throw new Error('the fleet bundle has a bad signature')
    if (!pinned) state.set(BUNDLE_KEY_PIN, key)
    const bundle = JSON.parse(a.body) as Bundle
    if (bundle.words.length) {
      const db = openAppliance(dataDir, false)
      try {
        applyBundle(db, bundle.words)
      } finally {
        db.close()
      }
      applied += bundle.words.length
    }
    state.set(PULLED_VERSION_KEY, String(bundle.version))
    if (bundle.words.length < MAX_WORDS_PER_BUNDLE) return applied
  }
}
