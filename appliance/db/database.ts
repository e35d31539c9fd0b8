/*
 * Opens the appliance database and brings its schema up to date.
 *
 * Durability: mail is acknowledged with 250 only after a commit, so the connection uses
 * WAL with synchronous=FULL (WAL+NORMAL lost acknowledged commits under simulated power loss).
 * Failure: a database whose schema is newer than this code is refused rather than guessed at.
 */
import fs from 'node:fs'
import path from 'node:path'
import Database from 'better-sqlite3'
import { migrations } from './migrations'

export type Db = Database.Database

export const SCHEMA_VERSION = migrations.length

export function openDatabase(file: string, options: { readonly?: boolean } = {}): Db {
  if (file !== ':memory:') fs.mkdirSync(path.dirname(file), { recursive: true })
  const db = new Database(file, { readonly: options.readonly ?? false })
  db.pragma('busy_timeout = 10000')
  if (!options.readonly) {
    db.pragma('journal_mode = WAL')
    db.pragma('synchronous = FULL')
  }
  db.pragma('foreign_keys = ON')
  migrate(db)
  return db
}

export function schemaVersion(db: Db): number {
  return db.pragma('user_version', { simple: true }) as number
}

/** The schema of a database file, read without migrating it (0 if there is none yet). */
export function schemaOfFile(file: string): number {
  if (!fs.existsSync(file)) return 0
  const db = new Database(file, { readonly: true, fileMustExist: true })
  try {
    return schemaVersion(db)
  } finally {
    db.close()
  }
}

/** Applies every step after the current version, each in its own transaction. */
export function migrate(db: Db, target: number = SCHEMA_VERSION): void {
  let version = schemaVersion(db)
  if (version > SCHEMA_VERSION) {
    throw new Error(
      `database schema version ${version} is newer than this Moat (knows ${SCHEMA_VERSION}); refusing to start`,
    )
  }
  while (version < target) {
    const step = migrations[version]
    const next = version + 1
    db.transaction(() => {
      // Another process (web and SMTP start together) may have applied this step meanwhile.
      if (schemaVersion(db) !== next - 1) return
      db.exec(step)
      db.pragma(`user_version = ${next}`)
    }).immediate()
    version = schemaVersion(db)
  }
}
