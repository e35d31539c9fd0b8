/*
 * Organisations for MSP and appliance admins (an organisation admin sees their own): a
 * dashboard across the organisations in scope, creating one, its domains, and bulk user import
 * from CSV with a progress bar. The import runs in chunks of 10,000 rows, each one committed
 * transaction, so the server keeps answering while a big file goes in and the page can poll.
 */
import crypto from 'node:crypto'
import { type Context, Hono } from 'hono'
import type { Db } from '../../appliance/db/database'
import type { Accounts } from '../../appliance/services/accounts'
import type { Archive } from '../../appliance/services/archive'
import { type ImportResult, TenantError, Tenants } from '../../appliance/services/tenants'
import { parseUserCsv } from '../../appliance/services/user-csv'
import { Digests } from '../../appliance/services/digests'
import { type Env, requireLogin } from '../security'
import { Csrf, Done, doneOf, Layout } from '../views/layout'
import { PolicyForm } from '../views/org-policy'
import { orgSettingsRoutes } from './org-settings'
import { outboundRoutes } from './outbound'
import { settingsRoutes } from './settings'
import { userRoutes } from './users'
import { directoryRoutes } from './directory'
import { removalRoutes } from './removal'

const CHUNK = 10_000
const MAX_CSV_BYTES = 50 * 1024 * 1024

interface ImportJob {
  orgId: number
  total: number
  done: number
  result: ImportResult
  finished: boolean
  startedAt: number
  seconds: number
}

export function orgRoutes(deps: { db: Db; accounts: Accounts; archive: Archive; dnsServer?: string | null }): Hono<Env> {
  const app = new Hono<Env>()
  const tenants = new Tenants(deps.db)
  const jobs = new Map<string, ImportJob>()
  app.use('/orgs', requireLogin(['appliance_admin', 'msp_admin']))
  app.use('/orgs/*', requireLogin(['appliance_admin', 'msp_admin', 'org_admin']))

  const visible = (c: Context<Env>, id: number) => {
    const scope = c.get('scope')!
    return scope.orgIds === null || scope.orgIds.includes(id) ? tenants.orgById(id) : undefined
  }
  const dashboard = deps.db.prepare(
    `SELECT o.id, o.name, o.suspended_at,
       (SELECT count(*) FROM domains d WHERE d.org_id = o.id) AS domains,
       (SELECT count(*) FROM users u WHERE u.org_id = o.id) AS users,
       (SELECT count(*) FROM messages m WHERE m.org_id = o.id AND m.received_at > @since) AS messages,
       (SELECT count(*) FROM messages m WHERE m.org_id = o.id AND m.received_at > @since AND m.verdict <> 'clean') AS spam,
       (SELECT count(*) FROM quarantine q WHERE q.org_id = o.id AND q.released_at IS NULL) AS quarantined,
       (SELECT count(*) FROM quarantine q WHERE q.org_id = o.id AND q.created_at > @since AND q.reason = 'virus') AS viruses,
       (SELECT count(*) FROM deliveries d WHERE d.org_id = o.id AND d.updated_at > @since AND d.state IN ('deferred', 'bounced')) AS delivery_problems,
       (SELECT count(*) FROM held_senders h WHERE h.org_id = o.id AND h.released_at IS NULL) AS held
     FROM organisations o ORDER BY o.name`,
  )

  app.get('/orgs', (c) => {
    const session = c.get('session')!
    const scope = c.get('scope')!
    const rows = (dashboard.all({ since: Date.now() - 86_400_000 }) as { id: number; name: string; suspended_at: number | null; domains: number; users: number; messages: number; spam: number; quarantined: number; held: number; viruses: number; delivery_problems: number }[]).filter(
      (o) => scope.orgIds === null || scope.orgIds.includes(o.id),
    )
    return c.html(
      <Layout title="Organisations" session={session}>
        <h1>Organisations</h1>
        <Done {...doneOf(c)} />
        <table id="orgs">
          <thead><tr><th>Organisation</th><th class="num">Domains</th><th class="num">Users</th><th class="num">Mail 24 h</th><th class="num">Spam 24 h</th><th class="num wide">Quarantined</th><th class="num">Viruses 24 h</th><th class="num">Deferred or bounced 24 h</th><th class="num wide">Held senders</th></tr></thead>
          <tbody>
            {rows.map((o) => (
              <tr data-id={o.id}>
                <td><a href={`/orgs/${o.id}`}>{o.name}</a>{o.suspended_at ? ' (suspended)' : ''}</td>
                <td class="num">{o.domains}</td>
                <td class="num">{o.users}</td>
                <td class="num">{o.messages}</td>
                <td class="num">{o.messages ? `${((100 * o.spam) / o.messages).toFixed(1)} %` : '–'}</td>
                <td class="num wide">{o.quarantined}</td>
                <td class="num">{o.viruses}</td>
                <td class="num">{o.delivery_problems}</td>
                <td class="num wide">{o.held}</td>
              </tr>
            ))}
          </tbody>
        </table>
        <form method="post" action="/orgs" class="filters">
          <Csrf session={session} />
          <input name="name" placeholder="new organisation" required />
          {session.principal.role === 'appliance_admin' && tenants.listMsps().length > 1 && (
            <select name="msp" aria-label="for MSP">{tenants.listMsps().map((m) => <option value={m.name}>for {m.name}</option>)}</select>
          )}
          <button type="submit">Create</button>
        </form>
      </Layout>,
    )
  })

  app.post('/orgs', async (c) => {
    const body = await c.req.parseBody()
    const p = c.get('session')!.principal
    try {
      // An MSP admin's organisation belongs to their MSP; the appliance admin picks one.
      const mspId = p.role === 'msp_admin' && p.mspId ? p.mspId : body.msp ? tenants.msp(String(body.msp)).id : undefined
      const org = tenants.addOrg(String(body.name ?? ''), mspId)
      deps.accounts.audit(p, 'org-create', org.name)
      return c.redirect(`/orgs/${org.id}?done=org-created`, 303)
    } catch (err) {
      if (err instanceof TenantError) return c.text(err.message, 400)
      throw err
    }
  })

  const orgPage = (c: Context<Env>, orgId: number, status: 200 | 400 = 200, error?: string) => {
    const org = visible(c, orgId)
    if (!org) return c.notFound()
    const session = c.get('session')!
    const admin = session.principal.role === 'appliance_admin' || session.principal.role === 'msp_admin'
    const domains = tenants.listDomains().filter((d) => d.org_id === org.id)
    const users = (deps.db.prepare(`SELECT count(*) AS n FROM users WHERE org_id = ?`).get(org.id) as { n: number }).n
    const digestFrom = (deps.db.prepare(`SELECT digest_from FROM organisations WHERE id = ?`).get(org.id) as { digest_from: string | null }).digest_from
    return c.html(
      <Layout title={org.name} session={session}>
        <h1>{org.name}{org.suspended_at ? ' (suspended)' : ''}</h1>
        <Done {...doneOf(c)} />
        {error && <p class="error" role="alert">{error}</p>}
        <p><a href={`/orgs/${org.id}/users`}>{users} users</a> · <a href={`/orgs/${org.id}/directory`}>directory</a> · <a href={`/orgs/${org.id}/outbound`}>outbound mail</a> · <a href={`/stats?org=${org.id}`}>statistics</a>{session.principal.role !== 'org_admin' && <> · <a href={`/orgs/${org.id}/fleet-settings`}>fleet settings</a></>}</p>
        {admin && (
          <div class="actions">
            <form method="post" action={`/orgs/${org.id}/view`}><Csrf session={session} /><button type="submit">Switch into {org.name}</button></form>
            <form method="post" action={`/orgs/${org.id}/suspend`}>
              <Csrf session={session} />
              <input type="hidden" name="suspended" value={org.suspended_at ? 'off' : 'on'} />
              <button type="submit">{org.suspended_at ? 'Resume' : 'Suspend'} {org.name}</button>
            </form>
            <a class="danger" href={`/orgs/${org.id}/remove`}>Remove {org.name}…</a>
          </div>
        )}
        <h2>Policy</h2>
        <PolicyForm org={org} session={session} />
        <h2>Domains</h2>
        <table id="domains">
          <tbody>
            {domains.map((d) => (
              <tr data-id={d.id}>
                <td>{d.name}</td>
                <td>→ {d.deliver_host}:{d.deliver_port}</td>
                {(['tag-mode', 'catch-all', 'verify-recipients'] as const).map((k) => {
                  const on = { 'tag-mode': d.tag_mode, 'catch-all': d.catch_all, 'verify-recipients': d.verify_recipients }[k]
                  return (
                    <td>
                      <form method="post" action={`/orgs/${org.id}/domains/${d.id}/${k}`} class="inline">
                        <Csrf session={session} />
                        <input type="hidden" name="value" value={on ? 'off' : 'on'} />
                        <button type="submit" aria-pressed={on ? 'true' : 'false'}>{{ 'tag-mode': 'Tag mode', 'catch-all': 'Catch-all', 'verify-recipients': 'Verify recipients with its server' }[k]}: {on ? 'on' : 'off'}</button>
                      </form>
                    </td>
                  )
                })}
                <td><a href={`/orgs/${org.id}/domains/${d.id}/remove`} aria-label={`Remove ${d.name}`}>Remove…</a></td>
              </tr>
            ))}
          </tbody>
        </table>
        <form method="post" action={`/orgs/${org.id}/domains`} class="filters">
          <Csrf session={session} />
          <input name="name" placeholder="example.com" required />
          <input name="deliver_to" placeholder="mail server host[:port]" required />
          <button type="submit">Add domain</button>
        </form>
        <h2>Import users</h2>
        <form method="post" action={`/orgs/${org.id}/import`} enctype="multipart/form-data" class="filters">
          <Csrf session={session} />
          <input type="file" name="file" accept=".csv,text/csv,text/plain" required />
          <button type="submit">Import CSV</button>
        </form>
        <p class="muted">A header row with email (and display_name, role), or one address per line. Existing users are skipped.</p>
        <h2>Quarantine digests</h2>
        <p class="muted">Off for every new account; each user can change theirs on the account page.</p>
        <div class="actions">
          {(['on', 'off'] as const).map((v) => (
            <form method="post" action={`/orgs/${org.id}/digests`}><Csrf session={session} /><input type="hidden" name="value" value={v} /><button type="submit">Digests {v} for all users</button></form>
          ))}
        </div>
        <form method="post" action={`/orgs/${org.id}/digest-sender`} class="filters">
          <Csrf session={session} />
          <label>Digests come from <input name="address" type="email" size={36} value={digestFrom ?? ''} placeholder={Digests.senderFor({ digest_from: null, first_domain: domains[0]?.name ?? null }, 'this appliance')} /></label>
          <button type="submit">Save</button>
        </form>
      </Layout>,
      status,
    )
  }

  app.get('/orgs/:id', (c) => orgPage(c, Number(c.req.param('id'))))
  app.route('/', orgSettingsRoutes({ db: deps.db, accounts: deps.accounts, page: orgPage, visible }))
  app.route('/', userRoutes({ db: deps.db, accounts: deps.accounts, visible }))
  app.route('/', directoryRoutes({ db: deps.db, accounts: deps.accounts, visible }))
  app.route('/', outboundRoutes({ db: deps.db, accounts: deps.accounts, visible, dnsServer: deps.dnsServer ?? null }))
  app.route('/', settingsRoutes({ db: deps.db, accounts: deps.accounts, visible }))
  app.route('/', removalRoutes({ db: deps.db, accounts: deps.accounts, archive: deps.archive, visible }))

  app.post('/orgs/:id/domains', async (c) => {
    const org = visible(c, Number(c.req.param('id')))
    if (!org) return c.notFound()
    const body = await c.req.parseBody()
    try {
      const d = tenants.addDomain(String(body.name ?? ''), { org: org.name, deliverTo: String(body.deliver_to ?? '') })
      deps.accounts.audit(c.get('session')!.principal, 'domain-add', `${d.name} to ${org.name}`)
    } catch (err) {
      if (err instanceof TenantError) return orgPage(c, org.id, 400, err.message)
      throw err
    }
    return c.redirect(`/orgs/${org.id}?done=domain-added`, 303)
  })

  const progress = (c: Context<Env>, orgId: number, id: string, job: ImportJob) => (
    <div id="import" hx-get={job.finished ? undefined : `/orgs/${orgId}/import/${id}`} hx-trigger={job.finished ? undefined : 'every 500ms'} hx-swap="outerHTML">
      <progress max={String(job.total)} value={String(job.done)}>{job.done}/{job.total}</progress>
      <p id="import-status" role="status">
        {job.finished
          ? `Done: ${job.result.created} users created, ${job.result.skipped} existed already, ${job.result.errors.length} rows with errors (${job.seconds.toFixed(2)} s).`
          : `${job.done} of ${job.total} rows…`}
      </p>
      {job.finished && job.result.errors.length > 0 && (
        <ul class="error">{job.result.errors.slice(0, 50).map((e) => <li>line {e.line}: {e.message}</li>)}</ul>
      )}
      {!job.finished && <noscript><a href={`/orgs/${orgId}/import/${id}?page=1`}>Refresh</a></noscript>}
    </div>
  )

  app.post('/orgs/:id/import', async (c) => {
    const org = visible(c, Number(c.req.param('id')))
    if (!org) return c.notFound()
    const body = await c.req.parseBody()
    const file = body.file
    if (!(file instanceof File) || file.size === 0) return orgPage(c, org.id, 400, 'Choose a CSV file.')
    if (file.size > MAX_CSV_BYTES) return orgPage(c, org.id, 400, `The file is larger than ${MAX_CSV_BYTES / 1024 / 1024} MB.`)
    let rows
    try {
      rows = parseUserCsv(await file.text())
    } catch (err) {
      return orgPage(c, org.id, 400, `That is not a CSV file this import understands: ${(err as Error).message}`)
    }
    const id = crypto.randomBytes(9).toString('base64url')
    const job: ImportJob = { orgId: org.id, total: rows.length, done: 0, result: { created: 0, skipped: 0, errors: [] }, finished: false, startedAt: Date.now(), seconds: 0 }
    jobs.set(id, job)
    const principal = c.get('session')!.principal
    const step = (from: number) => {
      const r = tenants.importUsers(rows.slice(from, from + CHUNK), undefined, org.id)
      job.result.created += r.created
      job.result.skipped += r.skipped
      job.result.errors.push(...r.errors)
      job.done = Math.min(rows.length, from + CHUNK)
      if (job.done < rows.length) setImmediate(() => step(from + CHUNK))
      else {
        job.finished = true
        job.seconds = (Date.now() - job.startedAt) / 1000
        deps.accounts.audit(principal, 'user-import', `${org.name}: ${job.result.created} created, ${job.result.errors.length} errors`)
        setTimeout(() => jobs.delete(id), 3_600_000).unref()
      }
    }
    setImmediate(() => step(0))
    return c.html(
      <Layout title={`Import into ${org.name}`} session={c.get('session')}>
        <h1>Importing users into {org.name}</h1>
        {progress(c, org.id, id, job)}
        <p><a href={`/orgs/${org.id}`}>Back to {org.name}</a></p>
      </Layout>,
    )
  })

  app.get('/orgs/:id/import/:job', (c) => {
    const org = visible(c, Number(c.req.param('id')))
    const job = jobs.get(c.req.param('job'))
    if (!org || !job || job.orgId !== org.id) return c.notFound()
    if (c.req.header('HX-Request')) return c.html(progress(c, org.id, c.req.param('job'), job))
    return c.html(<Layout title="Import" session={c.get('session')}>{progress(c, org.id, c.req.param('job'), job)}</Layout>)
  })
  return app
}
