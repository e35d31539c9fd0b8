/*
 * Spam digests: a message to each user who asked for one (off by default for new accounts),
 * hourly, every four hours or daily, listing what was quarantined for them since the last
 * one — spam only, surespam too if they chose so. Each entry has a release link that is safe
 * against the link scanners that follow every link in mail: it opens a confirmation page, and
 * only the POST from that page releases. Links are single-use and expire.
 *
 * The digest goes out like any other message to the user: through the mail store (archived)
 * and the delivery outbox, so it survives a restart and reaches the customer's server.
 */
import crypto from 'node:crypto'
import type { Db } from '../db/database'
import type { MailStore } from './mail-store'
import { Quarantine } from './quarantine'
import { TenantError } from './tenants'

export type DigestFrequency = 'hourly' | 'every4h' | 'daily'
const INTERVAL: Record<DigestFrequency, number> = { hourly: 3_600_000, every4h: 4 * 3_600_000, daily: 86_400_000 }
export const RELEASE_LINK_DAYS = 7
const MAX_ENTRIES = 200

interface DueUser {
  id: number
  org_id: number
  email: string
  digest_frequency: DigestFrequency
  digest_include_surespam: number
  digest_last_sent_at: number | null
}

interface Entry {
  id: number
  mail_from: string
  from_header: string | null
  subject: string | null
  verdict: string
  created_at: number
}

function tokenHash(token: string): string {
  return crypto.createHash('sha256').update(token).digest('hex')
}

function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!)
}

/** A header value safe to put in a message: one line, encoded when not plain ASCII. */
/** A header value on one line, RFC 2047-encoded when it is not plain ASCII. */
export function headerText(s: string): string {
  const line = s.replace(/[\r\n]+/g, ' ').slice(0, 200)
  return /^[\x20-\x7e]*$/.test(line) ? line : `=?UTF-8?B?${Buffer.from(line).toString('base64')}?=`
}

export type ReleaseCheck =
  | { ok: true; quarantineId: number; userId: number; subject: string | null; sender: string }
  | { ok: false; reason: 'unknown' | 'used' | 'expired' }

export class Digests {
  private readonly q

  constructor(private readonly db: Db) {
    this.q = {
      setPrefs: db.prepare(`UPDATE users SET digest_enabled = ?, digest_frequency = ?, digest_include_surespam = ? WHERE id = ?`),
      user: db.prepare(`SELECT id, org_id, email, digest_enabled, digest_frequency, digest_include_surespam, digest_last_sent_at FROM users WHERE id = ?`),
      enabled: db.prepare(
        `SELECT u.id, u.org_id, u.email, u.digest_frequency, u.digest_include_surespam, u.digest_last_sent_at FROM users u
         JOIN organisations o ON o.id = u.org_id WHERE u.digest_enabled = 1 AND o.suspended_at IS NULL`,
      ),
      entries: db.prepare(
        `SELECT q.id, m.mail_from, m.from_header, m.subject, q.verdict, q.created_at FROM quarantine q JOIN messages m ON m.id = q.message_id
         WHERE q.user_id = @user AND q.direction = 'in' AND q.released_at IS NULL AND q.created_at > @since
           AND (q.verdict = 'spam' OR @surespam = 1) AND q.reason NOT IN ('virus', 'attachment') ORDER BY q.created_at DESC LIMIT ${MAX_ENTRIES}`,
      ),
      sent: db.prepare(`UPDATE users SET digest_last_sent_at = ? WHERE id = ?`),
      token: db.prepare(`INSERT INTO release_tokens (token_hash, quarantine_id, user_id, created_at, expires_at) VALUES (?, ?, ?, ?, ?)`),
      check: db.prepare(
        `SELECT t.quarantine_id, t.user_id, t.expires_at, t.used_at, m.subject, m.mail_from FROM release_tokens t
         JOIN quarantine q ON q.id = t.quarantine_id JOIN messages m ON m.id = q.message_id WHERE t.token_hash = ?`,
      ),
      use: db.prepare(`UPDATE release_tokens SET used_at = ? WHERE token_hash = ? AND used_at IS NULL`),
      prune: db.prepare(`DELETE FROM release_tokens WHERE expires_at < ?`),
    }
  }

  setPreferences(userId: number, prefs: { enabled: boolean; frequency: DigestFrequency; includeSurespam: boolean }): void {
    if (!(prefs.frequency in INTERVAL)) throw new TenantError(`digest frequency must be one of ${Object.keys(INTERVAL).join(', ')}`)
    this.q.setPrefs.run(prefs.enabled ? 1 : 0, prefs.frequency, prefs.includeSurespam ? 1 : 0, userId)
  }

  preferences(userId: number): { enabled: boolean; frequency: DigestFrequency; includeSurespam: boolean; lastSentAt: number | null } {
    const u = this.q.user.get(userId) as DueUser & { digest_enabled: number }
    return { enabled: u.digest_enabled === 1, frequency: u.digest_frequency, includeSurespam: u.digest_include_surespam === 1, lastSentAt: u.digest_last_sent_at }
  }

  /** Sends every digest that is due; returns how many went out. */
  async run(store: MailStore, opts: { publicUrl: string; hostname: string; now?: number }): Promise<{ sent: number; entries: number }> {
    const now = opts.now ?? Date.now()
    let sent = 0
    let total = 0
    for (const u of this.q.enabled.all() as DueUser[]) {
      const interval = INTERVAL[u.digest_frequency]
      // A few minutes' slack, so an hourly job does not skip a digest that is a second early.
      if (u.digest_last_sent_at !== null && now - u.digest_last_sent_at < interval - 5 * 60_000) continue
      const since = u.digest_last_sent_at ?? now - interval
      const entries = this.q.entries.all({ user: u.id, since, surespam: u.digest_include_surespam }) as Entry[]
      if (entries.length) {
        const links = new Map<number, string>()
        this.db.transaction(() => {
          for (const e of entries) {
            const token = crypto.randomBytes(24).toString('base64url')
            this.q.token.run(tokenHash(token), e.id, u.id, now, now + RELEASE_LINK_DAYS * 86_400_000)
            links.set(e.id, `${opts.publicUrl}/r/${token}`)
          }
        })()
        const raw = this.compose(u, entries, links, opts, now)
        await store.accept({
          queueId: `digest-${u.id}-${now}`, direction: 'in', raw, receivedAt: now, clientIp: null, helo: opts.hostname,
          mailFrom: '', fromHeader: `Moat <postmaster@${opts.hostname}>`, subject: `Quarantine digest: ${entries.length} new`,
          messageIdHeader: null, bodyText: entries.map((e) => e.subject ?? '').join('\n'),
          parts: [{ orgId: u.org_id, verdict: 'clean', score: 0, symbols: [], rcpts: [{ address: u.email, userId: u.id, action: 'deliver' }] }],
        })
        sent++
        total += entries.length
      }
      this.q.sent.run(now, u.id)
    }
    this.q.prune.run(now)
    return { sent, entries: total }
  }

  private compose(u: DueUser, entries: Entry[], links: Map<number, string>, opts: { publicUrl: string; hostname: string }, now: number): Buffer {
    const boundary = `moat-${crypto.randomBytes(8).toString('hex')}`
    const from = (e: Entry) => e.from_header || e.mail_from || '(no sender)'
    const text = [
      `${entries.length} new message(s) were held in your quarantine. To have one delivered, open its link and confirm.`,
      `Links work once and expire in ${RELEASE_LINK_DAYS} days. The whole quarantine: ${opts.publicUrl}/quarantine`,
      '',
      ...entries.map((e) => `${new Date(e.created_at).toISOString().slice(0, 16).replace('T', ' ')}  ${from(e)}\n  ${e.subject ?? '(no subject)'}${e.verdict === 'surespam' ? ' [surespam]' : ''}\n  Release: ${links.get(e.id)}\n`),
    ].join('\n')
    const html = `<!doctype html><html><body><p>${entries.length} new message(s) were held in your quarantine. Open a link and confirm to have it delivered; links work once and expire in ${RELEASE_LINK_DAYS} days.</p><table>${entries
      .map((e) => `<tr><td>${esc(from(e))}</td><td>${esc(e.subject ?? '(no subject)')}</td><td><a href="${esc(links.get(e.id)!)}">Release</a></td></tr>`)
      .join('')}</table><p><a href="${esc(opts.publicUrl)}/quarantine">Your quarantine</a></p></body></html>`
    const b64 = (s: string) => Buffer.from(s).toString('base64').replace(/.{76}/g, '$&\r\n')
    return Buffer.from(
      [
        `From: Moat <postmaster@${opts.hostname}>`,
        `To: ${u.email}`,
        `Subject: ${headerText(`Quarantine digest: ${entries.length} new message(s)`)}`,
        `Date: ${new Date(now).toUTCString().replace('GMT', '+0000')}`,
        `Message-ID: <digest-${u.id}-${now}@${opts.hostname}>`,
        'Auto-Submitted: auto-generated',
        'MIME-Version: 1.0',
        `Content-Type: multipart/alternative; boundary="${boundary}"`,
        '',
        `--${boundary}`,
        'Content-Type: text/plain; charset=utf-8',
        'Content-Transfer-Encoding: base64',
        '',
        b64(text),
        `--${boundary}`,
        'Content-Type: text/html; charset=utf-8',
        'Content-Transfer-Encoding: base64',
        '',
        b64(html),
        `--${boundary}--`,
        '',
      ].join('\r\n'),
    )
  }

  /** What a release link stands for, without using it (the confirmation page). */
  check(token: string, now = Date.now()): ReleaseCheck {
    const row = this.q.check.get(tokenHash(token)) as
      | { quarantine_id: number; user_id: number; expires_at: number; used_at: number | null; subject: string | null; mail_from: string }
      | undefined
    if (!row) return { ok: false, reason: 'unknown' }
    if (row.used_at) return { ok: false, reason: 'used' }
    if (row.expires_at < now) return { ok: false, reason: 'expired' }
    return { ok: true, quarantineId: row.quarantine_id, userId: row.user_id, subject: row.subject, sender: row.mail_from }
  }

  /** Uses a release link: once. */
  redeem(token: string, now = Date.now()): ReleaseCheck {
    return this.db.transaction(() => {
      const c = this.check(token, now)
      if (!c.ok) return c
      this.q.use.run(now, tokenHash(token))
      const q = new Quarantine(this.db)
      const e = q.get(c.quarantineId)
      if (!e.released_at) q.release(c.quarantineId, undefined, now, 'user')
      return c
    }).immediate()
  }
}
