/*
 * RCPT TO resolution on the SMTP hot path: one indexed query per recipient, always against
 * the live database, so provisioning changes apply to the next RCPT without a restart.
 */
import type { Db } from '../db/database'

export type Resolution =
  | { ok: true; orgId: number; domainId: number; userId: number | null; address: string; tagMode: boolean }
  | { ok: false; reason: 'unknown-domain' | 'unknown-user' | 'suspended' }
  /** A recipient Moat does not know, of a domain whose own server is to be asked (smtp/callout.ts). */
  | { ok: false; reason: 'verify'; orgId: number; domainId: number; address: string; tagMode: boolean; host: string; port: number }

export class Recipients {
  private readonly lookup

  constructor(db: Db) {
    this.lookup = db.prepare(
      `SELECT d.id AS domain_id, d.org_id, d.catch_all, d.tag_mode, d.verify_recipients, d.deliver_host, d.deliver_port, o.suspended_at,
         (SELECT u.id FROM users u WHERE u.email = @email) AS user_id,
         (SELECT a.user_id FROM aliases a WHERE a.address = @email) AS alias_user_id
       FROM domains d JOIN organisations o ON o.id = d.org_id WHERE d.name = @domain`,
    )
  }

  resolve(user: string, host: string): Resolution {
    const domain = host.toLowerCase().replace(/\.$/, '')
    const email = `${user.toLowerCase()}@${domain}`
    const row = this.lookup.get({ email, domain }) as
      | { domain_id: number; org_id: number; catch_all: number; tag_mode: number; verify_recipients: number; deliver_host: string; deliver_port: number; suspended_at: number | null; user_id: number | null; alias_user_id: number | null }
      | undefined
    if (!row) return { ok: false, reason: 'unknown-domain' }
    if (row.suspended_at) return { ok: false, reason: 'suspended' }
    const userId = row.user_id ?? row.alias_user_id
    if (userId === null && row.verify_recipients) {
      return { ok: false, reason: 'verify', orgId: row.org_id, domainId: row.domain_id, address: email, tagMode: row.tag_mode === 1, host: row.deliver_host, port: row.deliver_port }
    }
    if (userId === null && !row.catch_all) return { ok: false, reason: 'unknown-user' }
    return { ok: true, orgId: row.org_id, domainId: row.domain_id, userId, address: email, tagMode: row.tag_mode === 1 }
  }
}
