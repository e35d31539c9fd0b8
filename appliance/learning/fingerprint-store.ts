/*
 * Campaign fingerprints in SQLite (fuzzy_hashes, migration 28), and the in-memory index
 * kept in step with them: each SMTP process asks every few seconds for rows whose version
 * is newer than the last it loaded, so a new report or a revocation reaches the mail path
 * within seconds of being stored, without reloading the whole set.
 *
 * Fingerprints age out after FINGERPRINT_DAYS (campaigns are short; a fingerprint that
 * outlives its campaign only risks matching something else later): they are revoked, so
 * the running indexes drop them too, and deleted a week later.
 */
import type { Db } from '../db/database'
import { FingerprintIndex, type FingerprintKind, type Label } from './fingerprint-index'
import { type Fingerprints, signatureFromHex, signatureToHex } from './fingerprints'

export const FINGERPRINT_DAYS = 30

export interface Word {
  label: Label
  reporter: string
  trust: number
  origin?: 'local' | 'fleet'
  orgId?: number | null
}

export interface Row {
  id: number
  kind: FingerprintKind
  key: string
  label: Label
  reporter: string
  trust: number
  origin: 'local' | 'fleet'
  revoked_at: number | null
  version: number
}

export function fingerprintKeys(fps: Fingerprints): { kind: FingerprintKind; key: string }[] {
  const out: { kind: FingerprintKind; key: string }[] = []
  if (fps.text) out.push({ kind: 'text', key: signatureToHex(fps.text) })
  for (const key of fps.urls) out.push({ kind: 'url', key })
  for (const key of fps.attachments) out.push({ kind: 'attachment', key })
  return out
}

function nextVersion(db: Db): number {
  return ((db.prepare(`SELECT max(version) AS v FROM fuzzy_hashes`).get() as { v: number | null }).v ?? 0) + 1
}

/**
 * Stores one reporter's word on each of a message's fingerprints; returns how many were new.
 * The same reporter saying the same again changes nothing; a revoked word said again stands again.
 */
export function recordFingerprints(db: Db, keys: { kind: FingerprintKind; key: string }[], w: Word, now = Date.now()): number {
  const upsert = db.prepare(
    `INSERT INTO fuzzy_hashes (kind, key, label, reporter, trust, origin, org_id, created_at, version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
     ON CONFLICT (kind, key, label, reporter) DO UPDATE SET revoked_at = NULL, created_at = excluded.created_at, trust = excluded.trust, version = excluded.version
       WHERE fuzzy_hashes.revoked_at IS NOT NULL OR fuzzy_hashes.trust <> excluded.trust`,
  )
  return db.transaction(() => {
    let n = 0
    for (const k of keys) n += upsert.run(k.kind, k.key, w.label, w.reporter, w.trust, w.origin ?? 'local', w.orgId ?? null, now, nextVersion(db)).changes
    return n
  })()
}

/** Withdraws every word of a reporter (a user whose reports poisoned), or one fingerprint's; `label` narrows either to spam or ham words. */
export function revokeFingerprints(db: Db, by: { reporter?: string; kind?: FingerprintKind; key?: string; label?: string }, now = Date.now()): number {
  const where: string[] = ['revoked_at IS NULL']
  const args: unknown[] = []
  if (by.reporter) where.push('reporter = ?'), args.push(by.reporter)
  if (by.kind && by.key) where.push('kind = ? AND key = ?'), args.push(by.kind, by.key)
  // Only with a reporter or fingerprint named: a label alone would revoke half the table.
  if (by.label && args.length) where.push('label = ?'), args.push(by.label)
  if (args.length === 0) throw new Error('revoke what? name a reporter or a fingerprint')
  return db.transaction(() => {
    const ids = (db.prepare(`SELECT id FROM fuzzy_hashes WHERE ${where.join(' AND ')}`).all(...args) as { id: number }[]).map((r) => r.id)
    const revoke = db.prepare(`UPDATE fuzzy_hashes SET revoked_at = ?, version = ? WHERE id = ?`)
    for (const id of ids) revoke.run(now, nextVersion(db), id)
    return ids.length
  })()
}

/** Revokes fingerprints past their time and deletes those revoked more than a week ago. */
export function expireFingerprints(db: Db, now = Date.now(), days = FINGERPRINT_DAYS): { revoked: number; deleted: number } {
  return db.transaction(() => {
    const old = (db.prepare(`SELECT id FROM fuzzy_hashes WHERE revoked_at IS NULL AND created_at < ?`).all(now - days * 86_400_000) as { id: number }[]).map((r) => r.id)
    const revoke = db.prepare(`UPDATE fuzzy_hashes SET revoked_at = ?, version = ? WHERE id = ?`)
    for (const id of old) revoke.run(now, nextVersion(db), id)
    const deleted = db.prepare(`DELETE FROM fuzzy_hashes WHERE revoked_at < ?`).run(now - 7 * 86_400_000).changes
    return { revoked: old.length, deleted }
  })()
}

/** An index that follows the table: sync() loads what changed since the last call. */
export class SyncedIndex {
  readonly index = new FingerprintIndex()
  private version = 0
  private readonly changed: ReturnType<Db['prepare']>

  constructor(db: Db) {
    this.changed = db.prepare(`SELECT id, kind, key, label, reporter, trust, origin, revoked_at, version FROM fuzzy_hashes WHERE version > ? ORDER BY version LIMIT 50000`)
  }

  /** Returns how many rows it applied. */
  sync(): number {
    let applied = 0
    for (;;) {
      const rows = this.changed.all(this.version) as Row[]
      for (const r of rows) {
        this.version = r.version
        // A row comes again when revoked, restored or given another trust: replace what was loaded.
        this.index.remove(r.id)
        if (r.revoked_at !== null) continue
        const sig = r.kind === 'text' ? signatureFromHex(r.key) : undefined
        if (r.kind === 'text' && !sig) continue
        this.index.add({ id: r.id, kind: r.kind, key: r.key, sig: sig ?? undefined, label: r.label, reporter: r.reporter, trust: r.trust })
      }
      applied += rows.length
      if (rows.length < 50000) return applied
    }
  }
}
