/*
 * On a Moat appliance, the agent also reports its mail health: what an MSP checks first on
 * each customer's appliance. Read from the appliance's own database, read-only, so the agent
 * never takes a write lock from the mail path.
 */
import crypto from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import Database from 'better-sqlite3'
import { databasePath } from '../config'

export function mailHealth(dataDir: string, version: string, now = Date.now()): Record<string, unknown> {
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
    }
  } finally {
    db.close()
  }
}
