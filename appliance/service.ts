/*
 * Running the appliance: the SMTP service (Haraka as a child process on the rendered root),
 * the web service with the job scheduler, or both under one supervisor for `npm start`.
 * Under systemd each runs as its own unit; the supervisor is for dev mode.
 *
 * Failure: if either part dies, the supervisor stops the other and exits non-zero, so the
 * service manager (or the developer) sees it instead of a half-running appliance.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { serve } from '@hono/node-server'
import { databasePath, loadSettings, spoolDir, type Settings } from './config'
import { openDatabase } from './db/database'
import { renderHarakaRoot } from './haraka/render'
import { startScheduler } from './jobs/scheduler'
import { Spool } from './services/spool'
import { createApp } from '../web/app'
import { Accounts } from './services/accounts'

export const VERSION: string = require('../../package.json').version

function log(msg: string): void {
  process.stdout.write(`[moat] ${new Date().toISOString()} ${msg}\n`)
}

/**
 * Becomes the SMTP service: Haraka runs in this very process, so a service manager's
 * signals (and a test's SIGKILL) reach it directly, with no orphan left behind.
 */
export function execSmtp(settings: Settings): void {
  openDatabase(databasePath(settings.dataDir)).close() // migrate before Haraka's plugins open it
  const root = renderHarakaRoot(settings, log)
  log(`SMTP on ${settings.listen}:${settings.smtpPort}, submission on ${settings.listen}:${settings.submissionPort} (Haraka root ${root})`)
  const bin = require.resolve('haraka/bin/haraka')
  process.argv = [process.argv[0], bin, '-c', root]
  require(bin)
}

function spawnSmtp(): ChildProcess {
  return spawn(process.execPath, [require.resolve('../../bin/moat'), 'smtp'], { stdio: 'inherit', env: process.env })
}

export function startWeb(settings: Settings): { close(): void } {
  const db = openDatabase(databasePath(settings.dataDir))
  const spool = new Spool(spoolDir(settings.dataDir))
  const app = createApp({ db, spool, version: VERSION, clamd: settings.clamd })
  const server = serve({ fetch: app.fetch, hostname: settings.listen, port: settings.webPort })
  const jobs = startScheduler({ db, spool, log })
  const base = `http://${settings.listen.includes(':') ? `[${settings.listen}]` : settings.listen}:${settings.webPort}`
  log(`web on ${base}/`)
  const setup = new Accounts(db).setupToken()
  if (setup) log(`no admin yet: create the first one at ${base}/setup?token=${setup} (one use), or with "moat admin create"`)
  return {
    close() {
      jobs.stop()
      server.close()
      db.close()
    },
  }
}

/** Dev mode (`npm start`): the web service here, the SMTP service as a child process. */
export async function runSupervisor(parts: { smtp: boolean; web: boolean }): Promise<number> {
  const settings = loadSettings()
  // Migrate once, before the parts open the database concurrently.
  openDatabase(databasePath(settings.dataDir)).close()
  const web = parts.web ? startWeb(settings) : null
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
