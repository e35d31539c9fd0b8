/*
 * Fleet incidents mailed to the MSP: one message when an incident opens and one when it
 * resolves, to the addresses set with 'moat fleet mail'. Mail goes through the appliance's
 * own mail path (the outbox, as digests do), so it is queued, retried and archived like any
 * other. Each event is marked mailed right after its message is stored: a crash between
 * the two could mail it twice, never not at all. Incidents from before the addresses were set are not mailed in a burst.
 */
import crypto from 'node:crypto'
import type { Db } from '../db/database'
import { headerText } from '../services/digests'
import type { MailStore } from '../services/mail-store'
import { StoredSettings } from '../services/stored-settings'
import { FleetError } from './errors'

export const ALERT_MAIL_SETTING = 'fleet_alert_mail'

export interface AlertMail {
  to: string[]
  /** incidents opened before this are not mailed */
  since: number
}

export function setAlertMail(db: Db, to: string[] | null, now = Date.now()): AlertMail | null {
  const settings = new StoredSettings(db)
  if (!to) {
    settings.remove(ALERT_MAIL_SETTING)
    return null
  }
  const bad = to.find((a) => !/^[^\s@<>,]+@[a-z0-9.-]+\.[a-z]{2,}$/i.test(a))
  if (bad !== undefined || !to.length) throw new FleetError(`not an e-mail address: "${bad ?? ''}"`)
  const value = { to: to.map((a) => a.toLowerCase()), since: settings.get<AlertMail | null>(ALERT_MAIL_SETTING, null)?.since ?? now }
  settings.set(ALERT_MAIL_SETTING, value)
  return value
}

interface Pending {
  id: number
  rule: string
  detail: string
  opened_at: number
  resolved_at: number | null
  open_mailed_at: number | null
  host: string
  org: string
  org_id: number
}

export async function mailIncidents(db: Db, store: MailStore, hostname: string, now = Date.now()): Promise<number> {
  const cfg = new StoredSettings(db).get<AlertMail | null>(ALERT_MAIL_SETTING, null)
  if (!cfg?.to.length) return 0
  const pending = db
    .prepare(
      `SELECT i.id, i.rule, i.detail, i.opened_at, i.resolved_at, i.open_mailed_at, h.name AS host, o.name AS org, o.id AS org_id
       FROM fleet_incidents i JOIN fleet_hosts h ON h.id = i.host_id JOIN organisations o ON o.id = h.org_id
       WHERE i.opened_at >= ? AND (i.open_mailed_at IS NULL OR (i.resolved_at IS NOT NULL AND i.resolve_mailed_at IS NULL)) ORDER BY i.id`,
    )
    .all(cfg.since) as Pending[]
  let sent = 0
  for (const i of pending) {
    for (const event of ['open', 'resolve'] as const) {
      if (event === 'open' ? i.open_mailed_at !== null : i.resolved_at === null) continue
      const subject = event === 'open' ? `[Moat fleet] ${i.host} (${i.org}): ${i.detail}` : `[Moat fleet] resolved: ${i.host} (${i.org}) ${i.rule}`
      const at = event === 'open' ? i.opened_at : i.resolved_at!
      const text = [
        event === 'open' ? `An incident opened on ${i.host} of ${i.org}: ${i.detail}.` : `The ${i.rule} incident on ${i.host} of ${i.org} is resolved.`,
        `Rule: ${i.rule}. ${event === 'open' ? 'Opened' : 'Resolved'}: ${new Date(at).toISOString()}.`,
        '',
        'Sent by the Moat fleet console; each incident is mailed once when it opens and once when it resolves.',
      ].join('\r\n')
      const messageId = `fleet-${i.id}-${event}-${crypto.randomBytes(6).toString('hex')}@${hostname}`
      const raw = Buffer.from(
        [
          `From: Moat fleet <postmaster@${hostname}>`,
          `To: ${cfg.to.join(', ')}`,
          `Subject: ${headerText(subject)}`,
          `Date: ${new Date(now).toUTCString().replace('GMT', '+0000')}`,
          `Message-ID: <${messageId}>`,
          'Auto-Submitted: auto-generated',
          'MIME-Version: 1.0',
          'Content-Type: text/plain; charset=utf-8',
          'Content-Transfer-Encoding: 8bit',
          '',
          text,
          '',
        ].join('\r\n'),
      )
      await store.accept({
        queueId: `fleet-${i.id}-${event}`, direction: 'out', raw, receivedAt: now, clientIp: null, helo: hostname,
        mailFrom: '', fromHeader: `Moat fleet <postmaster@${hostname}>`, subject, messageIdHeader: `<${messageId}>`, bodyText: text,
        parts: [{ orgId: i.org_id, verdict: 'clean', score: 0, symbols: [], rcpts: cfg.to.map((address) => ({ address, userId: null, action: 'deliver' as const })) }],
      })
      db.prepare(`UPDATE fleet_incidents SET ${event === 'open' ? 'open_mailed_at' : 'resolve_mailed_at'} = ? WHERE id = ?`).run(now, i.id)
      sent++
    }
  }
  return sent
}
