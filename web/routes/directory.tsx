/*
 * An organisation's directory (directory/sync.ts): where its users come from, the last sync
 * and what it skipped, a preview and a sync now. The organisation's admins see it and may
 * sync; only MSP and appliance admins set the source, because it makes the appliance connect
 * to a host and port of the form's choosing. The bind password is never sent back to the page.
 */
import { type Context, Hono } from 'hono'
import type { Db } from '../../appliance/db/database'
import { AD_FILTER, DirectoryError, directorySourceSchema, DirectorySync, type SyncResult } from '../../appliance/directory/sync'
import type { Accounts } from '../../appliance/services/accounts'
import type { Organisation } from '../../appliance/services/tenants'
import { type Env, requireLogin } from '../security'
import { Csrf, Layout, when } from '../views/layout'

const count = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`

const MSP_ROLES: ('appliance_admin' | 'msp_admin')[] = ['appliance_admin', 'msp_admin']

function Outcome(props: { r: SyncResult; id: string; dry?: boolean }) {
  const r = props.r
  return (
    <div id={props.id}>
      <p>
        {r.found} in the directory ({r.disabled} disabled): {count(r.added.length, 'user')} {props.dry ? 'would be ' : ''}added, {r.removed.length} removed; {count(r.aliasesAdded.length, 'alias', 'aliases')} added, {r.aliasesRemoved.length} removed.
      </p>
      {[...r.added.map((a) => `+ ${a}`), ...r.removed.map((a) => `− ${a}`), ...r.aliasesAdded.map((a) => `+ alias ${a}`), ...r.aliasesRemoved.map((a) => `− alias ${a}`)].length > 0 && (
        <ul class="changes">
          {r.added.map((a) => <li>+ {a}</li>)}
          {r.removed.map((a) => <li>− {a}</li>)}
          {r.aliasesAdded.map((a) => <li>+ alias {a}</li>)}
          {r.aliasesRemoved.map((a) => <li>− alias {a}</li>)}
        </ul>
      )}
      {r.skipped.length > 0 && (
        <table class="skipped">
          <thead><tr><th>Skipped</th><th>Why</th></tr></thead>
          <tbody>{r.skipped.map((s) => <tr><td>{s.address}</td><td>{s.why}</td></tr>)}</tbody>
        </table>
      )}
    </div>
  )
}

export function directoryRoutes(deps: { db: Db; accounts: Accounts; visible: (c: Context<Env>, id: number) => Organisation | undefined }): Hono<Env> {
  const app = new Hono<Env>()
  const sync = new DirectorySync(deps.db)
  app.use('/orgs/:id/directory', requireLogin(['appliance_admin', 'msp_admin', 'org_admin']))
  app.use('/orgs/:id/directory/*', requireLogin(['appliance_admin', 'msp_admin', 'org_admin']))
  const orgOf = (c: Context<Env>) => deps.visible(c, Number(c.req.param('id')))
  const audit = (c: Context<Env>, org: Organisation, action: string, detail: string) => deps.accounts.audit(c.get('session')!.principal, action, `${org.name}: ${detail}`.trim())

  const page = (c: Context<Env>, org: Organisation, status: 200 | 400 = 200, message?: { error?: string; ok?: string; preview?: SyncResult }) => {
    const session = c.get('session')!
    const s = sync.source(org.id)
    const mayEdit = (MSP_ROLES as string[]).includes(session.principal.role)
    return c.html(
      <Layout title={`Directory of ${org.name}`} session={session}>
        <h1>Directory of <a href={`/orgs/${org.id}`}>{org.name}</a></h1>
        {message?.error && <p class="error" role="alert">{message.error}</p>}
        {message?.ok && <p class="done" role="status" id="done">{message.ok}</p>}
        {message?.preview && (
          <>
            <h2>Preview: nothing was changed</h2>
            <Outcome r={message.preview} id="preview" dry />
          </>
        )}
        {s ? (
          <>
            <p id="source">
              Users come from <code>{s.url}</code> under <code>{s.baseDn}</code>, read as <code>{s.bindDn}</code>, every {s.everyMinutes} minutes. Users and aliases made by hand are never removed by it.
            </p>
            <p id="last-sync" class={s.lastError ? 'error' : ''}>
              {s.lastOkAt ? `Last good sync ${when(s.lastOkAt)}.` : 'Not synced yet.'}
              {s.lastError && ` The last attempt (${when(s.lastAttemptAt)}) failed: ${s.lastError}`}
            </p>
            {s.lastResult && <Outcome r={s.lastResult} id="last-result" />}
            <form method="post" action={`/orgs/${org.id}/directory/sync`} class="inline">
              <Csrf session={session} />
              <button type="submit" name="dry" value="1">Preview</button> <button type="submit">Sync now</button>
            </form>
          </>
        ) : (
          <p id="source">No directory: users are added here, by CSV import or with the CLI.</p>
        )}
        {mayEdit && (
          <>
            <h2>{s ? 'Change the directory' : 'Take users from LDAP or Active Directory'}</h2>
            <form method="post" action={`/orgs/${org.id}/directory`} class="policy">
              <Csrf session={session} />
              <label>Server <input name="url" value={s?.url ?? ''} placeholder="ldaps://dc1.example.local" required /></label>
              <label>Bind DN <input name="bindDn" value={s?.bindDn ?? ''} placeholder="CN=moat,OU=Service,DC=example,DC=local" required /></label>
              <label>Bind password <input name="bindPassword" type="password" autocomplete="off" placeholder={s ? 'unchanged' : ''} required={!s} /></label>
              <label>Base DN <input name="baseDn" value={s?.baseDn ?? ''} placeholder="DC=example,DC=local" required /></label>
              <label>Filter <input name="filter" value={s?.filter ?? AD_FILTER} required /></label>
              <label>Every (minutes) <input name="everyMinutes" type="number" min="5" max="10080" value={String(s?.everyMinutes ?? 60)} required /></label>
              <button type="submit">Save</button>
            </form>
            {s && (
              <form method="post" action={`/orgs/${org.id}/directory/remove`} class="inline">
                <Csrf session={session} />
                <button type="submit">Stop syncing (users stay)</button>
              </form>
            )}
          </>
        )}
      </Layout>,
      status,
    )
  }

  app.get('/orgs/:id/directory', (c) => {
    const org = orgOf(c)
    return org ? page(c, org) : c.notFound()
  })

  app.post('/orgs/:id/directory', requireLogin(MSP_ROLES), async (c) => {
    const org = orgOf(c)
    if (!org) return c.notFound()
    const b = await c.req.parseBody()
    const before = sync.source(org.id)
    const password = String(b.bindPassword ?? '')
    const checked = directorySourceSchema.safeParse({
      url: String(b.url ?? '').trim(), bindDn: String(b.bindDn ?? '').trim(), bindPassword: password || before?.bindPassword || '',
      baseDn: String(b.baseDn ?? '').trim(), filter: String(b.filter ?? '').trim(), everyMinutes: Number(b.everyMinutes),
    })
    if (!checked.success) return page(c, org, 400, { error: `Not saved: ${checked.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}` })
    sync.setSource(org.id, checked.data)
    audit(c, org, 'directory-set', `${checked.data.url} ${checked.data.baseDn}`)
    return page(c, org, 200, { ok: 'Saved. Preview a sync to see what it would change.' })
  })

  app.post('/orgs/:id/directory/sync', async (c) => {
    const org = orgOf(c)
    if (!org) return c.notFound()
    const dry = (await c.req.parseBody()).dry === '1'
    try {
      const r = await sync.sync(org.id, { apply: !dry })
      if (dry) return page(c, org, 200, { preview: r })
      audit(c, org, 'directory-sync', `+${r.added.length} -${r.removed.length} users`)
      return page(c, org, 200, { ok: `Synced: ${count(r.added.length, 'user')} added, ${r.removed.length} removed.` })
    } catch (err) {
      if (err instanceof DirectoryError) return page(c, org, 400, { error: `Not synced: ${err.message}` })
      throw err
    }
  })

  app.post('/orgs/:id/directory/remove', requireLogin(MSP_ROLES), (c) => {
    const org = orgOf(c)
    if (!org) return c.notFound()
    sync.removeSource(org.id)
    audit(c, org, 'directory-remove', '')
    return page(c, org, 200, { ok: 'No longer synced from a directory; its users stay.' })
  })
  return app
}
