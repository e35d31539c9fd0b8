/*
 * Runs the appliance's periodic jobs with node-cron. Each job runs on its own: one that
 * fails is logged and does not stop the others or the next run.
 */
import cron from 'node-cron'
import type { Db } from '../db/database'
import type { Spool } from '../services/spool'
import * as retention from './retention'
import { loadSettings } from '../config'
import { RblWatch } from '../services/rbl-watch'
import { Digests } from '../services/digests'
import { GroupCommitter } from '../db/group-commit'
import { MailStore } from '../services/mail-store'
import { RawStore } from '../services/raw-store'
import { learnPendingReports } from '../engine/reports'
import { mailIncidents } from '../fleet/alert-mail'
import { watchFleet } from '../fleet/watch'
import { PushNotifier } from '../notifier/push'
import { learnFingerprints } from '../learning/learn-fingerprints'
import { BackupSchedule } from '../backups/schedule'
import { DirectorySync } from '../directory/sync'

// Read here rather than from service.ts, which imports this module.
const VERSION: string = require('../../../package.json').version

function runDigests(deps: JobDeps): Promise<unknown> {
  const s = loadSettings()
  const store = new MailStore(deps.db, new RawStore(deps.db, deps.spool), new GroupCommitter(deps.db))
  return new Digests(deps.db).run(store, { publicUrl: s.publicUrl, hostname: s.hostname })
}

export interface JobDeps {
  db: Db
  spool: Spool
  log: (msg: string) => void
}

/** Each job with a line saying what it does, for `moat jobs run` and the Jobs page. */
export const JOBS: { name: string; schedule: string; summary: string; run: (deps: JobDeps) => Promise<unknown> }[] = [
  // Every 5 minutes: is tonight's backup due (or one the appliance slept through)? backups/schedule.ts.
  {
    name: 'backup',
    schedule: '*/5 * * * *',
    summary: "Makes tonight's backup when it is due (or one the appliance slept through) and copies it off the box.",
    run: (deps) => {
      const s = loadSettings()
      return new BackupSchedule({ db: deps.db, dataDir: s.dataDir, version: VERSION, hostname: s.hostname }).tick()
    },
  },
  // Every 5 minutes: each organisation's directory, when its own interval has passed (directory/sync.ts).
  { name: 'directory-sync', schedule: '*/5 * * * *', summary: "Syncs each organisation's users from its directory when its interval has passed.", run: (deps) => new DirectorySync(deps.db).syncDue(Date.now(), deps.log) },
  { name: 'retention', schedule: '17 3 * * *', summary: 'Deletes quarantine, archive, tracking and fleet records past their retention.', run: (deps) => retention.run(deps) },
  // Hourly: each user's digest goes out when their hourly / 4-hourly / daily turn comes.
  { name: 'digests', schedule: '5 * * * *', summary: "Sends each user's quarantine digest when their turn has come.", run: (deps) => runDigests(deps) },
  // Every 5 minutes: the desktop notifier's pushes, each browser at the interval its user chose.
  { name: 'push', schedule: '*/5 * * * *', summary: "Sends the desktop notifier's spam counts to the browsers due one.", run: (deps) => new PushNotifier(deps.db).run({ subject: `mailto:postmaster@${loadSettings().hostname}` }) },
  // Every 30 minutes: a listing stops the sender who caused it within half an hour.
  { name: 'rbl-watch', schedule: '*/30 * * * *', summary: "Checks the appliance's own addresses against the blocklists; a listing holds the sender who caused it.", run: (deps) => new RblWatch(deps.db, loadSettings().dnsServer).run() },
  // Every minute: what users reported steers the classifier a minute later (engine/reports.ts).
  // A run that found nothing pending returns null: no log line every minute.
  // Every minute: a host gone silent or a disk filling up is an alert (and a webhook call) within a minute.
  {
    name: 'fleet-watch',
    schedule: '* * * * *',
    summary: 'Opens and resolves fleet incidents (hosts gone silent, disks filling) and mails them.',
    run: async (deps) => {
      const r = await watchFleet(deps.db, { log: deps.log })
      // And the MSP's mail, through the appliance's own mail path (as digests go).
      const mailed = await mailIncidents(deps.db, new MailStore(deps.db, new RawStore(deps.db, deps.spool), new GroupCommitter(deps.db)), loadSettings().hostname)
      return r.opened || r.resolved || r.sent || mailed ? { ...r, mailed } : null
    },
  },
  {
    name: 'learn-reports',
    schedule: '* * * * *',
    summary: "Teaches the classifier the users' waiting spam and not-spam reports.",
    run: async (deps) => {
      const r = await learnPendingReports(deps.db)
      return r.learned ? r : null
    },
  },
  // Every 15 seconds: a reported campaign's fingerprints reach the mail path (moat-fuzzy) and,
  // through the agent, the MSP's other appliances (learning/, agent/learning.ts).
  {
    name: 'fingerprints',
    schedule: '*/15 * * * * *',
    summary: 'Turns new reports into campaign fingerprints for the mail path and the rest of the fleet.',
    run: async (deps) => {
      const r = await learnFingerprints(deps.db, new RawStore(deps.db, deps.spool))
      return r.reports || r.auto || r.outbound ? r : null
    },
  },
]

export async function runJob(name: string, deps: JobDeps): Promise<unknown> {
  const job = JOBS.find((j) => j.name === name)
  if (!job) throw new Error(`no job named ${name}; known: ${JOBS.map((j) => j.name).join(', ')}`)
  return job.run(deps)
}

export function startScheduler(deps: JobDeps): { stop(): void } {
  const tasks = JOBS.map((job) =>
    cron.schedule(job.schedule, async () => {
      try {
        const result = await job.run(deps)
        if (result !== null) deps.log(`job ${job.name}: ${JSON.stringify(result)}`)
      } catch (err) {
        deps.log(`job ${job.name} failed: ${(err as Error).stack || err}`)
      }
    }),
  )
  return { stop: () => tasks.forEach((t) => t.stop()) }
}
