/*
 * Scheduled backups: every night at the admin's time, a backup (backup.ts) into a local folder
 * and, when a target is set, a copy off the box over SFTP; the newest N are kept in each place.
 *
 * The job ticks every few minutes (jobs/scheduler.ts) and asks "is one due?" rather than
 * being a cron line at the admin's time, so a backup the appliance slept through (powered
 * off, restarting for an update) is made when it comes back, not skipped until tomorrow.
 * A failed attempt is tried again an hour later.
 *
 * Alerts: the first failure in a row opens one (not one an hour); so does a backup gone
 * missing, no good one for more than a day and a half while the schedule is on. The
 * fleet console sees the last backup's age through the agent (agent/health.ts).
 */
import fs from 'node:fs'
import path from 'node:path'
import { z } from 'zod'
import type { Db } from '../db/database'
import { StoredSettings } from '../services/stored-settings'
import { BackupError, createBackup, type Manifest, stageRestore } from './backup'
import { backupKey, SftpStore } from './sftp'

const POLICY_SETTING = 'backup_policy'
const STATUS_SETTING = 'backup_status'
const RETRY_MS = 3_600_000
/** No good backup for this long, with the schedule on, is an alert. */
export const MISSING_MS = 36 * 3_600_000

/** The schedule as the admin sets it, checked by the same schema in the CLI and the UI. */
export const backupPolicySchema = z.object({
  enabled: z.boolean(),
  time: z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'a time of day as HH:MM'),
  keep: z.number().int().min(1, 'keep at least one').max(365),
  /** null: DATA_DIR/backups */
  localDir: z.string().min(1).refine((p) => path.isAbsolute(p), 'an absolute path').nullable(),
  sftp: z
    .object({
      host: z.string().min(1).regex(/^[A-Za-z0-9.:[\]-]+$/, 'a host name or address'),
      port: z.number().int().min(1).max(65535),
      username: z.string().min(1).regex(/^[A-Za-z0-9._-]+$/, 'a user name'),
      path: z.string().min(1).regex(/^\/[^\0\r\n]*$/, 'an absolute path on the server'),
      hostKey: z.string().regex(/^SHA256:[A-Za-z0-9+/]{43}$/).nullable(),
    })
    .nullable(),
})
export type BackupPolicy = z.infer<typeof backupPolicySchema>

export const DEFAULT_POLICY: BackupPolicy = { enabled: true, time: '02:30', keep: 7, localDir: null, sftp: null }

export interface BackupStatus {
  lastAttemptAt: number | null
  lastOkAt: number | null
  /** the error of the last attempt, null when it succeeded */
  error: string | null
  lastFile: string | null
  /** the last attempt's copy reached the SFTP server */
  copiedOff: boolean
  /** when the schedule was switched on: the reference for "missing" before any backup */
  since: number
  missingAlerted: boolean
}

export interface BackupEntry {
  name: string
  size: number
  at: number
  where: 'local' | 'sftp'
}

const NAME = /^moat-backup-(.+)-(\d{8}T\d{6}\.\d{3}Z)\.tar\.gz$/

function stamp(ms: number): string {
  return new Date(ms).toISOString().replace(/[-:]/g, '')
}

function stampTime(name: string): number {
  const s = NAME.exec(name)?.[2]
  return s ? Date.parse(`${s.slice(0, 4)}-${s.slice(4, 6)}-${s.slice(6, 8)}T${s.slice(9, 11)}:${s.slice(11, 13)}:${s.slice(13)}`) : 0
}

const safeHost = (hostname: string) => hostname.replace(/[^A-Za-z0-9.-]/g, '_')

export interface Appliance {
  db: Db
  dataDir: string
  version: string
  hostname: string
}

export class BackupSchedule {
  private readonly settings: StoredSettings

  constructor(private readonly a: Appliance) {
    this.settings = new StoredSettings(a.db)
  }

  policy(): BackupPolicy {
    const stored = this.settings.get<unknown>(POLICY_SETTING, null)
    const parsed = backupPolicySchema.safeParse(stored)
    return parsed.success ? parsed.data : DEFAULT_POLICY
  }

  /** Saves a policy (already checked by the schema); a changed SFTP target is re-pinned by the caller. */
  setPolicy(p: BackupPolicy): void {
    const before = this.policy()
    this.settings.set(POLICY_SETTING, backupPolicySchema.parse(p))
    if (p.enabled && !before.enabled) this.setStatus({ since: Date.now(), missingAlerted: false })
  }

  status(): BackupStatus {
    return { lastAttemptAt: null, lastOkAt: null, error: null, lastFile: null, copiedOff: false, since: 0, missingAlerted: false, ...this.settings.get<Partial<BackupStatus>>(STATUS_SETTING, {}) }
  }

  private setStatus(change: Partial<BackupStatus>): void {
    this.settings.set(STATUS_SETTING, { ...this.status(), ...change })
  }

  localDir(): string {
    return this.policy().localDir ?? path.join(this.a.dataDir, 'backups')
  }

  publicKey(): string {
    return backupKey(this.settings).publicKey
  }

  sftp(target = this.policy().sftp): SftpStore | null {
    return target ? new SftpStore(target, backupKey(this.settings)) : null
  }

  /** Connects to a target (pinning the key it presents when none is pinned yet) and checks it can write there. */
  async connectTarget(target: NonNullable<BackupPolicy['sftp']>): Promise<NonNullable<BackupPolicy['sftp']>> {
    const seen = await (this.sftp(target) as SftpStore).check()
    return { ...target, hostKey: seen }
  }

  /** The slot of the day `now` falls in (local time), or the previous day's when today's is still ahead. */
  lastSlot(now: number): number {
    const [h, m] = this.policy().time.split(':').map(Number)
    const d = new Date(now)
    d.setHours(h, m, 0, 0)
    if (d.getTime() > now) d.setDate(d.getDate() - 1)
    return d.getTime()
  }

  isDue(now = Date.now()): boolean {
    const p = this.policy()
    if (!p.enabled) return false
    const s = this.status()
    const slot = this.lastSlot(now)
    // The first one is the first night after the schedule starts, not the moment it starts.
    if (slot <= s.since || (s.lastOkAt ?? 0) >= slot) return false
    return (s.lastAttemptAt ?? 0) < slot || now - (s.lastAttemptAt ?? 0) >= RETRY_MS
  }

  /** The job: a backup when one is due, and the "missing" alert. null when there was nothing to do. */
  async tick(now = Date.now()): Promise<{ file: string; copiedOff: boolean } | { error: string } | null> {
    if (!this.status().since) this.setStatus({ since: now })
    let result: Awaited<ReturnType<BackupSchedule['run']>> | null = null
    if (this.isDue(now)) result = await this.run()
    this.checkMissing(now)
    return result
  }

  /** Makes a backup now: locally, then off the box; prunes both. Never throws: the outcome is in the status and alerts. */
  async run(): Promise<{ file: string; copiedOff: boolean } | { error: string }> {
    const started = Date.now()
    const p = this.policy()
    const dir = this.localDir()
    const name = `moat-backup-${safeHost(this.a.hostname)}-${stamp(started)}.tar.gz`
    const file = path.join(dir, name)
    const failedBefore = this.status().error !== null
    let copiedOff = false
    try {
      fs.mkdirSync(dir, { recursive: true, mode: 0o700 })
      const partial = `${file}.partial`
      try {
        await createBackup(this.a.db, this.a.dataDir, partial, { version: this.a.version, hostname: this.a.hostname })
        fs.renameSync(partial, file)
      } finally {
        fs.rmSync(partial, { force: true })
      }
      this.pruneLocal(p.keep)
      const sftp = this.sftp(p.sftp)
      if (sftp) {
        if (!p.sftp?.hostKey) throw new Error(`the SFTP server's host key is not confirmed yet: set the target again`)
        await sftp.upload(file)
        copiedOff = true
        const own = (await sftp.list((n) => this.isOwn(n))).map((f) => f.name)
        await sftp.remove(own.slice(p.keep))
      }
      this.setStatus({ lastAttemptAt: started, lastOkAt: started, error: null, lastFile: name, copiedOff, missingAlerted: false })
      return { file, copiedOff }
    } catch (err) {
      // The local copy, if made, stays: a failed upload still leaves a backup on the box.
      const error = `${(err as Error).message}${fs.existsSync(file) ? ` (the local backup ${name} was made)` : ''}`
      this.setStatus({ lastAttemptAt: started, error, lastFile: fs.existsSync(file) ? name : this.status().lastFile, copiedOff: false })
      if (!failedBefore) this.alert('backup-failed', `The scheduled backup failed: ${error}. It is tried again every hour.`)
      return { error }
    }
  }

  private checkMissing(now: number): void {
    const p = this.policy()
    const s = this.status()
    if (!p.enabled || s.missingAlerted) return
    const since = s.lastOkAt ?? s.since
    if (since && now - since > MISSING_MS) {
      this.setStatus({ missingAlerted: true })
      this.alert('backup-missing', s.lastOkAt ? `No backup has been made since ${new Date(s.lastOkAt).toISOString()}.` : 'No scheduled backup has been made yet.')
    }
  }

  private alert(kind: string, message: string): void {
    this.a.db.prepare(`INSERT INTO alerts (org_id, kind, message, created_at) VALUES (NULL, ?, ?, ?)`).run(kind, message, Date.now())
  }

  /** This appliance's backups (by host name in the file name): a shared folder may hold others'. */
  private isOwn(name: string): boolean {
    return NAME.exec(name)?.[1] === safeHost(this.a.hostname)
  }

  private pruneLocal(keep: number): void {
    for (const f of this.listLocal().slice(keep)) fs.rmSync(path.join(this.localDir(), f.name), { force: true })
  }

  listLocal(): BackupEntry[] {
    let names: string[] = []
    try {
      names = fs.readdirSync(this.localDir())
    } catch {
      return []
    }
    return names
      .filter((n) => this.isOwn(n))
      .map((n) => ({ name: n, size: fs.statSync(path.join(this.localDir(), n)).size, at: stampTime(n), where: 'local' as const }))
      .sort((a, b) => b.at - a.at)
  }

  async listRemote(): Promise<BackupEntry[]> {
    const sftp = this.sftp()
    if (!sftp) return []
    return (await sftp.list((n) => NAME.test(n))).map((f) => ({ name: f.name, size: f.size, at: stampTime(f.name), where: 'sftp' as const })).sort((a, b) => b.at - a.at)
  }

  /** Stages a kept backup for restore (backup.ts checks it); a remote one is fetched first. */
  async stage(where: 'local' | 'sftp', name: string): Promise<Manifest> {
    if (!NAME.test(name)) throw new BackupError(`${name} is not the name of a Moat backup`)
    if (where === 'local') return stageRestore(this.a.dataDir, path.join(this.localDir(), name))
    const sftp = this.sftp()
    if (!sftp) throw new BackupError('no SFTP target is set')
    const tmp = path.join(this.a.dataDir, `.fetch-${stamp(Date.now())}-${name}`)
    try {
      await sftp.download(name, tmp)
      return await stageRestore(this.a.dataDir, tmp)
    } finally {
      fs.rmSync(tmp, { force: true })
    }
  }
}
