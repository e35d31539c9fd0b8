/* Running the appliance and its jobs. */
// The services (and with them the whole web app) load only for the commands that run them:
// every other command starts without them.
const service = (): typeof import('../../service') => require('../../service')
import { loadSettings, spoolDir } from '../../config'
import { JOBS, runJob } from '../../jobs/scheduler'
import { Spool } from '../../services/spool'
import { type Command, UsageError } from '../command'
import { appliance } from '../context'

export const serviceCommands: Command[] = [
  {
    path: ['start'],
    usage: '',
    summary:
      'Run the appliance in the foreground: SMTP (MOAT_LISTEN:MOAT_SMTP_PORT, default 127.0.0.1:2525), submission (MOAT_SUBMISSION_PORT, default 2587) and web (MOAT_WEB_PORT, default 8080), data in MOAT_DATA_DIR (default ./var).',
    run: () => service().runSupervisor({ smtp: true, web: true }),
  },
  {
    path: ['smtp'],
    usage: '',
    summary: 'Run only the SMTP service, Haraka in this process (for a systemd unit).',
    run: () => new Promise<number>(() => service().execSmtp(loadSettings())), // runs until Haraka exits the process
  },
  {
    path: ['web'],
    usage: '[--no-jobs]',
    summary: 'Run only the web service (HTTPS with MOAT_WEB_TLS=1), with the job scheduler unless --no-jobs (for a systemd unit).',
    options: { 'no-jobs': { type: 'boolean', description: 'leave the jobs to "moat jobs start"' } },
    run: ({ opts }) => service().runSupervisor({ smtp: false, web: true, jobs: !opts['no-jobs'] }),
  },
  { path: ['jobs', 'start'], usage: '', summary: `Run only the job scheduler (${JOBS.map((j) => j.name).join(', ')}) in the foreground (for a systemd unit).`, run: () => service().runJobs() },
  {
    path: ['jobs', 'run'],
    usage: 'NAME [--json]',
    summary: `Run a periodic job now (${JOBS.map((j) => j.name).join(', ')}).`,
    options: { json: { type: 'boolean', description: 'print JSON' } },
    async run({ args, out }) {
      if (!args[0]) throw new UsageError(`name a job: ${JOBS.map((j) => j.name).join(', ')}`)
      const { db } = appliance()
      const result = await runJob(args[0], { db, spool: new Spool(spoolDir(loadSettings().dataDir)), log: out })
      out(result === null ? 'nothing to do' : JSON.stringify(result))
    },
  },
]
