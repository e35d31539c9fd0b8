/*
 * Appliance-wide settings an admin changes at run time (the CLI now, the web UI later), kept
 * in the settings table as JSON. Environment settings (appliance/config.ts) are for what must
 * be known before the database opens.
 */
import type { Db } from '../db/database'

export class StoredSettings {
  private readonly q

  constructor(db: Db) {
    this.q = {
      get: db.prepare(`SELECT value FROM settings WHERE key = ?`),
      set: db.prepare(`INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`),
      remove: db.prepare(`DELETE FROM settings WHERE key = ?`),
    }
  }

  get<T>(key: string, fallback: T): T {
    const row = this.q.get.get(key) as { value: string } | undefined
    return row ? (JSON.parse(row.value) as T) : fallback
  }

  set(key: string, value: unknown): void {
    this.q.set.run(key, JSON.stringify(value))
  }

  remove(key: string): void {
    this.q.remove.run(key)
  }
}
