/* Backups: one now to a file, the nightly schedule, the SFTP target, and restore from any of them. */
import path from 'node:path'
import { loadSettings } from '../../config'
import { createBackup, stageRestore } from '../../backups/backup'
import { type BackupPolicy, backupPolicySchema, BackupSchedule } from '../../backups/schedule'
import { VERSION } from '../../version'
import { type Command, isoTime, need, printTable, UsageError } from '../command'
import { appliance } from '../context'

function schedule(): BackupSchedule {
  const { db, settings } = appliance()
  return new BackupSchedule({ db, dataDir: settings.dataDir, version: VERSION, hostname: settings.hostname })
}

/** USER@HOST[:PORT]:/PATH, as scp and sftp write it. */
export function parseSftpTarget(spec: string): NonNullable<BackupPolicy['sftp']> {
  const m = /^([^@\s]+)@(\[[^\]]+\]|[^:\s]+)(?::(\d+))?:(\/.*)$/.exec(spec)
  if (!m) throw new UsageError(`give the target as USER@HOST[:PORT]:/PATH, not ${spec}`)
  const target = { username: m[1], host: m[2].replace(/^\[|\]$/g, ''), port: m[3] ? Number(m[3]) : 22, path: m[4].replace(/\/+$/, '') || '/', hostKey: null }
  const checked = backupPolicySchema.shape.sftp.safeParse(target)
  if (!checked.success) throw new UsageError(checked.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '))
  return target
}

export const backupCommands: Command[] = [
  {
    path: ['backup'],
    usage: 'FILE',
    summary: 'Write a backup of the whole appliance (database, quarantine, archive, spool, TLS, config overrides, outbound queue) to FILE (.tar.gz); safe while the services run.',
    async run({ args, out }) {
      need(args, 1, 'file to write')
      const { db, settings } = appliance()
      const m = await createBackup(db, settings.dataDir, path.resolve(args[0]), { version: VERSION, hostname: settings.hostname })
      out(`backup of ${m.hostname} (schema ${m.schema}) written to ${args[0]}`)
    },
  },
  {
    path: ['backup', 'now'],
    usage: '',
    summary: 'Make a scheduled backup now: into the backup folder and, when a target is set, over SFTP; the oldest beyond the number kept are removed.',
    async run({ out, err }) {
      const r = await schedule().run()
      if ('error' in r) {
        err(`backup failed: ${r.error}`)
        return 1
      }
      out(`backup written to ${r.file}${r.copiedOff ? ', and copied over SFTP' : ''}`)
    },
  },
  {
    path: ['backup', 'list'],
    usage: '[--json]',
    summary: 'List the backups kept in the backup folder and on the SFTP server, newest first.',
    options: { json: { type: 'boolean', description: 'print JSON' } },
    async run({ opts, out }) {
      const s = schedule()
      const rows = [...s.listLocal(), ...(await s.listRemote())]
      if (opts.json) return out(JSON.stringify(rows))
      printTable(out, rows.map((r) => ({ ...r, at: isoTime(r.at), size: `${(r.size / 1048576).toFixed(1)} MB` })), ['where', 'name', 'at', 'size'])
    },
  },
  {
    path: ['backup', 'schedule'],
    usage: '[--on | --off] [--time HH:MM] [--keep N] [--dir PATH | --default-dir] [--json]',
    summary: 'Show or change the nightly backup: when (local time), how many are kept, and the local folder (default DATA_DIR/backups).',
    options: {
      on: { type: 'boolean', description: 'make backups every night' },
      off: { type: 'boolean', description: 'stop the nightly backups' },
      time: { type: 'string', description: 'time of day, HH:MM' },
      keep: { type: 'string', description: 'how many backups to keep in each place' },
      dir: { type: 'string', description: 'local folder for the backups' },
      'default-dir': { type: 'boolean', description: 'back to DATA_DIR/backups' },
      json: { type: 'boolean', description: 'print JSON' },
    },
    run({ opts, out }) {
      const s = schedule()
      const p = { ...s.policy() }
      if (opts.on && opts.off) throw new UsageError('--on or --off, not both')
      if (opts.on) p.enabled = true
      if (opts.off) p.enabled = false
      if (typeof opts.time === 'string') p.time = opts.time
      if (typeof opts.keep === 'string') p.keep = Number(opts.keep)
      if (typeof opts.dir === 'string') p.localDir = path.resolve(opts.dir)
      if (opts['default-dir']) p.localDir = null
      const checked = backupPolicySchema.safeParse(p)
      if (!checked.success) throw new UsageError(checked.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '))
      s.setPolicy(checked.data)
      const status = s.status()
      if (opts.json) return out(JSON.stringify({ policy: checked.data, status }))
      const q = checked.data
      out(`nightly backup: ${q.enabled ? `on, at ${q.time}` : 'off'}; ${q.keep} kept in ${s.localDir()}${q.sftp ? ` and in ${q.sftp.username}@${q.sftp.host}:${q.sftp.port}:${q.sftp.path}` : ''}`)
      out(`last good backup: ${status.lastOkAt ? isoTime(status.lastOkAt) : 'none'}${status.error ? `; last attempt (${isoTime(status.lastAttemptAt)}) FAILED: ${status.error}` : ''}`)
    },
  },
  {
    path: ['backup', 'sftp'],
    usage: 'USER@HOST[:PORT]:/PATH | --off',
    summary:
      "Copy every scheduled backup to an SFTP server. Connects once now: checks the folder is writable and pins the server's host key (compare the fingerprint printed with `ssh-keygen -lf` on the server). Add the key from `moat backup key` to the account's authorized_keys first.",
    options: { off: { type: 'boolean', description: 'stop copying backups off the box' } },
    async run({ args, opts, out }) {
      const s = schedule()
      if (opts.off) {
        s.setPolicy({ ...s.policy(), sftp: null })
        return out('backups stay on the appliance only')
      }
      need(args, 1, 'USER@HOST[:PORT]:/PATH')
      const target = await s.connectTarget(parseSftpTarget(args[0]))
      s.setPolicy({ ...s.policy(), sftp: target })
      out(`backups will be copied to ${target.username}@${target.host}:${target.port}:${target.path}; host key ${target.hostKey} pinned`)
    },
  },
  {
    path: ['backup', 'key'],
    usage: '',
    summary: "Print the appliance's public SSH key, for the SFTP account's authorized_keys.",
    run({ out }) {
      out(schedule().publicKey())
    },
  },
  {
    path: ['restore'],
    usage: 'FILE | --kept NAME [--sftp]',
    summary:
      'Check a backup and stage it: it replaces the current data when the services start next (the current data is kept in DATA_DIR/pre-restore-*). --kept restores one of the backups `moat backup list` shows.',
    options: {
      kept: { type: 'string', description: 'a kept backup, by name' },
      sftp: { type: 'boolean', description: 'the kept backup is the one on the SFTP server' },
    },
    async run({ args, opts, out }) {
      let m
      if (typeof opts.kept === 'string') m = await schedule().stage(opts.sftp ? 'sftp' : 'local', opts.kept)
      else {
        need(args, 1, 'backup file')
        m = await stageRestore(loadSettings().dataDir, path.resolve(args[0]))
      }
      out(`backup of ${m.hostname} from ${new Date(m.created_at).toISOString()} staged; restart the services to restore it`)
    },
  },
]
