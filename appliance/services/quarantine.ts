/*
 * The quarantine: per-recipient entries pointing at an archived message. Release does not
 * send anything itself; it adds a 'released' row to the delivery outbox, which the running
 * SMTP service hands to Haraka's outbound queue (so the CLI, the web UI and a later digest
 * link all release the same way, and a release survives a restart).
 */
import type { Db } from '../db/database'

export interface QuarantineEntry {
  id: number
  org_id: number
  org: string
  message_id: number
  rcpt: string
  verdict: 'spam' | 'surespam'
  created_at: number
  released_at: number | null
  mail_from: string
  from_header: string | null
  subject: string | null
  score: number
  symbols: string
  size: number
  raw_id: number
}

export interface QuarantineFilter {
  orgId?: number
  rcpt?: string
  verdict?: 'spam' | 'surespam'
  includeReleased?: boolean
  limit?: number
}

export class QuarantineError extends Error {}

const SELECT = `SELECT q.id, q.org_id, o.name AS org, q.message_id, q.rcpt, q.verdict, q.created_at, q.released_at,
  m.mail_from, m.from_header, m.subject, m.score, m.symbols, m.size, m.raw_id
  FROM quarantine q JOIN messages m ON m.id = q.message_id JOIN organisations o ON o.id = q.org_id`

export class Quarantine {
  private readonly q

  constructor(private readonly db: Db) {
    this.q = {
      byId: db.prepare(`${SELECT} WHERE q.id = ?`),
      markReleased: db.prepare(`UPDATE quarantine SET released_at = ? WHERE id = ? AND released_at IS NULL`),
      addRelease: db.prepare(
        `INSERT INTO deliveries (org_id, message_id, rcpt, reason, created_at, updated_at) VALUES (?, ?, ?, 'released', ?, ?)`,
      ),
      remove: db.prepare(`DELETE FROM quarantine WHERE id = ?`),
      purgeBefore: db.prepare(
        `DELETE FROM quarantine WHERE id IN (
           SELECT q.id FROM quarantine q JOIN organisations o ON o.id = q.org_id
           WHERE q.created_at < ? - o.quarantine_retention_days * 86400000)`,
      ),
    }
  }

  list(filter: QuarantineFilter = {}): QuarantineEntry[] {
    const where: string[] = []
    const args: unknown[] = []
    if (filter.orgId !== undefined) {
      where.push('q.org_id = ?')
      args.push(filter.orgId)
    }
    if (filter.rcpt) {
      where.push('q.rcpt = ?')
      args.push(filter.rcpt.toLowerCase())
    }
    if (filter.verdict) {
      where.push('q.verdict = ?')
      args.push(filter.verdict)
    }
    if (!filter.includeReleased) where.push('q.released_at IS NULL')
    const sql = `${SELECT} ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY q.created_at DESC, q.id DESC LIMIT ?`
    args.push(filter.limit ?? 1000)
    return this.db.prepare(sql).all(...args) as QuarantineEntry[]
  }

  get(id: number, orgId?: number): QuarantineEntry {
    const row = this.q.byId.get(id) as QuarantineEntry | undefined
    // A tenant asking for another tenant's entry learns nothing more than "no such entry".
    if (!row || (orgId !== undefined && row.org_id !== orgId)) throw new QuarantineError(`no quarantine entry ${id}`)
    return row
  }

  release(id: number, orgId?: number, now = Date.now()): { deliveryId: number } {
    return this.db.transaction(() => {
      const entry = this.get(id, orgId)
      const changed = this.q.markReleased.run(now, id).changes
      if (!changed) throw new QuarantineError(`quarantine entry ${id} was released already`)
      const info = this.q.addRelease.run(entry.org_id, entry.message_id, entry.rcpt, now, now)
      return { deliveryId: Number(info.lastInsertRowid) }
    }).immediate()
  }

  remove(id: number, orgId?: number): void {
    this.get(id, orgId)
    this.q.remove.run(id)
  }

  /** Drops entries older than their organisation's quarantine retention. */
  purge(now = Date.now()): number {
    return this.q.purgeBefore.run(now).changes
  }
}
