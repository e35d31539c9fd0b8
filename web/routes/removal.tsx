/*
 * Removing an organisation (MSP and appliance admins) or one of its domains (anyone who may
 * add one). Each is a page that says what goes with it, then a form: a domain's asks for a
 * click, an organisation's for its name typed out, because its archive cannot come back.
 * Both look the organisation up through the session's scope first: another tenant's is a 404.
 */
import { type Context, Hono } from 'hono'
import type { Db } from '../../appliance/db/database'
import type { Accounts } from '../../appliance/services/accounts'
import type { Archive } from '../../appliance/services/archive'
import { type Organisation, Tenants } from '../../appliance/services/tenants'
import { domainFootprint, orgFootprint, removeOrganisation } from '../../appliance/tenancy/removal'
import { type Env, requireLogin } from '../security'
import { Csrf, Layout } from '../views/layout'

const plural = (n: number, one: string, many = `${one}s`) => `${n.toLocaleString('en')} ${n === 1 ? one : many}`

export function removalRoutes(deps: { db: Db; accounts: Accounts; archive: Archive; visible: (c: Context<Env>, id: number) => Organisation | undefined }): Hono<Env> {
  const app = new Hono<Env>()
  const tenants = new Tenants(deps.db)
  const admins = requireLogin(['appliance_admin', 'msp_admin'])

  const orgConfirm = (c: Context<Env>, org: Organisation, error?: string) => {
    const f = orgFootprint(deps.db, org.id)
    return c.html(
      <Layout title={`Remove ${org.name}`} session={c.get('session')!}>
        <h1>Remove {org.name}</h1>
        {error && <p class="error" role="alert">{error}</p>}
        <p>This deletes the organisation and everything of it, for good:</p>
        <ul id="footprint">
          <li>{plural(f.domains, 'domain')}: mail to {f.domains === 1 ? 'it' : 'them'} is refused from the moment you confirm;</li>
          <li>{plural(f.users, 'user')} and {plural(f.aliases, 'alias', 'aliases')}, their lists and sign-ins;</li>
          <li>{plural(f.messages, 'archived message')}, {plural(f.quarantined, 'of them', 'of them')} in quarantine;</li>
          {f.undelivered > 0 && <li class="error"><strong>{plural(f.undelivered, 'message')} accepted but not yet delivered to its server will never be delivered.</strong></li>}
        </ul>
        <p class="muted">To stop its mail for now and keep everything, suspend it instead. A large archive takes a while to delete; the organisation is suspended while it goes.</p>
        <form method="post" action={`/orgs/${org.id}/remove`} class="filters">
          <Csrf session={c.get('session')!} />
          <label>Type <strong>{org.name}</strong> to confirm <input name="confirm" autocomplete="off" required /></label>
          <button type="submit" class="danger">Remove {org.name} for good</button>
        </form>
        <p><a href={`/orgs/${org.id}`}>Keep it</a></p>
      </Layout>,
      error ? 400 : 200,
    )
  }

  app.get('/orgs/:id/remove', admins, (c) => {
    const org = deps.visible(c, Number(c.req.param('id')))
    return org ? orgConfirm(c, org) : c.notFound()
  })

  app.post('/orgs/:id/remove', admins, async (c) => {
    const org = deps.visible(c, Number(c.req.param('id')))
    if (!org) return c.notFound()
    if (String((await c.req.parseBody()).confirm ?? '').trim() !== org.name) return orgConfirm(c, org, `Type the organisation's name, ${org.name}, exactly.`)
    const dropped = await removeOrganisation(deps.db, deps.archive, org.name)
    deps.accounts.audit(c.get('session')!.principal, 'org-remove', `${org.name} with ${dropped} archived messages`)
    return c.redirect(`/orgs?done=org-removed&n=${dropped}`, 303)
  })

  const domainOf = (c: Context<Env>) => {
    const org = deps.visible(c, Number(c.req.param('id')))
    const d = org && tenants.domainOfOrg(Number(c.req.param('domain')), org.id)
    return org && d ? { org, d } : undefined
  }

  app.get('/orgs/:id/domains/:domain/remove', (c) => {
    const found = domainOf(c)
    if (!found) return c.notFound()
    const { org, d } = found
    const f = domainFootprint(deps.db, d.id)
    return c.html(
      <Layout title={`Remove ${d.name}`} session={c.get('session')!}>
        <h1>Remove {d.name} from {org.name}</h1>
        <ul id="footprint">
          <li>Mail to {d.name} is refused from the moment you confirm.</li>
          <li>{plural(f.users, 'user')} and {plural(f.aliases, 'alias', 'aliases')} of the domain go with it; their archived mail stays with {org.name}.</li>
        </ul>
        <form method="post" action={`/orgs/${org.id}/domains/${d.id}/remove`}>
          <Csrf session={c.get('session')!} />
          <button type="submit" class="danger">Remove {d.name}</button>
        </form>
        <p><a href={`/orgs/${org.id}`}>Keep it</a></p>
      </Layout>,
    )
  })

  app.post('/orgs/:id/domains/:domain/remove', (c) => {
    const found = domainOf(c)
    if (!found) return c.notFound()
    tenants.removeDomain(found.d.name)
    deps.accounts.audit(c.get('session')!.principal, 'domain-remove', `${found.d.name} from ${found.org.name}`)
    return c.redirect(`/orgs/${found.org.id}?done=domain-removed`, 303)
  })
  return app
}
