/*
 * Spam digests: a message to each user who asked for one (off by default for new accounts),
 * hourly, every four hours or daily, listing what was quarantined for them since the last
 * one — spam only, surespam too if they chose so — grouped by day, newest first, with the
 * sender, subject and score (as Proxmox Mail Gateway's spam report does). Each entry has four
 * links, Deliver, Allow sender, Block sender and Delete, safe against the link scanners that
 * follow every link in mail: a link opens a confirmation page, and only the POST from that
 * page acts. Links are single-use (one action per entry) and expire.
 *
 * The digest comes from the organisation's digest sender (default quarantine@ its first
 * domain), with Date, Message-ID and a one-click List-Unsubscribe (RFC 8058) that turns the
 * digest off. It goes out like any other message to the user: through the mail store
 * (archived) and the delivery outbox, so it survives a restart and reaches the customer's server.
 */
import crypto from 'node:crypto'
import { decodeWords } from 'postal-mime'
import type { Db } from '../db/database'
import type { MailStore } from './mail-store'
import { Quarantine } from './quarantine'
import { SenderLists, senderAddress } from './sender-lists'
import { TenantError } from './tenants'

export type DigestFrequency = 'hourly' | 'every4h' | 'daily'
const INTERVAL: Record<DigestFrequency, number> = { hourly: 3_600_000, every4h: 4 * 3_600_000, daily: 86_400_000 }
export const RELEASE_LINK_DAYS = 7
/** An unsubscribe link outlives the digest it came in by far: people unsubscribe from old mail. */
const UNSUBSCRIBE_LINK_DAYS = 90
const MAX_ENTRIES = 200

/** What a digest link can do to its entry; each is confirmed on a page first. */
export const DIGEST_ACTIONS = ['deliver', 'allow', 'block', 'delete'] as const
export type DigestAction = (typeof DIGEST_ACTIONS)[number]
const ACTION_LABEL: Record<DigestAction, string> = { deliver: 'Deliver', allow: 'Allow sender', block: 'Block sender', delete: 'Delete' }

interface DueUser {
  id: number
  org_id: number
  digest_from: string | null
  first_domain: string | null
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
  score: number
  created_at: number
}

const WEEKDAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday']
const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December']
/** "Monday 7 December 2026" (UTC), the same on every Node.js and ICU build. */
function dayName(ms: number): string {
  const d = new Date(ms)
  return `${WEEKDAYS[d.getUTCDay()]} ${d.getUTCDate()} ${MONTHS[d.getUTCMonth()]} ${d.getUTCFullYear()}`
}

/** A header as a reader sees it: encoded words decoded, on one line. */
export function displayText(s: string | null | undefined): string {
  if (!s) return ''
  try {
    return decodeWords(s).replace(/\s+/g, ' ').trim()
  } catch {
    return s
  }
}


function tokenHash(token: string): string {
  return crypto.createHash('sha256').update(token).digest('hex')
}

function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!)
}

/** A header value on one line, RFC 2047-encoded when it is not plain ASCII. */
export function headerText(s: string): string {
  const line = s.replace(/[\r\n]+/g, ' ').slice(0, 200)
  return /^[\x20-\x7e]*$/.test(line) ? line : `=?UTF-8?B?${Buffer.from(line).toString('base64')}?=`
}

export type ReleaseCheck =
  | { ok: true; quarantineId: number; userId: number; orgId: number; email: string; subject: string | null; sender: string }
  | { ok: false; reason: 'unknown' | 'used' | 'expired' }

export class Digests {
  private readonly q

  constructor(private readonly db: Db) {
    this.q = {
      setPrefs: db.prepare(`UPDATE users SET digest_enabled = ?, digest_frequency = ?, digest_include_surespam = ? WHERE id = ?`),
      user: db.prepare(`SELECT id, org_id, email, digest_enabled, digest_frequency, digest_include_surespam, digest_last_sent_at FROM users WHERE id = ?`),
      enabled: db.prepare(
        `SELECT u.id, u.org_id, u.email, u.digest_frequency, u.digest_include_surespam, u.digest_last_sent_at, o.digest_from,
           (SELECT d.name FROM domains d WHERE d.org_id = o.id ORDER BY d.id LIMIT 1) AS first_domain FROM users u
         JOIN organisations o ON o.id = u.org_id WHERE u.digest_enabled = 1 AND o.suspended_at IS NULL`,
      ),
      entries: db.prepare(
        `SELECT q.id, m.mail_from, m.from_header, m.subject, q.verdict, m.score, q.created_at FROM quarantine q JOIN messages m ON m.id = q.message_id
         WHERE q.user_id = @user AND q.direction = 'in' AND q.released_at IS NULL AND q.created_at > @since
           AND (q.verdict = 'spam' OR @surespam = 1) AND q.reason NOT IN ('virus', 'attachment') ORDER BY q.created_at DESC LIMIT ${MAX_ENTRIES}`,
      ),
      sent: db.prepare(`UPDATE users SET digest_last_sent_at = ? WHERE id = ?`),
      token: db.prepare(`INSERT INTO release_tokens (token_hash, quarantine_id, user_id, created_at, expires_at) VALUES (?, ?, ?, ?, ?)`),
      check: db.prepare(
        `SELECT t.quarantine_id, t.user_id, t.expires_at, t.used_at, m.subject, m.mail_from, m.from_header, q.org_id, u.email FROM release_tokens t
         JOIN quarantine q ON q.id = t.quarantine_id JOIN messages m ON m.id = q.message_id JOIN users u ON u.id = t.user_id WHERE t.token_hash = ?`,
      ),
      use: db.prepare(`UPDATE release_tokens SET used_at = ? WHERE token_hash = ? AND used_at IS NULL`),
      prune: db.prepare(`DELETE FROM release_tokens WHERE expires_at < ?`),
      unsubscribeToken: db.prepare(`INSERT INTO digest_unsubscribe_tokens (token_hash, user_id, expires_at) VALUES (?, ?, ?)`),
      unsubscribeUser: db.prepare(`SELECT t.user_id, u.email, u.org_id, u.digest_enabled FROM digest_unsubscribe_tokens t JOIN users u ON u.id = t.user_id WHERE t.token_hash = ? AND t.expires_at >= ?`),
      turnOff: db.prepare(`UPDATE users SET digest_enabled = 0 WHERE id = ?`),
      pruneUnsubscribe: db.prepare(`DELETE FROM digest_unsubscribe_tokens WHERE expires_at < ?`),
      setFrom: db.prepare(`UPDATE organisations SET digest_from = ? WHERE id = ?`),
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

  /** The address an organisation's digests come from: its own setting, else quarantine@ its first domain. */
  static senderFor(u: Pick<DueUser, 'digest_from' | 'first_domain'>, hostname: string): string {
    return u.digest_from || `quarantine@${u.first_domain ?? hostname}`
  }

  /** Sets the address an organisation's digests come from (null: the default). */
  setSender(orgId: number, address: string | null): void {
    if (address !== null && !/^[^\s@<>"]+@[a-z0-9.-]+\.[a-z]{2,}$/i.test(address)) throw new TenantError(`"${address}" is not an e-mail address`)
    this.q.setFrom.run(address?.toLowerCase() ?? null, orgId)
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
        const unsubscribe = crypto.randomBytes(24).toString('base64url')
        this.db.transaction(() => {
          for (const e of entries) {
            const token = crypto.randomBytes(24).toString('base64url')
            this.q.token.run(tokenHash(token), e.id, u.id, now, now + RELEASE_LINK_DAYS * 86_400_000)
            links.set(e.id, `${opts.publicUrl}/r/${token}`)
          }
          this.q.unsubscribeToken.run(tokenHash(unsubscribe), u.id, now + UNSUBSCRIBE_LINK_DAYS * 86_400_000)
        })()
        const from = Digests.senderFor(u, opts.hostname)
        const subject = `Quarantine: ${entries.length} new message${entries.length === 1 ? '' : 's'} held for you`
        const raw = this.compose(u, entries, links, { ...opts, from, subject, unsubscribe: `${opts.publicUrl}/digest/unsubscribe/${unsubscribe}` }, now)
        await store.accept({
          queueId: `digest-${u.id}-${now}`, direction: 'in', raw, receivedAt: now, clientIp: null, helo: opts.hostname,
          mailFrom: '', fromHeader: `Moat quarantine <${from}>`, subject,
          messageIdHeader: null, bodyText: entries.map((e) => displayText(e.subject)).join('\n'),
          parts: [{ orgId: u.org_id, verdict: 'clean', score: 0, symbols: [], rcpts: [{ address: u.email, userId: u.id, action: 'deliver' }] }],
        })
        sent++
        total += entries.length
      }
      this.q.sent.run(now, u.id)
    }
    this.q.prune.run(now)
    this.q.pruneUnsubscribe.run(now)
    return { sent, entries: total }
  }

  private compose(
    u: DueUser,
    entries: Entry[],
    links: Map<number, string>,
    opts: { publicUrl: string; hostname: string; from: string; subject: string; unsubscribe: string },
    now: number,
  ): Buffer {
    const boundary = `moat-${crypto.randomBytes(8).toString('hex')}`
    const sender = (e: Entry) => displayText(e.from_header) || e.mail_from || '(no sender)'
    const subject = (e: Entry) => displayText(e.subject) || '(no subject)'
    const score = (e: Entry) => e.score.toFixed(1)
    const action = (e: Entry, a: DigestAction) => `${links.get(e.id)}?a=${a}`
    // Newest first (the query's order), one group a day.
    const days = new Map<string, Entry[]>()
    for (const e of entries) {
      const day = dayName(e.created_at)
      days.set(day, [...(days.get(day) ?? []), e])
    }
    const time = (e: Entry) => new Date(e.created_at).toISOString().slice(11, 16)
    const intro = `${entries.length} new message${entries.length === 1 ? ' was' : 's were'} held in your quarantine. Choose what happens to each: you confirm on the page the link opens. Links work once and expire in ${RELEASE_LINK_DAYS} days.`
    const text = [
      intro,
      `Your whole quarantine: ${opts.publicUrl}/quarantine`,
      '',
      ...[...days].flatMap(([day, list]) => [
        `== ${day} (UTC) ==`,
        '',
        ...list.map((e) =>
          [`${time(e)}  ${sender(e)}`, `  ${subject(e)}  [${e.verdict}, score ${score(e)}]`, ...DIGEST_ACTIONS.map((a) => `  ${ACTION_LABEL[a]}: ${action(e, a)}`), ''].join('\n'),
        ),
      ]),
      `You get this digest because it is on in your account. Turn it off: ${opts.unsubscribe}`,
    ].join('\n')
    const button = (href: string, label: string, colour: string) =>
      `<a href="${esc(href)}" style="display:inline-block;padding:3px 8px;margin:1px 2px;border-radius:3px;background:${colour};color:#fff;text-decoration:none;font-size:13px">${esc(label)}</a>`
    const COLOURS: Record<DigestAction, string> = { deliver: '#2e7d32', allow: '#1565c0', block: '#6d4c41', delete: '#b71c1c' }
    const rows = [...days]
      .map(
        ([day, list]) =>
          `<tr><th colspan="4" style="text-align:left;padding:14px 6px 4px;border-bottom:2px solid #ccc;font-size:15px">${esc(day)}</th></tr>` +
          list
            .map(
              (e) =>
                `<tr style="vertical-align:top;border-bottom:1px solid #eee"><td style="padding:6px;color:#555;white-space:nowrap">${time(e)}</td>` +
                `<td style="padding:6px"><div style="font-weight:bold">${esc(subject(e))}</div><div style="color:#555">${esc(sender(e))}</div></td>` +
                `<td style="padding:6px;text-align:right;white-space:nowrap" title="${esc(e.verdict)}">${score(e)}${e.verdict === 'surespam' ? ' <span style="color:#b71c1c">sure</span>' : ''}</td>` +
                `<td style="padding:6px;white-space:nowrap">${DIGEST_ACTIONS.map((a) => button(action(e, a), ACTION_LABEL[a], COLOURS[a])).join('')}</td></tr>`,
            )
            .join(''),
      )
      .join('')
    const html =
      `<!doctype html><html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width"><title>${esc(opts.subject)}</title></head>` +
      `<body style="font-family:system-ui,-apple-system,Segoe UI,sans-serif;color:#222;max-width:900px;margin:0 auto;padding:12px">` +
      `<h1 style="font-size:20px">Your quarantine</h1><p>${esc(intro)}</p>` +
      `<p>${button(`${opts.publicUrl}/quarantine`, 'Open my quarantine', '#37474f')}</p>` +
      `<table style="border-collapse:collapse;width:100%"><thead><tr style="color:#555;font-size:13px"><th style="text-align:left;padding:6px">Time (UTC)</th><th style="text-align:left;padding:6px">Message</th><th style="text-align:right;padding:6px">Score</th><th style="text-align:left;padding:6px">Action</th></tr></thead><tbody>${rows}</tbody></table>` +
      `<p style="color:#777;font-size:12px;margin-top:24px">You get this digest because it is on in your account. <a href="${esc(opts.unsubscribe)}">Turn it off</a>.</p>` +
      `</body></html>`
    const b64 = (s: string) => Buffer.from(s).toString('base64').replace(/.{76}/g, '$&\r\n')
    return Buffer.from(
      [
        `From: Moat quarantine <${opts.from}>`,
        `To: ${u.email}`,
        `Subject: ${headerText(opts.subject)}`,
        `Date: ${new Date(now).toUTCString().replace('GMT', '+0000')}`,
        `Message-ID: <digest-${u.id}-${now}@${opts.hostname}>`,
        'Auto-Submitted: auto-generated',
        `List-Unsubscribe: <${opts.unsubscribe}>`,
        'List-Unsubscribe-Post: List-Unsubscribe=One-Click',
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

  /** What a digest link stands for, without using it (the confirmation page). */
  check(token: string, now = Date.now()): ReleaseCheck {
    const row = this.q.check.get(tokenHash(token)) as
      | { quarantine_id: number; user_id: number; org_id: number; email: string; expires_at: number; used_at: number | null; subject: string | null; mail_from: string; from_header: string | null }
      | undefined
    if (!row) return { ok: false, reason: 'unknown' }
    if (row.used_at) return { ok: false, reason: 'used' }
    if (row.expires_at < now) return { ok: false, reason: 'expired' }
    return { ok: true, quarantineId: row.quarantine_id, userId: row.user_id, orgId: row.org_id, email: row.email, subject: displayText(row.subject) || null, sender: senderAddress(row.from_header, row.mail_from) }
  }

  /**
   * Uses a digest link: once, for one action. Deliver releases; Allow sender lists the sender
   * on the user's own allow list and releases; Block sender lists them on the user's block
   * list and deletes the entry; Delete deletes it (and with it its links).
   */
  redeem(token: string, action: DigestAction = 'deliver', now = Date.now()): ReleaseCheck {
    return this.db.transaction(() => {
      const c = this.check(token, now)
      if (!c.ok) return c
      this.q.use.run(now, tokenHash(token))
      const q = new Quarantine(this.db)
      const e = q.get(c.quarantineId)
      if ((action === 'allow' || action === 'block') && c.sender) new SenderLists(this.db).add(c.orgId, c.userId, action, c.sender)
      if (action === 'deliver' || action === 'allow') {
        if (!e.released_at) q.release(c.quarantineId, undefined, now, 'user')
      } else {
        // The entry goes, and its links with it: a second click finds no link.
        q.remove(c.quarantineId)
      }
      return c
    }).immediate()
  }

  /** Who an unsubscribe link is for (null: not valid or expired), without using it. */
  unsubscribeCheck(token: string, now = Date.now()): { userId: number; email: string; orgId: number; enabled: boolean } | null {
    const row = this.q.unsubscribeUser.get(tokenHash(token), now) as { user_id: number; email: string; org_id: number; digest_enabled: number } | undefined
    return row ? { userId: row.user_id, email: row.email, orgId: row.org_id, enabled: row.digest_enabled === 1 } : null
  }

  /** Turns the digest off for the link's user (idempotent: a second POST changes nothing). */
  unsubscribe(token: string, now = Date.now()): ReturnType<Digests['unsubscribeCheck']> {
    const who = this.unsubscribeCheck(token, now)
    if (who) this.q.turnOff.run(who.userId)
    return who
  }
}
