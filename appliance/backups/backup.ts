/*
 * Backup and restore of everything an appliance holds: the database (configuration, users,
 * quarantine and archive index, delivery state, keys), the spool of large messages, the TLS
 * certificate, the admin's Haraka config overrides and Haraka's outbound queue (mail
 * accepted but not yet delivered). Unlike appliances that leave the quarantine out, nothing
 * is: a restored appliance can release what the old one held.
 *
 * A backup is a gzipped tar (node-tar): manifest.json, a consistent snapshot of the database
 * made with SQLite's online backup while the services run, and the folders as they are.
 * Restoring is two steps, because the running services hold the database open: restore()
 * checks the archive and stages it in DATA_DIR/restore-pending; applyPendingRestore(), at
 * the next start and before anything opens the database, moves the current data aside to
 * DATA_DIR/pre-restore-<time> and the staged data into place.
 *
 * Trusts nothing in an archive to restore: only plain files and folders under the known
 * names are extracted (no links, no absolute paths or "..", which node-tar refuses), the
 * manifest must say it is a Moat backup, and the database must pass SQLite's integrity check
 * and have a schema this Moat knows. A bad archive leaves nothing staged.
 */
import crypto from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import * as tar from 'tar'
import Database from 'better-sqlite3'
import type { Db } from '../db/database'
import { SCHEMA_VERSION, schemaVersion } from '../db/database'
import { withLock } from '../file-lock'

export const BACKUP_FORMAT = 'moat-backup'
/** Stored setting: when the last backup was written (ms). */
export const LAST_BACKUP_SETTING = 'last_backup_at'
/** What a backup holds besides manifest.json, relative to the data folder. */
const PARTS = ['moat.db', 'spool', 'tls', 'haraka/config', 'haraka/queue'] as const
const PENDING = 'restore-pending'

export class BackupError extends Error {}

export interface Manifest {
  format: typeof BACKUP_FORMAT
  moat: string
  schema: number
  created_at: number
  hostname: string
}

/** Writes a backup of the appliance in dataDir to `out` (a .tar.gz). */
export async function createBackup(db: Db, dataDir: string, out: string, info: { version: string; hostname: string }): Promise<Manifest> {
  const work = fs.mkdtempSync(path.join(dataDir, '.backup-'))
  try {
    // The online backup copies a consistent state while the SMTP service keeps committing.
    await db.backup(path.join(work, 'moat.db'))
    const manifest: Manifest = { format: BACKUP_FORMAT, moat: info.version, schema: schemaVersion(db), created_at: Date.now(), hostname: info.hostname }
    fs.writeFileSync(path.join(work, 'manifest.json'), `${JSON.stringify(manifest, null, 1)}\n`)
    // The folders go in as links that tar follows, so the archive's names are the data folder's.
    const entries = ['manifest.json', 'moat.db']
    for (const part of PARTS.slice(1)) {
      const src = path.resolve(dataDir, part)
      if (!fs.existsSync(src)) continue
      fs.mkdirSync(path.dirname(path.join(work, part)), { recursive: true })
      fs.symlinkSync(src, path.join(work, part))
      entries.push(part)
    }
    await tar.c({ gzip: { level: 1 }, cwd: work, file: out, follow: true, portable: true }, entries)
    // When the last backup was made: the fleet console alerts on one grown old (agent/health.ts).
    db.prepare(`INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`).run(LAST_BACKUP_SETTING, JSON.stringify(manifest.created_at))
    return manifest
  } finally {
    fs.rmSync(work, { recursive: true, force: true })
  }
}

const allowed = (p: string) => p === 'manifest.json' || PARTS.some((part) => p === part || p.startsWith(`${part}/`))

/** Checks a backup and stages it; it takes effect at the next start of the services. */
export async function stageRestore(dataDir: string, archive: string): Promise<Manifest> {
  const work = fs.mkdtempSync(path.join(dataDir, '.restore-'))
  try {
    const refused: string[] = []
    try {
      await tar.x({
        file: archive,
        cwd: work,
        strict: true,
        filter: (p, entry) => {
          const name = p.replace(/^\.\//, '').replace(/\/$/, '')
          const type = (entry as tar.ReadEntry).type
          const ok = allowed(name) && (type === 'File' || type === 'Directory' || type === 'OldFile')
          if (!ok && name) refused.push(name)
          return ok
        },
      })
    } catch (err) {
      throw new BackupError(`not a backup archive this Moat can read: ${(err as Error).message}`)
    }
    if (refused.length) throw new BackupError(`the archive holds entries a Moat backup never has: ${refused.slice(0, 5).join(', ')}`)
    let manifest: Manifest
    try {
      manifest = JSON.parse(fs.readFileSync(path.join(work, 'manifest.json'), 'utf8'))
    } catch {
      throw new BackupError('the archive has no readable manifest.json: not a Moat backup')
    }
    if (manifest.format !== BACKUP_FORMAT) throw new BackupError('the manifest does not say this is a Moat backup')
    checkDatabase(path.join(work, 'moat.db'))
    fs.rmSync(path.join(dataDir, PENDING), { recursive: true, force: true })
    fs.renameSync(work, path.join(dataDir, PENDING))
    return manifest
  } catch (err) {
    fs.rmSync(work, { recursive: true, force: true })
    throw err
  }
}

function checkDatabase(file: string): void {
  if (!fs.existsSync(file)) throw new BackupError('the archive has no database')
  let db: Database.Database | null = null
  try {
    db = new Database(file, { readonly: true, fileMustExist: true })
    const version = db.pragma('user_version', { simple: true }) as number
    if (version > SCHEMA_VERSION) throw new BackupError(`the backup's database has schema ${version}, newer than this Moat's ${SCHEMA_VERSION}: update Moat first`)
    const check = db.pragma('integrity_check', { simple: true })
    if (check !== 'ok') throw new BackupError(`the backup's database is damaged: ${check}`)
  } catch (err) {
    if (err instanceof BackupError) throw err
    throw new BackupError(`the backup's database cannot be read: ${(err as Error).message}`)
  } finally {
    db?.close()
  }
}

/** Is a restore staged (waiting for the next start)? */
export function pendingRestore(dataDir: string): Manifest | null {
  try {
    return JSON.parse(fs.readFileSync(path.join(dataDir, PENDING, 'manifest.json'), 'utf8'))
  } catch {
    return null
  }
}

/**
 * At start, before the database is opened: puts a staged restore in place, keeping what was
 * there in pre-restore-<time>. Every service calls it; the first does the work, under a lock.
 */
export function applyPendingRestore(dataDir: string, log: (msg: string) => void): boolean {
  if (!fs.existsSync(path.join(dataDir, PENDING))) return false
  return withLock(dataDir, () => {
    const staged = path.join(dataDir, PENDING)
    const manifest = pendingRestore(dataDir)
    if (!manifest) return false
    const aside = path.join(dataDir, `pre-restore-${new Date().toISOString().replace(/[:.]/g, '-')}-${crypto.randomBytes(3).toString('hex')}`)
    fs.mkdirSync(path.join(aside, 'haraka'), { recursive: true })
    // The database's WAL and shared-memory files belong to it: they go aside with it.
    for (const part of [...PARTS, 'moat.db-wal', 'moat.db-shm']) {
      const cur = path.join(dataDir, part)
      if (fs.existsSync(cur)) fs.renameSync(cur, path.join(aside, part))
    }
    fs.mkdirSync(path.join(dataDir, 'haraka'), { recursive: true })
    for (const part of PARTS) {
      const from = path.join(staged, part)
      if (fs.existsSync(from)) fs.renameSync(from, path.join(dataDir, part))
    }
    fs.rmSync(staged, { recursive: true, force: true })
    log(`restored the backup of ${manifest.hostname} from ${new Date(manifest.created_at).toISOString()} (Moat ${manifest.moat}); the data it replaced is in ${aside}`)
    return true
  }, '.restore.lock')
}
