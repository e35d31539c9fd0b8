/*
 * The scheduled jobs, for the appliance admin: what each does and when, and running one now
 * (`moat jobs run NAME`): tonight's clean-up after lowering a retention, the digests after a
 * change, a blocklist check after a delisting request. The job runs in this process, as the
 * CLI's does beside the scheduler's; its log lines and result are shown with the list.
 */
import { type Context, Hono } from 'hono'
import type { Db } from '../../appliance/db/database'
import { JOBS, runJob } from '../../appliance/jobs/scheduler'
import type { Accounts } from '../../appliance/services/accounts'
import type { Spool } from '../../appliance/services/spool'
import { type Env, requireLogin } from '../security'
import { Csrf, Layout } from '../views/layout'

/** "17 3 * * *" as people read it; anything else as cron wrote it. */
function when(schedule: string): string {
  const f = schedule.split(' ')
  if (f.length === 6 && f[0].startsWith('*/')) return `every ${f[0].slice(2)} seconds`
  if (f.every((x) => x === '*')) return 'every minute'
  if (f[0].startsWith('*/') && f.slice(1).every((x) => x === '*')) return `every ${f[0].slice(2)} minutes`
  if (/^\d+$/.test(f[0]) && f.slice(1).every((x) => x === '*')) return `hourly, at :${f[0].padStart(2, '0')}`
  if (/^\d+$/.test(f[0]) && /^\d+$/.test(f[1]) && f.slice(2).every((x) => x === '*')) return `daily at ${f[1].padStart(2, '0')}:${f[0].padStart(2, '0')}`
  return schedule
}

export function jobRoutes(deps: { db: Db; spool: Spool; accounts: Accounts }): Hono<Env> {
  const app = new Hono<Env>()
  app.use('/system/jobs', requireLogin(['appliance_admin']))
  app.use('/system/jobs/*', requireLogin(['appliance_admin']))

  const page = (c: Context<Env>, ran?: { name: string; ok: boolean; text: string }) =>
    c.html(
      <Layout title="Scheduled jobs" session={c.get('session')!}>
        <h1>Scheduled jobs</h1>
        {ran && (
          <div id="job-result" role={ran.ok ? 'status' : 'alert'} class={ran.ok ? 'done' : 'error'}>
            <p>{ran.ok ? `${ran.name} ran.` : `${ran.name} failed.`}</p>
            <pre class="body">{ran.text}</pre>
          </div>
        )}
        <table id="jobs">
          <thead><tr><th>Job</th><th>Runs</th><th>What it does</th><th></th></tr></thead>
          <tbody>
            {JOBS.map((j) => (
              <tr>
                <td>{j.name}</td>
                <td>{when(j.schedule)}</td>
                <td>{j.summary}</td>
                <td>
                  <form method="post" action={`/system/jobs/${j.name}`}>
                    <Csrf session={c.get('session')!} />
                    <button type="submit" aria-label={`Run ${j.name} now`}>Run now</button>
                  </form>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </Layout>,
    )

  app.get('/system/jobs', (c) => page(c))

  app.post('/system/jobs/:name', async (c) => {
    const name = c.req.param('name')
    if (!JOBS.some((j) => j.name === name)) return c.notFound()
    const lines: string[] = []
    deps.accounts.audit(c.get('session')!.principal, 'job-run', name)
    try {
      const result = await runJob(name, { db: deps.db, spool: deps.spool, log: (m) => lines.push(m) })
      lines.push(result === null || result === undefined ? 'Nothing to do.' : JSON.stringify(result, null, 2))
      return page(c, { name, ok: true, text: lines.join('\n') })
    } catch (err) {
      lines.push((err as Error).message)
      return page(c, { name, ok: false, text: lines.join('\n') })
    }
  })
  return app
}
