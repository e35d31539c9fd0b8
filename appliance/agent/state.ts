/*
 * The agent's own SQLite file: who it is (console, host id, key, the console's pinned key) and
 * the reports it has not yet delivered. A report is written here before anything tries to
 * send it, so a console that is away, a restart or a crash loses nothing; the buffer is
 * bounded (count and age), oldest first out, so a console gone for a month does not fill the
 * customer's disk.
 */
import crypto from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import { type AgentDb, openAgentDb } from './sqlite'
import type { ReportKind } from '../fleet/protocol'

export interface Identity {
  consoleUrl: string
  hostId: number
  orgId: number
  /** sha256/<base64> of the console certificate's public key, taken at enrollment */
  pin: string
  privateKey: crypto.KeyObject
}

export interface Buffered {
  seq: number
  kind: ReportKind
  at: number
  data: string
}

export const BUFFER_MAX_REPORTS = 50_000
export const BUFFER_MAX_AGE_MS = 14 * 86_400_000

const SCHEMA = [
  `CREATE TABLE config (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;
   CREATE TABLE outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, at INTEGER NOT NULL, data TEXT NOT NULL) STRICT;`,
]

export class AgentState {
  readonly db: AgentDb

  constructor(readonly dir: string) {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 })
    this.db = openAgentDb(path.join(dir, 'agent.db'))
    this.db.exec('PRAGMA journal_mode = WAL')
    this.db.exec('PRAGMA synchronous = FULL')
    const version = this.db.get<{ user_version: number }>('PRAGMA user_version')!.user_version
    for (let v = version; v < SCHEMA.length; v++) {
      this.db.transaction(() => {
        this.db.exec(SCHEMA[v])
        this.db.exec(`PRAGMA user_version = ${v + 1}`)
      })
    }
  }

  get(key: string): string | null {
    return this.db.get<{ value: string }>(`SELECT value FROM config WHERE key = ?`, key)?.value ?? null
  }

  set(key: string, value: string): void {
    this.db.run(`INSERT INTO config (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`, key, value)
  }

  identity(): Identity | null {
    const raw = this.get('identity')
    if (!raw) return null
    const i = JSON.parse(raw) as { consoleUrl: string; hostId: number; orgId: number; pin: string; privateKey: string }
    return { ...i, privateKey: crypto.createPrivateKey({ key: Buffer.from(i.privateKey, 'base64'), format: 'der', type: 'pkcs8' }) }
  }

  saveIdentity(i: Identity): void {
    const privateKey = i.privateKey.export({ format: 'der', type: 'pkcs8' }).toString('base64')
    this.db.transaction(() => {
      this.set('identity', JSON.stringify({ consoleUrl: i.consoleUrl, hostId: i.hostId, orgId: i.orgId, pin: i.pin, privateKey }))
      // A new enrollment is a new host: what was buffered for the old one is not its to send.
      this.db.exec(`DELETE FROM outbox; DELETE FROM sqlite_sequence WHERE name = 'outbox'`)
    })
    fs.chmodSync(path.join(this.dir, 'agent.db'), 0o600)
  }

  /**
   * Buffers a report (durably: synchronous=FULL) and trims the buffer to its bounds.
   * `position`: where its reader goes on from (a journal cursor), saved in the same
   * transaction, so that a crash neither loses nor repeats what the report holds.
   */
  enqueue(kind: ReportKind, data: unknown, now = Date.now(), position?: { key: string; value: string } | null): number {
    return this.db.transaction(() => {
      if (position) this.set(position.key, position.value)
      const seq = this.db.run(`INSERT INTO outbox (kind, at, data) VALUES (?, ?, ?)`, kind, now, JSON.stringify(data)).lastInsertRowid
      this.db.run(`DELETE FROM outbox WHERE at < ?`, now - BUFFER_MAX_AGE_MS)
      this.db.run(`DELETE FROM outbox WHERE seq <= ?`, seq - BUFFER_MAX_REPORTS)
      return seq
    })
  }

  /** The oldest buffered reports, in sequence order, up to `limit` and about `maxBytes`. */
  next(limit: number, maxBytes: number): Buffered[] {
    const out: Buffered[] = []
    let bytes = 0
    for (const r of this.db.all<Buffered>(`SELECT seq, kind, at, data FROM outbox ORDER BY seq LIMIT ?`, limit)) {
      if (out.length && bytes + r.data.length > maxBytes) break
      bytes += r.data.length
      out.push(r)
    }
    return out
  }

  /** Delivered (or already held by the console): dropped from the buffer. */
  delivered(upToSeq: number): void {
    this.db.run(`DELETE FROM outbox WHERE seq <= ?`, upToSeq)
  }

  pending(): number {
    return this.db.get<{ n: number }>(`SELECT count(*) AS n FROM outbox`)!.n
  }

  /** The highest sequence number ever given (what the console should have once all is sent). */
  lastSeq(): number {
    return this.db.get<{ seq: number }>(`SELECT seq FROM sqlite_sequence WHERE name = 'outbox'`)?.seq ?? 0
  }

  close(): void {
    this.db.close()
  }
}
