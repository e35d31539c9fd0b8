/*
 * Daily retention: quarantine entries past their organisation's quarantine retention
 * (default 30 days), then archived messages past the archive retention that nothing
 * references any more, and their spool files; raw delivery attempts after 14 days or as set (their
 * hourly roll-up after 400), outbound sender counters after 2 days, and learned user reports
 * after REPORT_DAYS or beyond the newest REPORTS_KEPT; fleet metrics, logs and old reports
 * (fleet/console.ts purge); SMTP refusals after the tracking centre's days (tracking/search.ts).
 */
import type { Db } from '../db/database'
import { Archive } from '../services/archive'
import { DeliveryMonitor } from '../services/delivery-monitor'
import { OutboundSenders } from '../services/outbound-senders'
import { StoredSettings } from '../services/stored-settings'
import { Quarantine } from '../services/quarantine'
import { RawStore } from '../services/raw-store'
import type { Spool } from '../services/spool'
import { pruneReports } from '../engine/reports'
import { Fleet } from '../fleet/console'
import { expireFingerprints } from '../learning/fingerprint-store'
import { Tracking, TRACKING_DAYS_SETTING } from '../tracking/search'

export interface RetentionResult {
  quarantinePurged: number
  archivePurged: number
  deliveryAttemptsPurged: number
  reportsPurged: number
  fleet: ReturnType<Fleet['purge']>
  fingerprints: ReturnType<typeof expireFingerprints>
  refusalsPurged: number
}

export const DELIVERY_ATTEMPT_DAYS = 14
/** Stored setting that overrides DELIVERY_ATTEMPT_DAYS ('moat delivery retention DAYS'). */
export const DELIVERY_ATTEMPT_DAYS_SETTING = 'delivery_attempt_days'
export const DELIVERY_HOURLY_DAYS = 400

export class RetentionError extends Error {}

/** The retention settings an admin may change, from the CLI or the Settings page alike. */
const RETENTION_SETTINGS = {
  refusals: { key: TRACKING_DAYS_SETTING, label: 'Refusals', min: 0 },
  'delivery-attempts': { key: DELIVERY_ATTEMPT_DAYS_SETTING, label: 'Delivery attempts', min: 1 },
} as const

/** Checks and stores a number of days; a bad value is refused with the limits in the words. */
export function setRetentionDays(db: Db, which: keyof typeof RETENTION_SETTINGS, value: unknown): number {
  const { key, label, min } = RETENTION_SETTINGS[which]
  const n = typeof value === 'string' && value.trim() === '' ? NaN : Number(value)
  if (!Number.isInteger(n) || n < min || n > 3650) throw new RetentionError(`${label}: a whole number of days from ${min} to 3650.`)
  new StoredSettings(db).set(key, n)
  return n
}

export async function run(deps: { db: Db; spool: Spool; now?: number }): Promise<RetentionResult> {
  const now = deps.now ?? Date.now()
  const quarantinePurged = new Quarantine(deps.db).purge(now)
  const archive = new Archive(deps.db, new RawStore(deps.db, deps.spool))
  let archivePurged = 0
  for (;;) {
    const n = await archive.purge(now)
    archivePurged += n
    if (n === 0) break
  }
  const rawDays = new StoredSettings(deps.db).get(DELIVERY_ATTEMPT_DAYS_SETTING, DELIVERY_ATTEMPT_DAYS)
  const delivery = new DeliveryMonitor(deps.db).purge(rawDays, DELIVERY_HOURLY_DAYS, now)
  new OutboundSenders(deps.db).prune(2 * 86_400_000, now)
  return { quarantinePurged, archivePurged, deliveryAttemptsPurged: delivery.attempts, reportsPurged: pruneReports(deps.db, now), fleet: new Fleet(deps.db).purge(now), fingerprints: expireFingerprints(deps.db, now), refusalsPurged: new Tracking(deps.db).purge(now) }
}
