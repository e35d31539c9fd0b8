/*
 * The tracking centre's one search: "where is my mail?". Every SMTP transaction, newest
 * first, whatever became of it:
 * - refused (smtp_refusals, written by moat-tracking): when, at which stage, by which check,
 *   with which words;
 * - accepted (messages): its queue id, verdict and score, and for each recipient the
 *   quarantine or the delivery, with every attempt (delivery_attempts) and the final state.
 *
 * Scoped as everything else: an organisation's admins see its rows, an MSP's its
 * organisations', the appliance admin also what was refused before any recipient was known;
 * an end user (addresses) sees mail to or from their own addresses.
 */
import type { Db } from '../db/database'
import type { Scope } from '../services/accounts'
import { whereIn } from '../db/sql'
import { StoredSettings } from '../services/stored-settings'

/** Stored setting: how many days refusals are kept (0: not recorded at all). */
export const TRACKING_DAYS_SETTING = 'tracking_days'
export const DEFAULT_TRACKING_DAYS = 30

export function trackingDays(db: Db): number {
  return new StoredSettings(db).get(TRACKING_DAYS_SETTING, DEFAULT_TRACKING_DAYS)
}

export interface TrackFilter {
  from?: string
  to?: string
  ip?: string
  since?: number
  until?: number
  queueId?: string
  messageId?: string
  limit?: number
}

export interface TrackedAttempt {
  at: number
  outcome: string
  code: number | null
  response: string | null
  mxHost: string | null
}

export interface TrackedRecipient {
  address: string
  /** quarantined, released, queued, deferred, delivered, bounced, or refused */
  state: string
  detail: string | null
  attempts: TrackedAttempt[]
}

export interface Transaction {
  at: number
  outcome: 'accepted' | 'refused'
  /** the queue id of accepted mail, Haraka's session id of a refusal */
  id: string
  org: string | null
  direction: 'in' | 'out' | null
  clientIp: string | null
  helo: string | null
  mailFrom: string | null
  subject: string | null
  messageIdHeader: string | null
  verdict: string | null
  score: number | null
  /** for a refusal: stage, code, words and the check that refused */
  refusal: { stage: string; code: number; reason: string; by: string } | null
  recipients: TrackedRecipient[]
}

/** Parses "2026-12-01", "2026-12-01T10:00", "2h" or "3d" (ago; "-2h" too), or epoch ms, for --since / --until. */
export function parseTime(text: string, now = Date.now()): number {
  const rel = /^-?(\d+)\s*([mhd])$/.exec(text.trim())
  if (rel) return now - Number(rel[1]) * { m: 60_000, h: 3_600_000, d: 86_400_000 }[rel[2] as 'm' | 'h' | 'd']
  if (/^\d{12,}$/.test(text.trim())) return Number(text)
  const t = Date.parse(text)
  if (Number.isNaN(t)) throw new Error(`"${text}" is not a time: give 2026-12-01, 2026-12-01T10:00, 2h or 3d (ago)`)
  return t
}

export class Tracking {
  constructor(private readonly db: Db) {}

  search(f: TrackFilter, scope: Scope | null, now = Date.now()): Transaction[] {
    const limit = Math.min(Math.max(1, f.limit ?? 100), 1000)
    const since = f.since ?? now - 7 * 86_400_000
    const until = f.until ?? now + 60_000
    const accepted = this.accepted(f, scope, since, until, limit)
    const refused = this.refused(f, scope, since, until, limit)
    return [...accepted, ...refused].sort((a, b) => b.at - a.at).slice(0, limit)
  }

  private accepted(f: TrackFilter, scope: Scope | null, since: number, until: number, limit: number): Transaction[] {
    const where = ['m.received_at BETWEEN ? AND ?']
    const args: unknown[] = [since, until]
    if (f.queueId) where.push('m.queue_id = ?'), args.push(f.queueId.trim())
    if (f.from) where.push('(instr(lower(m.mail_from), ?) > 0 OR instr(lower(coalesce(m.from_header, \'\')), ?) > 0)'), args.push(f.from.toLowerCase(), f.from.toLowerCase())
    if (f.to) where.push('instr(lower(m.rcpt_to), ?) > 0'), args.push(f.to.toLowerCase())
    if (f.ip) where.push('m.client_ip = ?'), args.push(f.ip.trim())
    if (f.messageId) where.push('instr(m.message_id_header, ?) > 0'), args.push(f.messageId.trim().replace(/^<|>$/g, ''))
    if (scope && scope.orgIds !== null) {
      const w = whereIn('m.org_id', scope.orgIds)
      where.push(w.sql), args.push(...w.args)
    } else {
      // All organisations, said so that the (org_id, received_at) index serves the time range.
      where.push('m.org_id IN (SELECT id FROM organisations)')
    }
    if (scope?.userId) {
      // An end user: mail to or from their own addresses only.
      const mine = scope.addresses.map(() => `(instr(lower(m.rcpt_to), ?) > 0 OR lower(m.mail_from) = ?)`).join(' OR ') || '0'
      where.push(`(${mine})`)
      for (const a of scope.addresses) args.push(a, a)
    }
    const rows = this.db
      .prepare(
        `SELECT m.id, m.received_at, m.queue_id, m.direction, m.client_ip, m.helo, m.mail_from, m.rcpt_to, m.subject, m.message_id_header,
           m.verdict, m.score, o.name AS org
         FROM messages m JOIN organisations o ON o.id = m.org_id
         WHERE ${where.join(' AND ')} ORDER BY m.received_at DESC LIMIT ?`,
      )
      .all(...args, limit) as {
      id: number; received_at: number; queue_id: string; direction: 'in' | 'out'; client_ip: string | null; helo: string | null; mail_from: string; rcpt_to: string
      subject: string | null; message_id_header: string | null; verdict: string; score: number; org: string
    }[]
    const quarantine = this.db.prepare(`SELECT rcpt, verdict, released_at FROM quarantine WHERE message_id = ?`)
    const deliveries = this.db.prepare(`SELECT rcpt, reason, state, attempts, last_response, updated_at FROM deliveries WHERE message_id = ?`)
    const attempts = this.db.prepare(`SELECT at, outcome, code, response, mx_host, domain FROM delivery_attempts WHERE message_id = ? ORDER BY at`)
    return rows.map((m) => {
      const q = quarantine.all(m.id) as { rcpt: string; verdict: string; released_at: number | null }[]
      const d = deliveries.all(m.id) as { rcpt: string; reason: string; state: string; attempts: number; last_response: string | null; updated_at: number }[]
      const tries = attempts.all(m.id) as { at: number; outcome: string; code: number | null; response: string | null; mx_host: string | null; domain: string }[]
      const recipients: TrackedRecipient[] = []
      const tried = (rcpt: string) =>
        tries.filter((a) => a.domain === rcpt.slice(rcpt.lastIndexOf('@') + 1)).map((a) => ({ at: a.at, outcome: a.outcome, code: a.code, response: a.response, mxHost: a.mx_host }))
      for (const rcpt of m.rcpt_to.split(', ').filter(Boolean)) {
        const held = q.find((x) => x.rcpt === rcpt)
        const del = d.filter((x) => x.rcpt === rcpt).at(-1)
        if (held && !del) recipients.push({ address: rcpt, state: 'quarantined', detail: held.verdict, attempts: [] })
        else if (del) {
          const state = del.state === 'pending' ? 'queued' : del.state
          recipients.push({ address: rcpt, state: held ? `released, ${state}` : state, detail: del.last_response, attempts: tried(rcpt) })
        } else recipients.push({ address: rcpt, state: 'accepted', detail: null, attempts: [] })
      }
      return {
        at: m.received_at, outcome: 'accepted' as const, id: m.queue_id, org: m.org, direction: m.direction, clientIp: m.client_ip, helo: m.helo, mailFrom: m.mail_from,
        subject: m.subject, messageIdHeader: m.message_id_header, verdict: m.verdict, score: m.score, refusal: null, recipients,
      }
    })
  }

  private refused(f: TrackFilter, scope: Scope | null, since: number, until: number, limit: number): Transaction[] {
    // A refusal has no Message-ID (it never got that far); its "queue id" is Haraka's session id.
    if (f.messageId) return []
    const where = ['r.at BETWEEN ? AND ?']
    const args: unknown[] = [since, until]
    if (f.queueId) where.push('r.session = ?'), args.push(f.queueId.trim())
    if (f.from) where.push("instr(lower(coalesce(r.mail_from, '')), ?) > 0"), args.push(f.from.toLowerCase())
    if (f.to) where.push("instr(lower(coalesce(r.rcpt, '')), ?) > 0"), args.push(f.to.toLowerCase())
    if (f.ip) where.push('r.client_ip = ?'), args.push(f.ip.trim())
    if (scope && scope.orgIds !== null) {
      const w = whereIn('r.org_id', scope.orgIds)
      where.push(w.sql), args.push(...w.args)
    }
    if (scope?.userId) {
      const mine = scope.addresses.map(() => `(lower(r.rcpt) = ? OR lower(r.mail_from) = ?)`).join(' OR ') || '0'
      where.push(`(${mine})`)
      for (const a of scope.addresses) args.push(a, a)
    }
    const rows = this.db
      .prepare(
        `SELECT r.*, o.name AS org FROM smtp_refusals r LEFT JOIN organisations o ON o.id = r.org_id
         WHERE ${where.join(' AND ')} ORDER BY r.at DESC LIMIT ?`,
      )
      .all(...args, limit) as { at: number; session: string; client_ip: string; helo: string | null; mail_from: string | null; rcpt: string | null; stage: string; code: number; reason: string; plugin: string; org: string | null }[]
    return rows.map((r) => ({
      at: r.at, outcome: 'refused' as const, id: r.session, org: r.org, direction: null, clientIp: r.client_ip, helo: r.helo, mailFrom: r.mail_from,
      subject: null, messageIdHeader: null, verdict: null, score: null,
      refusal: { stage: r.stage, code: r.code, reason: r.reason, by: r.plugin },
      recipients: r.rcpt ? [{ address: r.rcpt, state: 'refused', detail: `${r.code} ${r.reason}`, attempts: [] }] : [],
    }))
  }

  /** Retention: refusals older than the setting's days. */
  purge(now = Date.now()): number {
    const days = trackingDays(this.db)
    return this.db.prepare(`DELETE FROM smtp_refusals WHERE at < ?`).run(now - Math.max(1, days) * 86_400_000).changes
  }
}
