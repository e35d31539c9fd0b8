/*
 * Alerts for admins: a sender held for spam or volume, the appliance's own address listed on
 * (or removed from) a blocklist. Organisation alerts are seen by that organisation's admins
 * and those above them; appliance alerts (no organisation) by appliance admins only. An alert
 * stays on every page's banner until someone acknowledges it.
 */
import type { Db } from '../db/database'
import type { Scope } from './accounts'
import { whereIn } from '../db/sql'

export interface Alert {
  id: number
  org_id: number | null
  org: string | null
  kind: string
  message: string
  created_at: number
  acknowledged_at: number | null
}

export class Alerts {
  constructor(private readonly db: Db) {}

  /** Open (or all) alerts a scope may see; null scope = everything (the CLI). */
  list(scope: Scope | null, opts: { all?: boolean; limit?: number } = {}): Alert[] {
    const where: string[] = []
    const args: unknown[] = []
    if (!opts.all) where.push('a.acknowledged_at IS NULL')
    if (scope && scope.orgIds !== null) {
      const w = whereIn('a.org_id', scope.orgIds)
      where.push(w.sql)
      args.push(...w.args)
    }
    args.push(opts.limit ?? 200)
    return this.db
      .prepare(
        `SELECT a.*, o.name AS org FROM alerts a LEFT JOIN organisations o ON o.id = a.org_id
         ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY a.id DESC LIMIT ?`,
      )
      .all(...args) as Alert[]
  }

  acknowledge(id: number, scope: Scope | null, now = Date.now()): boolean {
    if (scope && !this.list(scope).some((a) => a.id === id)) return false
    return this.db.prepare(`UPDATE alerts SET acknowledged_at = ? WHERE id = ? AND acknowledged_at IS NULL`).run(now, id).changes > 0
  }
}
