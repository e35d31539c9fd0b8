/*
 * Web Push for the desktop notifier (web/routes/notifier.tsx): each subscribed browser gets
 * "N new spam, M surespam" at the interval its user chose, when there is anything new,
 * through the browser vendor's push service, signed with the appliance's VAPID key pair
 * (made at first start, never shipped). Where the appliance cannot reach the push service,
 * the open app polls /api/v1/counts instead; the user chooses in the app.
 *
 * A subscription names a URL the appliance will POST to, so only https endpoints of the
 * known push services are accepted (no request forgery towards the customer's network).
 */
import type https from 'node:https'
import webpush from 'web-push'
import type { Db } from '../db/database'
import { Quarantine } from '../services/quarantine'
import { TenantError } from '../services/tenants'

/** The push services of Chrome/Edge (FCM, WNS), Firefox and Safari. */
const PUSH_SERVICES = /^https:\/\/([a-z0-9-]+\.)*(fcm\.googleapis\.com|android\.googleapis\.com|push\.services\.mozilla\.com|notify\.windows\.com|push\.apple\.com)(:443)?\//i

export interface PushSubscriptionInput {
  endpoint: string
  keys: { p256dh: string; auth: string }
}

export interface PushOptions {
  /** Which endpoints may be subscribed; the known push services by default (tests add loopback). */
  endpointAllowed?: (url: string) => boolean
  /** The HTTPS agent pushes go through (tests trust their own push service's certificate). */
  agent?: https.Agent
}

export class PushNotifier {
  private readonly endpointAllowed: (url: string) => boolean

  constructor(
    private readonly db: Db,
    private readonly opts: PushOptions = {},
  ) {
    this.endpointAllowed = opts.endpointAllowed ?? ((url) => PUSH_SERVICES.test(url))
  }

  /** The appliance's VAPID key pair: made the first time it is asked for, then kept. */
  keys(): { publicKey: string; privateKey: string } {
    const get = (k: string) => (this.db.prepare(`SELECT value FROM settings WHERE key = ?`).get(k) as { value: string } | undefined)?.value
    const pub = get('vapid_public_key')
    const priv = get('vapid_private_key')
    if (pub && priv) return { publicKey: pub, privateKey: priv }
    const made = webpush.generateVAPIDKeys()
    const put = this.db.prepare(`INSERT OR IGNORE INTO settings (key, value) VALUES (?, ?)`)
    this.db.transaction(() => {
      put.run('vapid_public_key', made.publicKey)
      put.run('vapid_private_key', made.privateKey)
    })()
    // Another process may have made its pair first: whatever is stored is the pair.
    return { publicKey: get('vapid_public_key')!, privateKey: get('vapid_private_key')! }
  }

  subscribe(userId: number, sub: PushSubscriptionInput, intervalMinutes: number, now = Date.now()): void {
    const endpoint = String(sub?.endpoint ?? '')
    if (endpoint.length > 2000 || !this.endpointAllowed(endpoint)) throw new TenantError('the endpoint is not a known push service')
    const p256dh = String(sub.keys?.p256dh ?? '')
    const auth = String(sub.keys?.auth ?? '')
    if (!/^[A-Za-z0-9_-]{80,100}$/.test(p256dh) || !/^[A-Za-z0-9_-]{16,32}$/.test(auth)) throw new TenantError('the subscription keys are not valid')
    const minutes = Math.round(Number(intervalMinutes))
    if (!(minutes >= 5 && minutes <= 1440)) throw new TenantError('the interval must be 5 to 1440 minutes')
    this.db
      .prepare(
        `INSERT INTO push_subscriptions (user_id, endpoint, p256dh, auth, interval_minutes, created_at, last_sent_at) VALUES (?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (endpoint) DO UPDATE SET user_id = excluded.user_id, p256dh = excluded.p256dh, auth = excluded.auth, interval_minutes = excluded.interval_minutes`,
      )
      .run(userId, endpoint, p256dh, auth, minutes, now, now)
  }

  /** Removes one of this user's subscriptions; false if there was none. */
  unsubscribe(userId: number, endpoint: string): boolean {
    return this.db.prepare(`DELETE FROM push_subscriptions WHERE user_id = ? AND endpoint = ?`).run(userId, endpoint).changes > 0
  }

  /**
   * Sends every notification that is due: for each subscription whose interval has passed,
   * the spam and surespam quarantined for its user since it was last told, if any. A push
   * service that says the subscription is gone (404, 410) loses it here too.
   */
  async run(opts: { subject: string; now?: number; timeoutMs?: number }): Promise<{ sent: number; gone: number; failed: number }> {
    const now = opts.now ?? Date.now()
    const keys = this.keys()
    const quarantine = new Quarantine(this.db)
    const gone = this.db.prepare(`DELETE FROM push_subscriptions WHERE id = ?`)
    const told = this.db.prepare(`UPDATE push_subscriptions SET last_sent_at = ? WHERE id = ?`)
    const due = this.db
      .prepare(
        `SELECT s.id, s.endpoint, s.p256dh, s.auth, s.last_sent_at, u.id AS user_id, u.org_id FROM push_subscriptions s JOIN users u ON u.id = s.user_id
         WHERE s.last_sent_at + s.interval_minutes * 60000 <= ?`,
      )
      .all(now) as { id: number; endpoint: string; p256dh: string; auth: string; last_sent_at: number; user_id: number; org_id: number }[]
    const out = { sent: 0, gone: 0, failed: 0 }
    for (const s of due) {
      const counts = quarantine.counts({ orgIds: [s.org_id], userId: s.user_id, since: s.last_sent_at })
      if (counts.spam + counts.surespam > 0) {
        const payload = JSON.stringify({ title: notificationTitle(counts), body: 'Open your quarantine', url: '/quarantine', spam: counts.spam, surespam: counts.surespam })
        try {
          await webpush.sendNotification({ endpoint: s.endpoint, keys: { p256dh: s.p256dh, auth: s.auth } }, payload, {
            vapidDetails: { subject: opts.subject, publicKey: keys.publicKey, privateKey: keys.privateKey },
            TTL: 3600,
            timeout: opts.timeoutMs ?? 10_000,
            ...(this.opts.agent ? { agent: this.opts.agent } : {}),
          })
          out.sent++
        } catch (err) {
          const status = (err as { statusCode?: number }).statusCode
          if (status === 404 || status === 410) {
            gone.run(s.id)
            out.gone++
            continue
          }
          // Unreachable or refusing: tried again next round, with the same counts and more.
          out.failed++
          continue
        }
      }
      told.run(now, s.id)
    }
    return out
  }
}

/** "3 new spam, 1 surespam": what the notification says. */
export function notificationTitle(c: { spam: number; surespam: number }): string {
  return `${c.spam} new spam, ${c.surespam} surespam`
}
