/*
 * Password reset by e-mail. Asking never says whether the address has an account (no
 * enumeration) and is throttled per address; the link is single-use, expires in an hour, and
 * only its hash is stored. Setting the new password ends every session of the account.
 * The message goes out through the mail store and the outbox like any other.
 */
import crypto from 'node:crypto'
import type { Db } from '../db/database'
import type { MailStore } from './mail-store'
import { hashPassword } from './passwords'
import { TenantError } from './tenants'

export const RESET_LINK_MINUTES = 60
const MAX_REQUESTS_PER_HOUR = 3

function tokenHash(token: string): string {
  return crypto.createHash('sha256').update(token).digest('hex')
}

export class PasswordReset {
  constructor(private readonly db: Db) {}

  private find(email: string): { kind: 'admin' | 'user'; id: number; org_id: number | null; email: string } | null {
    const e = email.trim().toLowerCase()
    const admin = this.db.prepare(`SELECT id, email FROM admins WHERE email = ?`).get(e) as { id: number; email: string } | undefined
    if (admin) return { kind: 'admin', id: admin.id, org_id: null, email: admin.email }
    const user = this.db
      .prepare(`SELECT u.id, u.email, u.org_id FROM users u JOIN organisations o ON o.id = u.org_id WHERE u.email = ? AND o.suspended_at IS NULL`)
      .get(e) as { id: number; email: string; org_id: number } | undefined
    return user ? { kind: 'user', ...user } : null
  }

  /** Sends a reset link if the address has an account; says nothing either way. */
  async request(email: string, store: MailStore, opts: { publicUrl: string; hostname: string; now?: number }): Promise<void> {
    const now = opts.now ?? Date.now()
    const key = `reset:${email.trim().toLowerCase()}`
    const recent = (this.db.prepare(`SELECT count(*) AS n FROM login_failures WHERE key = ? AND at > ?`).get(key, now - 3_600_000) as { n: number }).n
    this.db.prepare(`INSERT INTO login_failures (key, at) VALUES (?, ?)`).run(key, now)
    const who = this.find(email)
    if (!who || recent >= MAX_REQUESTS_PER_HOUR) return
    const token = crypto.randomBytes(24).toString('base64url')
    this.db
      .prepare(`INSERT INTO password_resets (token_hash, kind, principal_id, created_at, expires_at) VALUES (?, ?, ?, ?, ?)`)
      .run(tokenHash(token), who.kind, who.id, now, now + RESET_LINK_MINUTES * 60_000)
    const link = `${opts.publicUrl}/reset/${token}`
    const orgId = who.org_id ?? (this.db.prepare(`SELECT id FROM organisations ORDER BY id LIMIT 1`).get() as { id: number } | undefined)?.id
    if (orgId === undefined) return // no organisation yet: nothing can carry the message; the CLI can reset instead
    const raw = Buffer.from(
      [
        `From: Moat <postmaster@${opts.hostname}>`,
        `To: ${who.email}`,
        'Subject: Reset your Moat password',
        `Date: ${new Date(now).toUTCString().replace('GMT', '+0000')}`,
        `Message-ID: <reset-${now}-${who.id}@${opts.hostname}>`,
        'Auto-Submitted: auto-generated',
        'Content-Type: text/plain; charset=utf-8',
        '',
        `Someone (hopefully you) asked to reset the password of ${who.email} on Moat.`,
        '',
        `To choose a new one, open this link within ${RESET_LINK_MINUTES} minutes; it works once:`,
        link,
        '',
        'If it was not you, ignore this message: your password stays as it is.',
        '',
      ].join('\r\n'),
    )
    await store.accept({
      queueId: `reset-${who.kind}-${who.id}-${now}`, direction: 'in', raw, receivedAt: now, clientIp: null, helo: opts.hostname,
      mailFrom: '', fromHeader: `Moat <postmaster@${opts.hostname}>`, subject: 'Reset your Moat password', messageIdHeader: null,
      bodyText: 'password reset', parts: [{ orgId, verdict: 'clean', score: 0, symbols: [], rcpts: [{ address: who.email, userId: who.kind === 'user' ? who.id : null, action: 'deliver' }] }],
    })
  }

  /** Is this link usable? (The page that asks for the new password.) */
  valid(token: string, now = Date.now()): boolean {
    const row = this.db.prepare(`SELECT expires_at, used_at FROM password_resets WHERE token_hash = ?`).get(tokenHash(token)) as { expires_at: number; used_at: number | null } | undefined
    return !!row && !row.used_at && row.expires_at >= now
  }

  /** Sets the new password with a link, once; ends the account's sessions. */
  async complete(token: string, password: string, now = Date.now()): Promise<boolean> {
    let hash: string
    try {
      hash = await hashPassword(password)
    } catch (err) {
      throw new TenantError((err as Error).message)
    }
    return this.db.transaction(() => {
      const row = this.db.prepare(`SELECT kind, principal_id, expires_at, used_at FROM password_resets WHERE token_hash = ?`).get(tokenHash(token)) as
        | { kind: 'admin' | 'user'; principal_id: number; expires_at: number; used_at: number | null }
        | undefined
      if (!row || row.used_at || row.expires_at < now) return false
      this.db.prepare(`UPDATE password_resets SET used_at = ? WHERE token_hash = ?`).run(now, tokenHash(token))
      this.db.prepare(`UPDATE ${row.kind === 'admin' ? 'admins' : 'users'} SET password_hash = ? WHERE id = ?`).run(hash, row.principal_id)
      this.db.prepare(`DELETE FROM sessions WHERE kind = ? AND principal_id = ?`).run(row.kind, row.principal_id)
      this.db.prepare(`INSERT INTO audit_log (at, actor, org_id, action, detail) VALUES (?, ?, NULL, 'password-reset', '')`).run(now, `${row.kind}:${row.principal_id}`)
      return true
    }).immediate()
  }
}
