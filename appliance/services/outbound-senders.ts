/*
 * Outbound senders: how much each one sent this hour and how much of it was spam or virus;
 * a sender over its organisation's limits is held (its mail stays queued, not sent) and the
 * organisation's admins get an alert. A compromised mailbox then stops at the limit instead
 * of getting the appliance's own addresses blocklisted.
 *
 * record() runs inside the group commit that accepts the message, so the count and the hold
 * are exactly as durable as the message.
 */
import type { Db } from '../db/database'
import { TenantError } from './tenants'

const HOUR_MS = 3_600_000

export interface HeldSender {
  id: number
  org_id: number
  org: string
  address: string
  reason: string
  held_at: number
  released_at: number | null
}

export class OutboundSenders {
  private readonly q

  constructor(private readonly db: Db) {
    this.q = {
      count: db.prepare(
        `INSERT INTO sender_counts (org_id, address, hour, messages, spam) VALUES (@org, @address, @hour, 1, @spam)
         ON CONFLICT (org_id, address, hour) DO UPDATE SET messages = messages + 1, spam = spam + @spam
         RETURNING messages, spam`,
      ),
      limits: db.prepare(`SELECT outbound_hourly_limit, outbound_spam_limit FROM organisations WHERE id = ?`),
      active: db.prepare(`SELECT id FROM held_senders WHERE org_id = ? AND address = ? AND released_at IS NULL`),
      hold: db.prepare(`INSERT INTO held_senders (org_id, address, reason, held_at) VALUES (?, ?, ?, ?)`),
      alert: db.prepare(`INSERT INTO alerts (org_id, kind, message, created_at) VALUES (?, ?, ?, ?)`),
      list: db.prepare(
        `SELECT h.*, o.name AS org FROM held_senders h JOIN organisations o ON o.id = h.org_id
         WHERE (@all OR h.released_at IS NULL) AND (@org IS NULL OR h.org_id = @org) ORDER BY h.held_at DESC`,
      ),
      release: db.prepare(`UPDATE held_senders SET released_at = ? WHERE org_id = ? AND address = ? AND released_at IS NULL`),
      unholdDeliveries: db.prepare(
        `UPDATE deliveries SET held = 0, updated_at = @now WHERE held = 1 AND org_id = @org AND message_id IN
           (SELECT id FROM messages WHERE org_id = @org AND direction = 'out' AND (mail_from = @address OR sender_login = @address))`,
      ),
      orgByName: db.prepare(`SELECT id FROM organisations WHERE name = ?`),
      prune: db.prepare(`DELETE FROM sender_counts WHERE hour < ?`),
    }
  }

  /** Counts one outbound message; says whether its deliveries must be held. Call inside a transaction. */
  record(orgId: number, address: string, spam: boolean, now = Date.now()): { held: boolean } {
    const who = address.toLowerCase()
    const c = this.q.count.get({ org: orgId, address: who, hour: Math.floor(now / HOUR_MS), spam: spam ? 1 : 0 }) as { messages: number; spam: number }
    if (this.q.active.get(orgId, who)) return { held: true }
    const lim = this.q.limits.get(orgId) as { outbound_hourly_limit: number; outbound_spam_limit: number }
    let reason: string | null = null
    if (c.spam >= lim.outbound_spam_limit) reason = `${c.spam} spam or virus messages within an hour (limit ${lim.outbound_spam_limit})`
    else if (c.messages > lim.outbound_hourly_limit) reason = `${c.messages} messages within an hour (limit ${lim.outbound_hourly_limit})`
    if (!reason) return { held: false }
    this.q.hold.run(orgId, who, reason, now)
    this.q.alert.run(orgId, 'sender-held', `Outbound mail from ${who} is held: ${reason}. Release it with "moat sender release ${who}" once the account is safe.`, now)
    // The message that crossed the spam limit is itself in the outbound quarantine; the one
    // that crossed the rate limit is held with every later one.
    return { held: !spam }
  }

  /**
   * Holds a sender by hand (or for the own-IP blocklist watch); false: held already. Whoever
   * asks, the address is checked here.
   */
  hold(orgId: number, address: string, reason: string, now = Date.now()): boolean {
    const who = address.trim().toLowerCase()
    if (!/^[^\s@]+@[^\s@]+$/.test(who)) throw new TenantError(`"${address}" is not a sender address`)
    if (this.q.active.get(orgId, who)) return false
    this.q.hold.run(orgId, who, reason, now)
    this.q.alert.run(orgId, 'sender-held', `Outbound mail from ${who} is held: ${reason}.`, now)
    return true
  }

  /** Held senders (all: released ones too), of one organisation or every one. */
  list(all = false, orgId: number | null = null): HeldSender[] {
    return this.q.list.all({ all: all ? 1 : 0, org: orgId }) as HeldSender[]
  }

  isHeld(orgId: number, address: string): boolean {
    return !!this.q.active.get(orgId, address.trim().toLowerCase())
  }

  /** Releases a held sender; its held mail goes out. Returns how many deliveries were freed. */
  release(address: string, orgName?: string, now = Date.now()): number {
    const who = address.trim().toLowerCase()
    const rows = this.list().filter((h) => h.address === who && (!orgName || h.org === orgName))
    if (!rows.length) throw new TenantError(`${address} is not held`)
    let freed = 0
    this.db.transaction(() => {
      for (const h of rows) {
        this.q.release.run(now, h.org_id, who)
        freed += this.q.unholdDeliveries.run({ now, org: h.org_id, address: who }).changes
      }
    })()
    return freed
  }

  prune(olderThanMs: number, now = Date.now()): number {
    return this.q.prune.run(Math.floor((now - olderThanMs) / HOUR_MS)).changes
  }
}
