/*
 * Fleet alerts: every minute the console looks at each host against the alert rules (a host
 * not heard from, a file system filling up). A rule that starts to hold opens an incident:
 * one admin alert for the host's organisation and one JSON POST to the MSP's webhook (its
 * ticketing system); when it stops holding, the incident is resolved and the webhook hears
 * that once too. A webhook that fails is tried again at the next run, so each event is sent
 * at least once and an incident is never opened twice.
 */
import type { Db } from '../db/database'
import { StoredSettings } from '../services/stored-settings'
import { Fleet, OFFLINE_MS } from './console'

export const WEBHOOK_SETTING = 'fleet_webhook_url'

export interface Rules {
  /** a host not heard from for this long is an incident */
  offlineMinutes: number
  /** the fullest file system over this percentage is an incident */
  diskPercent: number
}

export const DEFAULT_RULES: Rules = { offlineMinutes: OFFLINE_MS / 60_000, diskPercent: 90 }

export interface WebhookEvent {
  event: 'open' | 'resolve'
  rule: 'offline' | 'disk'
  host: { id: number; name: string; kind: string }
  org: string
  detail: string
  at: number
}

export type Post = (url: string, event: WebhookEvent) => Promise<boolean>

/** POSTs one event as JSON; true on a 2xx within 10 s. */
export const postJson: Post = async (url, event) => {
  try {
    const r = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(event), signal: AbortSignal.timeout(10_000) })
    return r.ok
  } catch {
    return false
  }
}

export async function watchFleet(db: Db, opts: { now?: number; post?: Post; rules?: Rules; log?: (m: string) => void } = {}): Promise<{ opened: number; resolved: number; sent: number }> {
  const now = opts.now ?? Date.now()
  const rules = opts.rules ?? DEFAULT_RULES
  const fleet = new Fleet(db)
  let opened = 0
  let resolved = 0
  // Two queries for the whole fleet, not two per host: at 10,000 hosts this runs every minute
  // in the console's process.
  const openIncidents = new Map(
    (db.prepare(`SELECT host_id, rule, id FROM fleet_incidents WHERE resolved_at IS NULL`).all() as { host_id: number; rule: string; id: number }[]).map((r) => [`${r.host_id}:${r.rule}`, r.id]),
  )
  for (const h of fleet.hosts(null, now)) {
    if (h.status === 'revoked') continue
    const seen = h.last_seen_at ?? h.enrolled_at
    const diskUse = h.disk_use ?? NaN
    const holds: Record<WebhookEvent['rule'], string | null> = {
      offline: now - seen >= rules.offlineMinutes * 60_000 ? `not heard from for ${Math.round((now - seen) / 60_000)} minutes` : null,
      // A host that is offline says nothing new about its disks.
      disk: h.status !== 'offline' && diskUse > rules.diskPercent ? `a file system is ${Math.round(diskUse)} % full` : null,
    }
    for (const rule of Object.keys(holds) as WebhookEvent['rule'][]) {
      const open = openIncidents.get(`${h.id}:${rule}`)
      const detail = holds[rule]
      if (detail && open === undefined) {
        db.transaction(() => {
          const alert = Number(
            db.prepare(`INSERT INTO alerts (org_id, kind, message, created_at) VALUES (?, ?, ?, ?)`).run(h.org_id, `fleet-${rule}`, `${h.name} (${h.org}): ${detail}`, now).lastInsertRowid,
          )
          db.prepare(`INSERT INTO fleet_incidents (host_id, rule, detail, opened_at, alert_id) VALUES (?, ?, ?, ?, ?)`).run(h.id, rule, detail, now, alert)
        })()
        opened++
      } else if (!detail && open !== undefined) {
        db.transaction(() => {
          db.prepare(`UPDATE fleet_incidents SET resolved_at = ? WHERE id = ?`).run(now, open)
          db.prepare(`UPDATE alerts SET acknowledged_at = coalesce(acknowledged_at, ?) WHERE id = (SELECT alert_id FROM fleet_incidents WHERE id = ?)`).run(now, open)
        })()
        resolved++
      }
    }
  }
  const sent = await sendWebhooks(db, opts.post ?? postJson, opts.log ?? (() => {}))
  return { opened, resolved, sent }
}

/** Sends every incident event the webhook has not had yet, oldest first. */
async function sendWebhooks(db: Db, post: Post, log: (m: string) => void): Promise<number> {
  const url = new StoredSettings(db).get<string | null>(WEBHOOK_SETTING, null)
  if (!url) return 0
  const pending = db
    .prepare(
      `SELECT i.id, i.rule, i.detail, i.opened_at, i.resolved_at, i.open_sent_at, h.id AS host_id, h.name, h.kind, o.name AS org
       FROM fleet_incidents i JOIN fleet_hosts h ON h.id = i.host_id JOIN organisations o ON o.id = h.org_id
       WHERE i.open_sent_at IS NULL OR (i.resolved_at IS NOT NULL AND i.resolve_sent_at IS NULL) ORDER BY i.id`,
    )
    .all() as { id: number; rule: WebhookEvent['rule']; detail: string; opened_at: number; resolved_at: number | null; open_sent_at: number | null; host_id: number; name: string; kind: string; org: string }[]
  let sent = 0
  for (const i of pending) {
    const base = { rule: i.rule, host: { id: i.host_id, name: i.name, kind: i.kind }, org: i.org, detail: i.detail }
    if (i.open_sent_at === null) {
      if (!(await post(url, { event: 'open', ...base, at: i.opened_at }))) return failed(log, url, sent)
      db.prepare(`UPDATE fleet_incidents SET open_sent_at = ? WHERE id = ?`).run(Date.now(), i.id)
      sent++
    }
    if (i.resolved_at !== null) {
      if (!(await post(url, { event: 'resolve', ...base, at: i.resolved_at }))) return failed(log, url, sent)
      db.prepare(`UPDATE fleet_incidents SET resolve_sent_at = ? WHERE id = ?`).run(Date.now(), i.id)
      sent++
    }
  }
  return sent
}

function failed(log: (m: string) => void, url: string, sent: number): number {
  log(`fleet webhook ${url} did not take an event; it is sent again at the next run`)
  return sent
}
