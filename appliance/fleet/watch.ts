/*
 * Fleet alerts: every minute the console looks at each host against its organisation's alert
 * rules (a host not heard from, a file system filling up; on appliances a service down, mail
 * piling up, an address on a blocklist, a certificate about to expire, no recent backup). A rule that starts to hold opens an incident:
 * one admin alert for the host's organisation and one JSON POST to the MSP's webhook (its
 * ticketing system); when it stops holding, the incident is resolved and the webhook hears
 * that once too. A webhook that fails is tried again at the next run, so each event is sent
 * at least once and an incident is never opened twice.
 */
import type { Db } from '../db/database'
import { StoredSettings } from '../services/stored-settings'
import { Fleet, type Host, OFFLINE_MS } from './console'
import { FleetError } from './errors'

export const WEBHOOK_SETTING = 'fleet_webhook_url'

/** An organisation's alert thresholds ('moat fleet rules'); what is not set takes DEFAULT_RULES. */
export interface Rules {
  /** a host not heard from for this long is an incident */
  offlineMinutes: number
  /** the fullest file system over this percentage */
  diskPercent: number
  /** an appliance's mail waiting for delivery (pending, queued and deferred) over this */
  queueOver: number
  /** an appliance's certificate expiring within this many days */
  certificateDays: number
  /** an appliance's last backup older than this many days (or none since enrollment) */
  backupDays: number
}

export const DEFAULT_RULES: Rules = { offlineMinutes: OFFLINE_MS / 60_000, diskPercent: 90, queueOver: 500, certificateDays: 14, backupDays: 7 }

export const RULE_NAMES = ['offline', 'disk', 'service', 'queue', 'blocklisted', 'certificate', 'backup'] as const
export type RuleName = (typeof RULE_NAMES)[number]

export interface WebhookEvent {
  event: 'open' | 'resolve'
  rule: RuleName
  host: { id: number; name: string; kind: string }
  org: string
  detail: string
  at: number
}

const rulesKey = (orgId: number) => `fleet_alert_rules:${orgId}`

/** An organisation's rules: its own thresholds over the defaults. */
export function rulesFor(settings: StoredSettings, orgId: number): Rules {
  return { ...DEFAULT_RULES, ...settings.get<Partial<Rules>>(rulesKey(orgId), {}) }
}

/** Sets some of an organisation's thresholds (null: back to the default); returns them all. */
export function setRules(settings: StoredSettings, orgId: number, change: { [K in keyof Rules]?: number | null }): Rules {
  const next: Partial<Rules> = { ...settings.get<Partial<Rules>>(rulesKey(orgId), {}) }
  for (const [k, v] of Object.entries(change) as [keyof Rules, number | null | undefined][]) {
    if (v === undefined) continue
    if (v === null) delete next[k]
    else if (!(Number.isFinite(v) && v >= 0 && (k !== 'diskPercent' || v <= 100))) throw new FleetError(`${k} must be a number from 0${k === 'diskPercent' ? ' to 100' : ''}`)
    else next[k] = v
  }
  if (Object.keys(next).length) settings.set(rulesKey(orgId), next)
  else settings.remove(rulesKey(orgId))
  return { ...DEFAULT_RULES, ...next }
}

/** What an appliance's health report says (agent/health.ts), as far as the rules read it. */
interface Health {
  queue?: { pending: number; queued: number; deferred: number }
  blocklisted?: { ip: string; zone: string }[]
  certificateExpires?: number | null
  lastBackupAt?: number | null
  services?: Record<string, string> | null
}

/** Each rule's verdict on one host: a detail when it holds, null when it does not. */
export function evaluate(h: Host, health: Health | null, rules: Rules, now: number): Record<RuleName, string | null> {
  const seen = h.last_seen_at ?? h.enrolled_at
  // A host that is offline says nothing new: only the offline rule speaks for it.
  const live = h.status !== 'offline'
  const queue = health?.queue ? health.queue.pending + health.queue.queued + health.queue.deferred : 0
  const down = Object.entries(health?.services ?? {}).filter(([, state]) => state !== 'active')
  const certDays = health?.certificateExpires ? (health.certificateExpires - now) / 86_400_000 : null
  const backupAge = health ? (now - (health.lastBackupAt ?? h.enrolled_at)) / 86_400_000 : null
  return {
    offline: now - seen >= rules.offlineMinutes * 60_000 ? `not heard from for ${Math.round((now - seen) / 60_000)} minutes` : null,
    disk: live && h.disk_use !== null && h.disk_use > rules.diskPercent ? `a file system is ${Math.round(h.disk_use)} % full` : null,
    service: live && down.length ? `not running: ${down.map(([n, state]) => `${n} (${state})`).join(', ')}` : null,
    queue: live && queue > rules.queueOver ? `${queue} messages wait for delivery` : null,
    blocklisted: live && health?.blocklisted?.length ? `listed: ${health.blocklisted.map((b) => `${b.ip} on ${b.zone}`).join(', ')}` : null,
    certificate: live && certDays !== null && certDays < rules.certificateDays ? (certDays <= 0 ? 'the TLS certificate has expired' : `the TLS certificate expires in ${Math.ceil(certDays)} days`) : null,
    backup: live && backupAge !== null && backupAge > rules.backupDays ? (health?.lastBackupAt ? `the last backup is ${Math.floor(backupAge)} days old` : `no backup in ${Math.floor(backupAge)} days`) : null,
  }
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

export async function watchFleet(db: Db, opts: { now?: number; post?: Post; log?: (m: string) => void } = {}): Promise<{ opened: number; resolved: number; sent: number }> {
  const now = opts.now ?? Date.now()
  const fleet = new Fleet(db)
  const settings = new StoredSettings(db)
  let opened = 0
  let resolved = 0
  // A few queries for the whole fleet, not a few per host: at 10,000 hosts this runs every
  // minute in the console's process.
  const openIncidents = new Map(
    (db.prepare(`SELECT host_id, rule, id FROM fleet_incidents WHERE resolved_at IS NULL`).all() as { host_id: number; rule: string; id: number }[]).map((r) => [`${r.host_id}:${r.rule}`, r.id]),
  )
  const healthOf = new Map(
    (db.prepare(
      `SELECT r.host_id, r.body FROM fleet_reports r
       JOIN (SELECT host_id, max(seq) AS seq FROM fleet_reports WHERE kind = 'health' GROUP BY host_id) n ON n.host_id = r.host_id AND n.seq = r.seq`,
    ).all() as { host_id: number; body: string }[]).map((r) => [r.host_id, JSON.parse(r.body) as Health]),
  )
  const rulesOf = new Map<number, Rules>()
  for (const h of fleet.hosts(null, now)) {
    if (h.status === 'revoked') continue
    let rules = rulesOf.get(h.org_id)
    if (!rules) rulesOf.set(h.org_id, (rules = rulesFor(settings, h.org_id)))
    const holds = evaluate(h, healthOf.get(h.id) ?? null, rules, now)
    for (const rule of RULE_NAMES) {
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
