/*
 * Allow and block lists in the web UI: an end user keeps their own, an organisation admin the
 * organisation's (and sees its users' entries), the appliance and MSP admins every list of the
 * organisations in their scope. The quarantine preview's "allow sender" and "block sender"
 * buttons add to the signed-in person's own level.
 */
import { type Context, Hono } from 'hono'
import type { Db } from '../../appliance/db/database'
import type { Accounts, Principal, Scope } from '../../appliance/services/accounts'
import { type ListEntry, type ListKind, SenderLists } from '../../appliance/services/sender-lists'
import { TenantError } from '../../appliance/services/tenants'
import { type Env, requireLogin } from '../security'
import { Csrf, Done, doneOf, Layout, when } from '../views/layout'

export function visibleEntriesFor(lists: SenderLists, scope: Scope): ListEntry[] {
  // A user or an organisation admin reads their organisation's entries only, not the appliance's.
  const rows = scope.orgIds?.length === 1 ? lists.list(scope.orgIds[0]) : lists.list()
  return rows.filter((e) => (scope.orgIds === null || scope.orgIds.includes(e.org_id)) && (scope.userId === null || e.user_id === scope.userId))
}

function visibleEntries(lists: SenderLists, c: Context<Env>): ListEntry[] {
  return visibleEntriesFor(lists, c.get('scope')!)
}

/** Adds to the principal's own level: a user's list, or (an admin) the given organisation's. */
export function addForPrincipal(lists: SenderLists, p: Principal, orgId: number, kind: ListKind, pattern: string): ListEntry {
  return lists.add(orgId, p.role === 'user' ? p.id : null, kind, pattern)
}

export function listRoutes(deps: { db: Db; accounts: Accounts }): Hono<Env> {
  const app = new Hono<Env>()
  const lists = new SenderLists(deps.db)
  app.use('/lists', requireLogin())
  app.use('/lists/*', requireLogin())
  const orgs = deps.db.prepare(`SELECT id, name FROM organisations ORDER BY name`)

  const page = (c: Context<Env>, status: 200 | 400 = 200, error?: string) => {
    const session = c.get('session')!
    const scope = c.get('scope')!
    const mine = (orgs.all() as { id: number; name: string }[]).filter((o) => scope.orgIds === null || scope.orgIds.includes(o.id))
    const entries = visibleEntries(lists, c)
    return c.html(
      <Layout title="Allow and block lists" session={session}>
        <h1>Allow and block lists</h1>
        <Done {...doneOf(c)} />
        <p class="muted">An allow-listed sender's mail is delivered whatever its score, but never when it fails sender authentication or carries a virus. A blocked sender's mail goes to the quarantine.</p>
        {error && <p class="error" role="alert">{error}</p>}
        <form method="post" action="/lists" class="filters">
          <Csrf session={session} />
          <select name="kind"><option value="allow">Allow</option><option value="block">Block</option></select>
          <input name="pattern" placeholder="sender@example.net or @example.net" required />
          {session.principal.role !== 'user' && (
            <select name="org">{mine.map((o) => <option value={String(o.id)}>{o.name}</option>)}</select>
          )}
          <button type="submit">Add</button>
        </form>
        <table id="lists">
          <thead><tr><th>Kind</th><th>Sender</th><th>For</th><th class="wide">Added</th><th></th></tr></thead>
          <tbody>
            {entries.map((e) => (
              <tr data-id={e.id}>
                <td>{e.kind}</td>
                <td>{e.pattern}</td>
                <td>{e.user ?? `all of ${e.org}`}</td>
                <td class="wide">{when(e.created_at)}</td>
                <td>
                  <form method="post" action={`/lists/${e.id}/delete`} class="inline"><Csrf session={session} /><button type="submit">Remove</button></form>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
        {!entries.length && <p class="muted">No entries.</p>}
      </Layout>,
      status,
    )
  }

  app.get('/lists', (c) => page(c))
  app.post('/lists', async (c) => {
    const body = await c.req.parseBody()
    const p = c.get('session')!.principal
    const scope = c.get('scope')!
    const orgId = p.role === 'user' ? p.orgId! : Number(body.org)
    if (scope.orgIds !== null && !scope.orgIds.includes(orgId)) return c.notFound()
    try {
      const e = addForPrincipal(lists, p, orgId, body.kind === 'block' ? 'block' : 'allow', String(body.pattern ?? ''))
      deps.accounts.audit(p, `list-add`, `${e.kind} ${e.pattern} for ${e.user ?? e.org}`)
    } catch (err) {
      if (err instanceof TenantError) return page(c, 400, err.message)
      throw err
    }
    return c.redirect('/lists?done=list-added', 303)
  })
  app.post('/lists/:id/delete', (c) => {
    const id = Number(c.req.param('id'))
    const e = visibleEntries(lists, c).find((x) => x.id === id)
    if (!e) return c.notFound()
    lists.remove(id)
    deps.accounts.audit(c.get('session')!.principal, 'list-remove', `${e.kind} ${e.pattern} for ${e.user ?? e.org}`)
    return c.redirect('/lists?done=list-removed', 303)
  })
  return app
}
