/*
 * The quarantine: per-recipient entries pointing at an archived message. Release does not
 * send anything itself; it adds a 'released' row to the delivery outbox, which the running
 * SMTP service hands to Haraka's outbound queue (so the CLI, the web UI and a later digest
 * link all release the same way, and a release survives a restart).
 */
import type { Db } from '../db/database'
import { whereIn } from '../db/sql'
import type { QuarantineReason } from './mail-store'

/** Entries only an administrator may release: what they hold can harm the recipient. */
export function adminReleaseOnly(e: { reason: QuarantineReason }): boolean {
  return e.reason === 'virus' || e.reason === 'attachment'
}

export interface QuarantineEntry {
  id: number
  org_id: number
  org: string
  message_id: number
  rcpt: string
  user_id: number | null
  direction: 'in' | 'out'
  verdict: 'spam' | 'surespam'
  reason: QuarantineReason
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
  /** several organisations (an MSP's); null or absent = no limit */
  orgIds?: number[] | null
  /** only this user's own entries */
  userId?: number | null
  rcpt?: string
  verdict?: 'spam' | 'surespam'
  /** leave surespam out (an end user who did not choose to see it) */
  hideSurespam?: boolean
  /** substring of the envelope sender or From header */
  sender?: string
  subject?: string
  since?: number
  until?: number
  includeReleased?: boolean
  /** keyset paging: entries older than this one */
  before?: { createdAt: number; id: number }
  limit?: number
}

export class QuarantineError extends Error {}

/** Adds a tenant scope (some organisations; one user's own entries) to a WHERE list. */
function scopeWhere(where: string[], args: unknown[], orgIds: number[] | null | undefined, userId: number | null | undefined): void {
  if (orgIds) {
    const w = whereIn('q.org_id', orgIds)
    where.push(w.sql)
    args.push(...w.args)
  }
  if (userId != null) {
    where.push('q.user_id = ?')
    args.push(userId)
  }
}

const SELECT = `SELECT q.id, q.org_id, o.name AS org, q.message_id, q.rcpt, q.user_id, q.direction, q.verdict, q.reason, q.created_at, q.released_at,
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
    scopeWhere(where, args, filter.orgIds, filter.userId)
    if (filter.verdict) {
      where.push('q.verdict = ?')
      args.push(filter.verdict)
    }
    if (filter.hideSurespam) where.push(`q.verdict <> 'surespam'`)
    const like = (v: string) => `%${v.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)}%`
    if (filter.sender) {
      where.push(`(lower(m.mail_from) LIKE ? ESCAPE '\\' OR lower(coalesce(m.from_header, '')) LIKE ? ESCAPE '\\')`)
      args.push(like(filter.sender), like(filter.sender))
    }
    if (filter.subject) {
      where.push(`lower(coalesce(m.subject, '')) LIKE ? ESCAPE '\\'`)
      args.push(like(filter.subject))
    }
    if (filter.since !== undefined) {
      where.push('q.created_at >= ?')
      args.push(filter.since)
    }
    if (filter.until !== undefined) {
      where.push('q.created_at < ?')
      args.push(filter.until)
    }
    if (filter.before) {
      where.push('(q.created_at < ? OR (q.created_at = ? AND q.id < ?))')
      args.push(filter.before.createdAt, filter.before.createdAt, filter.before.id)
    }
    if (!filter.includeReleased) where.push('q.released_at IS NULL')
    const sql = `${SELECT} ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY q.created_at DESC, q.id DESC LIMIT ?`
    args.push(filter.limit ?? 1000)
    return this.db.prepare(sql).all(...args) as QuarantineEntry[]
  }

  /** Quarantined since a time, by verdict, within a scope (what a client agent's badge shows). */
  counts(f: { orgIds: number[] | null; userId: number | null; since: number }): { spam: number; surespam: number; outbound: number } {
    const where = ['q.created_at >= ?']
    const args: unknown[] = [f.since]
    scopeWhere(where, args, f.orgIds, f.userId)
    const rows = this.db
      .prepare(`SELECT q.verdict, q.direction, count(*) AS n FROM quarantine q WHERE ${where.join(' AND ')} GROUP BY q.verdict, q.direction`)
      .all(...args) as { verdict: string; direction: string; n: number }[]
    const out = { spam: 0, surespam: 0, outbound: 0 }
    for (const r of rows) {
      if (r.direction === 'out') out.outbound += r.n
      else if (r.verdict === 'spam' || r.verdict === 'surespam') out[r.verdict] += r.n
    }
    return out
  }

  get(id: number, orgId?: number): QuarantineEntry {
    const row = this.q.byId.get(id) as QuarantineEntry | undefined
    // A tenant asking for another tenant's entry learns nothing more than "no such entry".
    if (!row || (orgId !== undefined && row.org_id !== orgId)) throw new QuarantineError(`no quarantine entry ${id}`)
    return row
  }

  /** `by`: an end user may not release a virus or a stripped attachment's original. */
  release(id: number, orgId?: number, now = Date.now(), by: 'admin' | 'user' = 'admin'): { deliveryId: number } {
    return this.db.transaction(() => {
      const entry = this.get(id, orgId)
      if (by === 'user' && adminReleaseOnly(entry)) {
        throw new QuarantineError(`quarantine entry ${id} holds ${entry.reason === 'virus' ? 'a virus' : 'a dangerous attachment'}: only an administrator can release it`)
      }
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
