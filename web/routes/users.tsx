/*
 * An organisation's users, for its admins and those above: search, paging, adding one,
 * making one an organisation admin or a user again, removing one. Bulk import is on the
 * organisation page. Users are looked up by id *within* the organisation in scope, so
 * another tenant's user is a 404.
 */
import { type Context, Hono } from 'hono'
import type { Db } from '../../appliance/db/database'
import type { Accounts } from '../../appliance/services/accounts'
import { RelayControl } from '../../appliance/services/relay'
import { normaliseAddress, type Organisation, TenantError, Tenants } from '../../appliance/services/tenants'
import { type Env, requireLogin } from '../security'
import { Csrf, Done, doneOf, Layout, when } from '../views/layout'

const PAGE = 100

interface UserRow {
  id: number
  email: string
  display_name: string | null
  role: 'user' | 'org_admin'
  digest_enabled: number
  created_at: number
}

export function userRoutes(deps: { db: Db; accounts: Accounts; visible: (c: Context<Env>, id: number) => Organisation | undefined }): Hono<Env> {
  const app = new Hono<Env>()
  const tenants = new Tenants(deps.db)
  const relay = new RelayControl(deps.db)
  app.use('/orgs/:id/users', requireLogin(['appliance_admin', 'msp_admin', 'org_admin']))
  app.use('/orgs/:id/users/*', requireLogin(['appliance_admin', 'msp_admin', 'org_admin']))
  const q = {
    page: deps.db.prepare(
      `SELECT id, email, display_name, role, digest_enabled, created_at FROM users
       WHERE org_id = @org AND email > @after AND (@search = '' OR instr(email, @search) > 0 OR instr(lower(coalesce(display_name, '')), @search) > 0)
       ORDER BY email LIMIT @limit`,
    ),
    one: deps.db.prepare(`SELECT id, email, display_name, role, digest_enabled, created_at FROM users WHERE id = ? AND org_id = ?`),
    setRole: deps.db.prepare(`UPDATE users SET role = ? WHERE id = ?`),
  }

  const page = (c: Context<Env>, org: Organisation, status: 200 | 400 = 200, error?: string) => {
    const session = c.get('session')!
    const search = (c.req.query('q') ?? '').trim().toLowerCase()
    const rows = q.page.all({ org: org.id, after: c.req.query('after') ?? '', search, limit: PAGE + 1 }) as UserRow[]
    const more = rows.length > PAGE
    const shown = rows.slice(0, PAGE)
    const next = new URLSearchParams({ ...(search ? { q: search } : {}), after: shown.at(-1)?.email ?? '' })
    return c.html(
      <Layout title={`Users of ${org.name}`} session={session}>
        <h1>Users of <a href={`/orgs/${org.id}`}>{org.name}</a></h1>
        <Done {...doneOf(c)} />
        {error && <p class="error" role="alert">{error}</p>}
        <form method="get" action={`/orgs/${org.id}/users`} class="filters" role="search">
          <input name="q" placeholder="address or name" value={search} />
          <button type="submit">Search</button>
        </form>
        <form method="post" action={`/orgs/${org.id}/users`} class="filters">
          <Csrf session={session} />
          <input name="email" type="email" placeholder="new user's address" required />
          <input name="display_name" placeholder="name (optional)" />
          <select name="role"><option value="user">user</option><option value="org_admin">organisation admin</option></select>
          <button type="submit">Add user</button>
        </form>
        <table id="users">
          <thead><tr><th>Address</th><th class="wide">Name</th><th>Role</th><th class="wide">Digest</th><th class="wide">Since</th><th></th></tr></thead>
          <tbody>
            {shown.map((u) => (
              <tr data-id={u.id}>
                <td>{u.email}</td>
                <td class="wide">{u.display_name ?? ''}</td>
                <td>
                  <form method="post" action={`/orgs/${org.id}/users/${u.id}/role`} class="inline">
                    <Csrf session={session} />
                    <input type="hidden" name="role" value={u.role === 'user' ? 'org_admin' : 'user'} />
                    {u.role === 'org_admin' ? 'organisation admin' : 'user'} <button type="submit">{u.role === 'user' ? 'Make admin' : 'Make user'}</button>
                  </form>
                </td>
                <td class="wide">{u.digest_enabled ? 'on' : 'off'}</td>
                <td class="wide">{when(u.created_at)}</td>
                <td>
                  <form method="post" action={`/orgs/${org.id}/users/${u.id}/password`} class="inline">
                    <Csrf session={session} />
                    <input type="password" name="password" autocomplete="new-password" placeholder="new password" required aria-label={`new password for ${u.email}`} />
                    <button type="submit">Set password</button>
                  </form>
                  <form method="post" action={`/orgs/${org.id}/users/${u.id}/delete`} class="inline"><Csrf session={session} /><button type="submit">Remove</button></form>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
        {!shown.length && <p class="muted">No users match.</p>}
        {more && <p><a href={`/orgs/${org.id}/users?${next}`} rel="next">More →</a></p>}
        <h2>Aliases</h2>
        <p class="muted">Mail to an alias goes to its user, with the user's lists and quarantine.</p>
        <table id="aliases">
          <tbody>
            {tenants.listAliases().filter((a) => a.org_id === org.id).map((a) => (
              <tr data-id={a.id}>
                <td>{a.address}</td>
                <td>→ {a.target}</td>
                <td><form method="post" action={`/orgs/${org.id}/aliases/${a.id}/delete`} class="inline"><Csrf session={session} /><button type="submit">Remove</button></form></td>
              </tr>
            ))}
          </tbody>
        </table>
        <form method="post" action={`/orgs/${org.id}/aliases`} class="filters">
          <Csrf session={session} />
          <input name="address" type="email" placeholder="alias address" required />
          <input name="target" type="email" placeholder="the user it goes to" required />
          <button type="submit">Add alias</button>
        </form>
      </Layout>,
      status,
    )
  }

  const orgOf = (c: Context<Env>) => deps.visible(c, Number(c.req.param('id')))
  /** The user, if it belongs to the organisation in scope; and not the signed-in person (no locking oneself out). */
  const userOf = (c: Context<Env>, org: Organisation) => {
    const u = q.one.get(Number(c.req.param('uid')), org.id) as UserRow | undefined
    const p = c.get('session')!.principal
    return { user: u, self: !!u && p.kind === 'user' && p.id === u.id }
  }

  app.get('/orgs/:id/users', (c) => {
    const org = orgOf(c)
    return org ? page(c, org) : c.notFound()
  })

  app.post('/orgs/:id/users', async (c) => {
    const org = orgOf(c)
    if (!org) return c.notFound()
    const body = await c.req.parseBody()
    try {
      const { domain } = normaliseAddress(String(body.email ?? ''))
      // addUser finds the organisation from the domain: it must be this one.
      if (tenants.domainByName(domain)?.org_id !== org.id) throw new TenantError(`${domain} is not a domain of ${org.name}`)
      const u = tenants.addUser(String(body.email), { displayName: String(body.display_name ?? '') || undefined, role: body.role === 'org_admin' ? 'org_admin' : 'user' })
      deps.accounts.audit(c.get('session')!.principal, 'user-add', `${u.email} (${u.role})`)
    } catch (err) {
      if (err instanceof TenantError) return page(c, org, 400, err.message)
      throw err
    }
    return c.redirect(`/orgs/${org.id}/users?done=user-added`, 303)
  })

  app.post('/orgs/:id/users/:uid/role', async (c) => {
    const org = orgOf(c)
    const { user, self } = org ? userOf(c, org) : { user: undefined, self: false }
    if (!org || !user) return c.notFound()
    if (self) return page(c, org, 400, 'You cannot change your own role.')
    const role = (await c.req.parseBody()).role === 'org_admin' ? 'org_admin' : 'user'
    q.setRole.run(role, user.id)
    deps.accounts.audit(c.get('session')!.principal, 'user-role', `${user.email}: ${role}`)
    return c.redirect(`/orgs/${org.id}/users?done=user-role`, 303)
  })

  app.post('/orgs/:id/users/:uid/delete', (c) => {
    const org = orgOf(c)
    const { user, self } = org ? userOf(c, org) : { user: undefined, self: false }
    if (!org || !user) return c.notFound()
    if (self) return page(c, org, 400, 'You cannot remove your own account.')
    tenants.removeUser(user.email)
    deps.accounts.audit(c.get('session')!.principal, 'user-remove', user.email)
    return c.redirect(`/orgs/${org.id}/users?done=user-removed`, 303)
  })
  // An admin sets a user's password (a new employee, a forgotten one): hashed as every
  // password is, audited; not one's own (the account page asks for the current one).
  app.post('/orgs/:id/users/:uid/password', async (c) => {
    const org = orgOf(c)
    const { user, self } = org ? userOf(c, org) : { user: undefined, self: false }
    if (!org || !user) return c.notFound()
    if (self) return page(c, org, 400, 'Change your own password on your account page.')
    try {
      await relay.setPassword(user.email, String((await c.req.parseBody()).password ?? ''))
    } catch (err) {
      if (err instanceof TenantError) return page(c, org, 400, err.message)
      throw err
    }
    deps.accounts.audit(c.get('session')!.principal, 'user-password', user.email)
    return c.redirect(`/orgs/${org.id}/users?done=user-password`, 303)
  })

  app.post('/orgs/:id/aliases', async (c) => {
    const org = orgOf(c)
    if (!org) return c.notFound()
    const body = await c.req.parseBody()
    try {
      const address = normaliseAddress(String(body.address ?? '')).email
      const target = normaliseAddress(String(body.target ?? '')).email
      // Both sides in this organisation: the target by its user row, the alias by its domain.
      const u = tenants.userByEmail(target)
      if (!u || u.org_id !== org.id) throw new TenantError(`${target} is not a user of ${org.name}`)
      if (tenants.domainByName(address.split('@')[1])?.org_id !== org.id) throw new TenantError(`${address.split('@')[1]} is not a domain of ${org.name}`)
      const a = tenants.addAlias(address, target)
      deps.accounts.audit(c.get('session')!.principal, 'alias-add', `${a.address} -> ${a.target}`)
    } catch (err) {
      if (err instanceof TenantError) return page(c, org, 400, err.message)
      throw err
    }
    return c.redirect(`/orgs/${org.id}/users?done=alias-added`, 303)
  })

  app.post('/orgs/:id/aliases/:aid/delete', (c) => {
    const org = orgOf(c)
    const a = org && tenants.listAliases().find((x) => x.id === Number(c.req.param('aid')) && x.org_id === org.id)
    if (!org || !a) return c.notFound()
    tenants.removeAlias(a.address)
    deps.accounts.audit(c.get('session')!.principal, 'alias-remove', a.address)
    return c.redirect(`/orgs/${org.id}/users?done=alias-removed`, 303)
  })
  return app
}
