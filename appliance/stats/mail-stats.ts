/*
 * Mail counted for the people who look at it: per day for the Statistics page and the admin
 * API, per hour and "today" for the home page. Everything is counted from the archive's
 * message rows (one per organisation a message was for), the quarantine and the outbox, over
 * a scope: the organisations an admin may see, or an end user's own addresses.
 */
import type { Db } from '../db/database'
import { whereIn } from '../db/sql'
import type { Scope } from '../services/accounts'

export const DAY = 86_400_000
export const HOUR = 3_600_000
export const VERDICTS = ['clean', 'spam', 'surespam'] as const
export type Verdict = (typeof VERDICTS)[number]

export interface DailyStats {
  /** YYYY-MM-DD (UTC), oldest first */
  days: string[]
  in: Record<Verdict, number[]>
  out: Record<Verdict, number[]>
  viruses: number[]
}

export interface HourlyStats {
  /** the start of each hour, ms */
  hours: number[]
  in: Record<Verdict, number[]>
  out: Record<Verdict, number[]>
}

export interface Today {
  since: number
  inbound: number
  outbound: number
  spam: number
  surespam: number
  viruses: number
  /** quarantine entries not released (all, not only today's) */
  quarantineWaiting: number
  /** deliveries to the customer's server or out to the world that are retrying or gave up today */
  deferred: number
  bounced: number
}

export interface TopRow {
  who: string
  n: number
  spam: number
}

interface Clause {
  sql: string
  args: unknown[]
}

/** A scope as a WHERE clause: the organisations (a column IN the list; null: no limit) and, for an end user, what is theirs. */
function scopeClause(orgColumn: string, orgIds: number[] | null, own: Clause | null): Clause {
  const parts: string[] = []
  const args: unknown[] = []
  if (orgIds) {
    const w = whereIn(orgColumn, orgIds)
    parts.push(w.sql)
    args.push(...w.args)
  }
  if (own) {
    parts.push(own.sql)
    args.push(...own.args)
  }
  return { sql: parts.length ? parts.join(' AND ') : '1', args }
}

/** An end user's own: one of their addresses in a column or (a comma list, as messages.rcpt_to has) in a list column. */
function addressClause(addresses: string[], single: string, list?: string): Clause {
  const mine = addresses.map((a) => a.toLowerCase())
  if (!mine.length) return { sql: '0', args: [] }
  if (!list) return { sql: `lower(${single}) IN (${mine.map(() => '?').join(', ')})`, args: mine }
  return {
    sql: `(${mine.map(() => `lower(${single}) = ? OR instr(',' || replace(lower(${list}), ' ', '') || ',', ?) > 0`).join(' OR ')})`,
    args: mine.flatMap((a) => [a, `,${a},`]),
  }
}

/**
 * Message rows (alias m) the scope may see: mail from or to an end user's addresses. The
 * whole appliance is every organisation named, so SQLite walks the (org_id, received_at)
 * index instead of the whole archive.
 */
function messageScope(scope: Pick<Scope, 'orgIds' | 'userId' | 'addresses'>, allOrgs: () => number[]): Clause {
  return scopeClause('m.org_id', scope.orgIds ?? allOrgs(), scope.userId === null ? null : addressClause(scope.addresses, 'm.mail_from', 'm.rcpt_to'))
}

/** Local midnight: "today" as the appliance's clock has it. */
export function startOfToday(now = Date.now()): number {
  const d = new Date(now)
  d.setHours(0, 0, 0, 0)
  return d.getTime()
}

const empty = (n: number): Record<Verdict, number[]> => ({ clean: Array(n).fill(0), spam: Array(n).fill(0), surespam: Array(n).fill(0) })

export class MailStats {
  private readonly allOrgs: () => number[]

  constructor(private readonly db: Db) {
    const ids = db.prepare(`SELECT id FROM organisations`).pluck()
    this.allOrgs = () => ids.all() as number[]
  }

  /** The last `days` UTC days, today included. */
  daily(scope: Pick<Scope, 'orgIds' | 'userId' | 'addresses'>, days: number, now = Date.now()): DailyStats {
    const today = Math.floor(now / DAY)
    const first = today - days + 1
    const s = messageScope(scope, this.allOrgs)
    const out: DailyStats = { days: [], in: empty(days), out: empty(days), viruses: Array(days).fill(0) }
    for (let i = 0; i < days; i++) out.days.push(new Date((first + i) * DAY).toISOString().slice(0, 10))
    const rows = this.db
      .prepare(`SELECT m.received_at / ${DAY} AS day, m.direction, m.verdict, count(*) AS n FROM messages m WHERE m.received_at >= ? AND ${s.sql} GROUP BY 1, 2, 3`)
      .all(first * DAY, ...s.args) as { day: number; direction: 'in' | 'out'; verdict: Verdict; n: number }[]
    for (const r of rows) if (r.day >= first && r.day <= today) out[r.direction][r.verdict][r.day - first] += r.n
    const viruses = this.db
      .prepare(`SELECT q.created_at / ${DAY} AS day, count(*) AS n FROM quarantine q JOIN messages m ON m.id = q.message_id WHERE q.created_at >= ? AND q.reason = 'virus' AND ${s.sql} GROUP BY 1`)
      .all(first * DAY, ...s.args) as { day: number; n: number }[]
    for (const r of viruses) if (r.day >= first && r.day <= today) out.viruses[r.day - first] += r.n
    return out
  }

  /** The last 24 hours, an hour a bucket, the current hour last. */
  hourly(scope: Pick<Scope, 'orgIds' | 'userId' | 'addresses'>, now = Date.now()): HourlyStats {
    const last = Math.floor(now / HOUR)
    const first = last - 23
    const s = messageScope(scope, this.allOrgs)
    const out: HourlyStats = { hours: Array.from({ length: 24 }, (_, i) => (first + i) * HOUR), in: empty(24), out: empty(24) }
    const rows = this.db
      .prepare(`SELECT m.received_at / ${HOUR} AS hour, m.direction, m.verdict, count(*) AS n FROM messages m WHERE m.received_at >= ? AND ${s.sql} GROUP BY 1, 2, 3`)
      .all(first * HOUR, ...s.args) as { hour: number; direction: 'in' | 'out'; verdict: Verdict; n: number }[]
    for (const r of rows) if (r.hour >= first && r.hour <= last) out[r.direction][r.verdict][r.hour - first] += r.n
    return out
  }

  /** Today's numbers since `since` (the home page passes local midnight). */
  today(scope: Pick<Scope, 'orgIds' | 'userId' | 'addresses' | 'surespam'>, since: number): Today {
    const s = messageScope(scope, this.allOrgs)
    const counts = this.db
      .prepare(`SELECT m.direction, m.verdict, count(*) AS n FROM messages m WHERE m.received_at >= ? AND ${s.sql} GROUP BY 1, 2`)
      .all(since, ...s.args) as { direction: 'in' | 'out'; verdict: Verdict; n: number }[]
    const sum = (f: (r: (typeof counts)[number]) => boolean) => counts.filter(f).reduce((a, r) => a + r.n, 0)
    const q = this.quarantineWhere(scope)
    const viruses = this.db.prepare(`SELECT count(*) FROM quarantine q WHERE q.created_at >= ? AND q.reason = 'virus' AND ${q.sql}`).pluck().get(since, ...q.args) as number
    const waiting = this.db
      .prepare(`SELECT count(*) FROM quarantine q WHERE q.released_at IS NULL AND ${q.sql}${scope.surespam ? '' : ` AND q.verdict <> 'surespam'`}`)
      .pluck()
      .get(...q.args) as number
    const d = this.deliveryWhere(scope)
    const problems = this.db
      .prepare(`SELECT d.state, count(*) AS n FROM deliveries d WHERE d.updated_at >= ? AND d.state IN ('deferred', 'bounced') AND ${d.sql} GROUP BY 1`)
      .all(since, ...d.args) as { state: 'deferred' | 'bounced'; n: number }[]
    return {
      since,
      inbound: sum((r) => r.direction === 'in'),
      outbound: sum((r) => r.direction === 'out'),
      spam: sum((r) => r.direction === 'in' && r.verdict === 'spam'),
      surespam: sum((r) => r.direction === 'in' && r.verdict === 'surespam'),
      viruses,
      quarantineWaiting: waiting,
      deferred: problems.find((p) => p.state === 'deferred')?.n ?? 0,
      bounced: problems.find((p) => p.state === 'bounced')?.n ?? 0,
    }
  }

  /** The busiest senders or recipients since a time, with how many of theirs were spam. */
  top(scope: Pick<Scope, 'orgIds' | 'userId' | 'addresses'>, who: 'sender' | 'recipient' | 'outbound-sender', since: number, limit = 10): TopRow[] {
    const s = messageScope(scope, this.allOrgs)
    const col = who === 'sender' ? 'm.mail_from' : who === 'recipient' ? 'm.rcpt_to' : 'coalesce(m.sender_login, m.mail_from)'
    return this.db
      .prepare(`SELECT ${col} AS who, count(*) AS n, sum(m.verdict <> 'clean') AS spam FROM messages m WHERE m.received_at >= ? AND m.direction = ? AND ${s.sql} GROUP BY 1 ORDER BY n DESC LIMIT ?`)
      .all(since, who === 'outbound-sender' ? 'out' : 'in', ...s.args, limit) as TopRow[]
  }

  private quarantineWhere(scope: Pick<Scope, 'orgIds' | 'userId'>): Clause {
    return scopeClause('q.org_id', scope.orgIds, scope.userId === null ? null : { sql: 'q.user_id = ?', args: [scope.userId] })
  }

  private deliveryWhere(scope: Pick<Scope, 'orgIds' | 'userId' | 'addresses'>): Clause {
    return scopeClause('d.org_id', scope.orgIds, scope.userId === null ? null : addressClause(scope.addresses, 'd.rcpt'))
  }
}
