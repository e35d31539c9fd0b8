/*
 * Running the appliance: the SMTP service (Haraka as a child process on the rendered root),
 * the web service with the job scheduler, or both under one supervisor for `npm start`.
 * Under systemd each runs as its own unit; the supervisor is for dev mode.
 *
 * Failure: if either part dies, the supervisor stops the other and exits non-zero, so the
 * service manager (or the developer) sees it instead of a half-running appliance.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import fs from 'node:fs'
import https from 'node:https'
import path from 'node:path'
import { ensureCertificate } from './tls'
import { serve } from '@hono/node-server'
import { PushNotifier } from './notifier/push'
import { databasePath, loadSettings, spoolDir, type Settings } from './config'
import { type Db, openDatabase } from './db/database'
import { applyPendingRestore } from './backups/backup'
import { renderHarakaRoot } from './haraka/render'
import { startScheduler } from './jobs/scheduler'
import { Spool } from './services/spool'
import { createApp } from '../web/app'
import type { Probe } from '../web/routes/system'
import { Accounts } from './services/accounts'

import { VERSION } from './version'

export { VERSION }

function log(msg: string): void {
  process.stdout.write(`[moat] ${new Date().toISOString()} ${msg}\n`)
}

/**
 * Becomes the SMTP service: Haraka runs in this very process, so a service manager's
 * signals (and a test's SIGKILL) reach it directly, with no orphan left behind.
 */
/** The database, once a restore staged since the last start is in place (every service starts here). */
function openData(dataDir: string): Db {
  applyPendingRestore(dataDir, log)
  return openDatabase(databasePath(dataDir))
}

export function execSmtp(settings: Settings): void {
  openData(settings.dataDir).close() // migrate before Haraka's plugins open it
  const root = renderHarakaRoot(settings, log)
  log(`SMTP on ${settings.listen}:${settings.smtpPort}, submission on ${settings.listen}:${settings.submissionPort} (Haraka root ${root})`)
  const bin = require.resolve('haraka/bin/haraka')
  process.argv = [process.argv[0], bin, '-c', root]
  require(bin)
}

function spawnSmtp(): ChildProcess {
  return spawn(process.execPath, [require.resolve('../../bin/moat'), 'smtp'], { stdio: 'inherit', env: process.env })
}

/** What the status page checks: our SMTP ports on loopback when listening on every address, and clamd over TCP. */
function servicesToProbe(settings: Settings): Probe[] {
  const host = settings.listen === '0.0.0.0' || settings.listen === '::' ? '127.0.0.1' : settings.listen
  const probes: Probe[] = [
    { name: 'SMTP', host, port: settings.smtpPort },
    { name: 'Submission', host, port: settings.submissionPort },
  ]
  const clamd = /^([^/:]+|\[[^\]]+\]):(\d+)$/.exec(settings.clamd ?? '')
  if (clamd) probes.push({ name: 'clamd', host: clamd[1].replace(/^\[|\]$/g, ''), port: Number(clamd[2]) })
  return probes
}

/** Where the one-time setup link is left for the appliance's console screen (/etc/issue). */
export function setupUrlFile(dataDir: string): string {
  return path.join(dataDir, 'setup-url')
}

export function startWeb(settings: Settings, opts: { jobs: boolean } = { jobs: true }): { close(): void } {
  const db = openData(settings.dataDir)
  const spool = new Spool(spoolDir(settings.dataDir))
  const linkFile = setupUrlFile(settings.dataDir)
  const app = createApp({ db, spool, version: VERSION, clamd: settings.clamd, secureCookies: settings.webTls, dataDir: settings.dataDir, updateFeed: settings.updateFeed, publicUrl: settings.publicUrl, hostname: settings.hostname, probes: servicesToProbe(settings), onSetupDone: () => fs.rmSync(linkFile, { force: true }), hostSettings: settings.hostSettings, releaseKeys: settings.releaseKeys, dnsServer: settings.dnsServer })
  const host = settings.listen.includes(':') ? `[${settings.listen}]` : settings.listen
  let server
  if (settings.webTls) {
    const tls = ensureCertificate(settings.dataDir, settings.hostname, log)
    if (!tls) throw new Error('MOAT_WEB_TLS is set but there is no certificate (is openssl installed?)')
    server = serve({
      fetch: app.fetch, hostname: settings.listen, port: settings.webPort, createServer: https.createServer,
      serverOptions: { key: fs.readFileSync(tls.key), cert: fs.readFileSync(tls.cert), minVersion: 'TLSv1.2' },
    })
  } else {
    server = serve({ fetch: app.fetch, hostname: settings.listen, port: settings.webPort })
  }
  const jobs = opts.jobs ? startScheduler({ db, spool, log }) : null
  const base = `${settings.webTls ? 'https' : 'http'}://${host}:${settings.webPort}`
  log(`web on ${base}/`)
  // Per-install keys are made at first start, never shipped: the notifier's VAPID pair.
  new PushNotifier(db).keys()
  const setup = new Accounts(db).setupToken()
  if (setup) {
    const link = `${settings.publicUrl}/setup?token=${setup}`
    log(`no admin yet: create the first one at ${link} (one use), or with "moat admin create"`)
    fs.writeFileSync(linkFile, `${link}\n`, { mode: 0o600 })
  } else fs.rmSync(linkFile, { force: true })
  return {
    close() {
      jobs?.stop()
      server.close()
      db.close()
    },
  }
}

/** The job scheduler alone (its own systemd unit on the appliance). */
export function runJobs(): Promise<number> {
  const settings = loadSettings()
  const db = openData(settings.dataDir)
  const jobs = startScheduler({ db, spool: new Spool(spoolDir(settings.dataDir)), log })
  log('jobs scheduler running')
  return new Promise<number>((resolve) => {
    const stop = () => {
      jobs.stop()
      db.close()
      resolve(0)
    }
    process.once('SIGINT', stop)
    process.once('SIGTERM', stop)
  })
}

/** Dev mode (`npm start`): the web service here, the SMTP service as a child process. */
export async function runSupervisor(parts: { smtp: boolean; web: boolean; jobs?: boolean }): Promise<number> {
  const settings = loadSettings()
  // Migrate once, before the parts open the database concurrently.
  openData(settings.dataDir).close()
  const web = parts.web ? startWeb(settings, { jobs: parts.jobs !== false }) : null
  const smtp = parts.smtp ? spawnSmtp() : null
  return new Promise<number>((resolve) => {
    let stopping = false
    const stop = (code: number) => {
      if (stopping) return
      stopping = true
      web?.close()
      if (smtp && smtp.exitCode === null) {
        // SIGINT with graceful_shutdown: Haraka finishes its SMTP sessions and plugin shutdown.
        smtp.kill('SIGINT')
        const t = setTimeout(() => smtp.kill('SIGKILL'), 15_000)
        smtp.once('exit', () => {
          clearTimeout(t)
          resolve(code)
        })
      } else resolve(code)
    }
    smtp?.once('exit', (code, signal) => {
      if (!stopping) log(`SMTP service exited (${signal ?? code}); stopping`)
      stop(stopping ? 0 : 1)
    })
    for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => stop(0))
  })
}
