/*
 * `moat update`: applies a signed release (release-package.ts) to an installed appliance.
 *
 * Layout: INSTALL_ROOT/releases/<version>/ holds each release, INSTALL_ROOT/current is a
 * symlink to the running one; the units start INSTALL_ROOT/current/bin/moat. An update
 *   1. checks the file (signature, hash) and unpacks it beside the running release;
 *   2. runs the new release's own `moat selfcheck` (it loads, its native module works, it
 *      knows the database's schema) while the old one keeps serving;
 *   3. stops the services, snapshots the database, and switches `current` with one rename;
 *   4. starts the services and waits until the web service reports the new version and
 *      SMTP answers 220;
 *   5. if that does not happen in time, stops them, switches back, puts the snapshot back
 *      if the new release had migrated the database, and starts the old release again.
 * Mail waiting in Haraka's queue is files that both releases read, so a rollback loses no
 * accepted message. The outcome is kept in DATA_DIR/updates/status.json.
 */
import { incomingReleaseFile } from '../agent/commands-run'
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import https from 'node:https'
import http from 'node:http'
import net from 'node:net'
import path from 'node:path'
import Database from 'better-sqlite3'
import { schemaOfFile } from '../db/database'
import { writeFileAtomic } from '../files'
import { extractPayload, openRelease, ReleaseError, type ReleaseInfo } from './release-package'
import { compareVersions } from './updates'

export interface UpdateOptions {
  installRoot: string
  dataDir: string
  releaseKeys: string
  /** Stops or starts all Moat services: called with "stop" or "start". */
  services: (action: 'stop' | 'start') => void
  /** Resolves true once the given version serves (web /healthz and SMTP). */
  healthy: (version: string) => Promise<boolean>
  log: (msg: string) => void
  /** Apply even when the release is not newer than the running one. */
  force?: boolean
}

export interface UpdateStatus {
  state: 'applied' | 'rolled-back' | 'refused'
  from: string | null
  to: string | null
  at: number
  message: string
}

export const updatesDir = (dataDir: string) => path.dirname(incomingReleaseFile(dataDir))
/** Where the web UI (and the fleet agent's apply-update) leaves a release for the root path unit. */
export const incomingFile = incomingReleaseFile

export function lastUpdateStatus(dataDir: string): UpdateStatus | null {
  try {
    return JSON.parse(fs.readFileSync(path.join(updatesDir(dataDir), 'status.json'), 'utf8')) as UpdateStatus
  } catch {
    return null
  }
}

function writeStatus(dataDir: string, s: UpdateStatus): UpdateStatus {
  writeFileAtomic(path.join(updatesDir(dataDir), 'status.json'), `${JSON.stringify(s)}\n`)
  return s
}

export function currentRelease(installRoot: string): { dir: string; version: string } | null {
  try {
    const dir = fs.realpathSync(path.join(installRoot, 'current'))
    const version = (JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as { version: string }).version
    return { dir, version }
  } catch {
    return null
  }
}

/** Points INSTALL_ROOT/current at `dir` with one rename, so no start ever sees no release. */
export function switchCurrent(installRoot: string, dir: string): void {
  const link = path.join(installRoot, 'current')
  const tmp = path.join(installRoot, `.current-${process.pid}`)
  fs.rmSync(tmp, { force: true })
  fs.symlinkSync(path.relative(installRoot, dir), tmp)
  fs.renameSync(tmp, link)
}

/** The node a release runs under: its own if it ships one, else this one. */
export function releaseNode(dir: string): string {
  const own = path.join(dir, 'node/bin/node')
  return fs.existsSync(own) ? own : process.execPath
}

function selfcheck(dir: string, dataDir: string): string | null {
  const r = spawnSync(releaseNode(dir), [path.join(dir, 'bin/moat'), 'selfcheck'], {
    encoding: 'utf8',
    timeout: 300_000,
    env: { ...process.env, MOAT_DATA_DIR: dataDir },
  })
  if (r.status === 0) return null
  const lines = (r.stderr || r.stdout || r.error?.message || `exit ${r.status}`).trim().split('\n')
  // Its own findings, or the error it crashed with, rather than a stack trace's tail.
  const said = lines.filter((l) => /^(selfcheck:|\w*Error\b)/.test(l.trim()))
  return (said.length ? said : lines.slice(-3)).map((l) => l.trim()).join(' / ')
}

async function snapshotDatabase(dbFile: string, to: string): Promise<void> {
  if (!fs.existsSync(dbFile)) return
  const db = new Database(dbFile, { fileMustExist: true })
  try {
    await db.backup(to)
  } finally {
    db.close()
  }
}

function restoreDatabase(snapshot: string, dbFile: string): void {
  for (const suffix of ['-wal', '-shm']) fs.rmSync(`${dbFile}${suffix}`, { force: true })
  fs.copyFileSync(snapshot, `${dbFile}.rollback`)
  fs.renameSync(`${dbFile}.rollback`, dbFile)
}

/**
 * The updater runs as root; the services as the data folder's owner. Whatever root opened
 * or copied (the database, the -wal and -shm SQLite makes beside it) goes back to that
 * owner, or the services could not write their own database.
 */
function keepOwner(dataDir: string): void {
  if (process.getuid?.() !== 0) return
  const { uid, gid } = fs.statSync(dataDir)
  for (const f of ['moat.db', 'moat.db-wal', 'moat.db-shm']) {
    const p = path.join(dataDir, f)
    if (fs.existsSync(p)) fs.chownSync(p, uid, gid)
  }
}

function prune(installRoot: string, keep: string[]): void {
  const dir = path.join(installRoot, 'releases')
  const all = fs
    .readdirSync(dir)
    .map((n) => path.join(dir, n))
    .filter((p) => !keep.includes(p))
    .sort((a, b) => fs.statSync(b).mtimeMs - fs.statSync(a).mtimeMs)
  // The running release and the one before it stay; older ones and failed attempts go.
  for (const p of all) fs.rmSync(p, { recursive: true, force: true })
}

export async function applyUpdate(file: string, o: UpdateOptions): Promise<UpdateStatus> {
  const dir = updatesDir(o.dataDir)
  fs.mkdirSync(dir, { recursive: true })
  const lock = path.join(dir, '.lock')
  try {
    fs.closeSync(fs.openSync(lock, 'wx'))
  } catch {
    throw new ReleaseError(`another update is running (${lock})`)
  }
  const work = fs.mkdtempSync(path.join(dir, 'work-'))
  const old = currentRelease(o.installRoot)
  let info: ReleaseInfo | null = null
  const refuse = (message: string) => writeStatus(o.dataDir, { state: 'refused', from: old?.version ?? null, to: info?.version ?? null, at: Date.now(), message })
  try {
    if (!old) throw new ReleaseError(`no installed release at ${o.installRoot}/current`)
    const opened = await openRelease(file, o.releaseKeys, work)
    info = opened.info
    if (!o.force && compareVersions(info.version, old.version) <= 0) {
      return refuse(`release ${info.version} is not newer than the running ${old.version} (use --force to apply it anyway)`)
    }
    const releases = path.join(o.installRoot, 'releases')
    const target = path.join(releases, `${info.version}-${Date.now()}`)
    o.log(`update: unpacking ${info.version} into ${target}`)
    await extractPayload(opened.payload, `${target}.partial`)
    fs.renameSync(`${target}.partial`, target)
    const problem = selfcheck(target, o.dataDir)
    keepOwner(o.dataDir)
    if (problem) {
      fs.rmSync(target, { recursive: true, force: true })
      return refuse(`release ${info.version} failed its self-check, nothing was changed: ${problem}`)
    }

    const dbFile = path.join(o.dataDir, 'moat.db')
    const snapshot = path.join(dir, `pre-update-${old.version}.db`)
    o.log(`update: stopping the services, ${old.version} -> ${info.version}`)
    o.services('stop')
    const schemaBefore = schemaOfFile(dbFile)
    await snapshotDatabase(dbFile, snapshot)
    keepOwner(o.dataDir)
    switchCurrent(o.installRoot, target)
    o.services('start')
    if (await o.healthy(info.version)) {
      prune(o.installRoot, [target, old.dir])
      o.log(`update: ${info.version} is running`)
      return writeStatus(o.dataDir, { state: 'applied', from: old.version, to: info.version, at: Date.now(), message: `updated from ${old.version} to ${info.version}` })
    }

    o.log(`update: ${info.version} did not pass its health check; rolling back to ${old.version}`)
    o.services('stop')
    switchCurrent(o.installRoot, old.dir)
    const migrated = schemaOfFile(dbFile) !== schemaBefore
    if (migrated && fs.existsSync(snapshot)) restoreDatabase(snapshot, dbFile)
    keepOwner(o.dataDir)
    o.services('start')
    const back = await o.healthy(old.version)
    fs.rmSync(target, { recursive: true, force: true })
    return writeStatus(o.dataDir, {
      state: 'rolled-back',
      from: old.version,
      to: info.version,
      at: Date.now(),
      message: `${info.version} did not become healthy; ${old.version} is running again${migrated ? ' with the database as it was before the update' : ''}${back ? '' : ' (but it is not answering either: check the services)'}`,
    })
  } catch (err) {
    if (err instanceof ReleaseError) return refuse(err.message)
    throw err
  } finally {
    fs.rmSync(work, { recursive: true, force: true })
    fs.rmSync(lock, { force: true })
  }
}

/** Runs `MOAT_SERVICE_CONTROL stop|start`, or systemctl on the appliance's units. */
export function serviceControl(command: string | null): (action: 'stop' | 'start') => void {
  return (action) => {
    const [cmd, args] = command ? [command, [action]] : ['systemctl', [action, 'moat-smtp.service', 'moat-web.service', 'moat-jobs.service', 'moat-agent.service']]
    const r = spawnSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'inherit', 'inherit'], timeout: 300_000 })
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.error?.message ?? `exit ${r.status}`})`)
  }
}

function webVersion(host: string, port: number, tls: boolean): Promise<string | null> {
  return new Promise((resolve) => {
    const req = (tls ? https : http).get(
      { host, port, path: '/healthz', timeout: 5000, ...(tls ? { rejectUnauthorized: false } : {}) },
      (res) => {
        let body = ''
        res.on('data', (d) => (body += d))
        res.on('end', () => {
          try {
            resolve((JSON.parse(body) as { version?: string }).version ?? null)
          } catch {
            resolve(null)
          }
        })
      },
    )
    req.on('timeout', () => req.destroy())
    req.on('error', () => resolve(null))
  })
}

function smtpBanner(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, host)
    s.setTimeout(10_000, () => s.destroy())
    s.once('data', (d) => {
      resolve(d.toString('latin1').startsWith('220'))
      s.end('QUIT\r\n')
    })
    s.on('error', () => resolve(false))
    s.on('close', () => resolve(false))
  })
}

/** Health as the units serve it: /healthz names the version, and SMTP says 220. */
export function healthCheck(opts: { host: string; webPort: number; webTls: boolean; smtpPort: number; timeoutMs: number }): (version: string) => Promise<boolean> {
  return async (version) => {
    const deadline = Date.now() + opts.timeoutMs
    while (Date.now() < deadline) {
      if ((await webVersion(opts.host, opts.webPort, opts.webTls)) === version && (await smtpBanner(opts.host, opts.smtpPort))) return true
      await new Promise((r) => setTimeout(r, 1000))
    }
    return false
  }
}
