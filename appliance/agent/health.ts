/*
 * On a Moat appliance, the agent also reports its mail health: what an MSP checks first on
 * each customer's appliance. Read from the appliance's own database, read-only, so the agent
 * never takes a write lock from the mail path.
 */
import { spawnSync } from 'node:child_process'
import crypto from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import type BetterSqlite3 from 'better-sqlite3'
import { databasePath } from '../config'

/** backups/backup.ts writes it; read here by name, so the agent loads nothing of the services. */
const LAST_BACKUP_SETTING = 'last_backup_at'

/** The appliance's own services, as systemd has them (the image's units). */
export const APPLIANCE_UNITS = ['moat-smtp', 'moat-web', 'moat-jobs', 'moat-antivirus']
/** Units that are off by choice (antivirus until the admin turns it on): only "failed" is news. */
const OPTIONAL_UNITS = ['moat-antivirus']

/** Each unit's state from systemctl ("active", "failed"…); null where systemd does not run. */
export function serviceStates(units = APPLIANCE_UNITS): Record<string, string> | null {
  const r = spawnSync('systemctl', ['is-active', ...units], { encoding: 'utf8', timeout: 10_000 })
  const states = (r.stdout ?? '').trim().split('\n')
  if (r.error || states.length !== units.length || states.some((s) => !/^[a-z-]+$/.test(s))) return null
  return Object.fromEntries(units.map((u, i) => [u, states[i]] as const).filter(([u, state]) => !(OPTIONAL_UNITS.includes(u) && state === 'inactive')))
}

export function mailHealth(dataDir: string, version: string, now = Date.now()): Record<string, unknown> {
  // Loaded here, on appliances only: the Windows agent has no better-sqlite3 (agent/sqlite.ts).
  const Database = require('better-sqlite3') as typeof BetterSqlite3
  const db = new Database(databasePath(dataDir), { readonly: true, fileMustExist: true })
  try {
    const one = (sql: string, ...args: unknown[]) => db.prepare(sql).pluck().get(...args) as number
    const minuteAgo = now - 60_000
    let certExpires: number | null = null
    try {
      certExpires = Date.parse(new crypto.X509Certificate(fs.readFileSync(path.join(dataDir, 'tls', 'cert.pem'))).validTo)
    } catch {
      // no certificate yet: nothing to expire
    }
    return {
      version,
      mailInLastMinute: one(`SELECT count(*) FROM messages WHERE received_at > ? AND direction = 'in'`, minuteAgo),
      mailOutLastMinute: one(`SELECT count(*) FROM messages WHERE received_at > ? AND direction = 'out'`, minuteAgo),
      spamLastMinute: one(`SELECT count(*) FROM messages WHERE received_at > ? AND verdict IN ('spam', 'surespam')`, minuteAgo),
      queue: {
        pending: one(`SELECT count(*) FROM deliveries WHERE state = 'pending'`),
        queued: one(`SELECT count(*) FROM deliveries WHERE state = 'queued'`),
        deferred: one(`SELECT count(*) FROM deliveries WHERE state = 'deferred'`),
      },
      quarantined: one(`SELECT count(*) FROM quarantine`),
      certificateExpires: certExpires,
      blocklisted: db.prepare(`SELECT ip, zone FROM rbl_listings WHERE delisted_at IS NULL`).all(),
      openAlerts: one(`SELECT count(*) FROM alerts WHERE acknowledged_at IS NULL`),
      lastBackupAt: JSON.parse((db.prepare(`SELECT value FROM settings WHERE key = ?`).pluck().get(LAST_BACKUP_SETTING) as string | undefined) ?? 'null'),
      services: serviceStates(),
    }
  } finally {
    db.close()
  }
}
