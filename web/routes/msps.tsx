/*
 * The appliance admin's MSPs page: several MSPs share one appliance, each with its own
 * organisations and admins. An MSP admin sees only their MSP's organisations (the scope in
 * services/accounts.ts), so this page, which makes MSPs, their admins and hands organisations
 * from one to another, is the appliance admin's alone.
 */
import { type Context, Hono } from 'hono'
import type { Db } from '../../appliance/db/database'
import type { Accounts } from '../../appliance/services/accounts'
import { TenantError, Tenants } from '../../appliance/services/tenants'
import { type Env, requireLogin } from '../security'
import { Csrf, Done, doneOf, Layout } from '../views/layout'

export function mspRoutes(deps: { db: Db; accounts: Accounts }): Hono<Env> {
  const app = new Hono<Env>()
  const tenants = new Tenants(deps.db)
  app.use('/msps', requireLogin(['appliance_admin']))
  app.use('/msps/*', requireLogin(['appliance_admin']))
  const audit = (c: Context<Env>, action: string, detail: string) => deps.accounts.audit(c.get('session')!.principal, action, detail)

  const page = (c: Context<Env>, status: 200 | 400 = 200, error?: string) => {
    const session = c.get('session')!
    const msps = tenants.listMsps()
    const orgs = tenants.listOrgs()
    const mspName = new Map(msps.map((m) => [m.id, m.name]))
    return c.html(
      <Layout title="MSPs" session={session}>
        <h1>MSPs on this appliance</h1>
        <Done {...doneOf(c)} />
        {error && <p class="error" role="alert">{error}</p>}
        <p>Each MSP's admins see and manage only its own organisations; what its customers' users report teaches only its own appliances.</p>
        <table id="msps">
          <thead><tr><th>MSP</th><th class="num">Organisations</th><th>Admins</th></tr></thead>
          <tbody>
            {msps.map((m) => (
              <tr>
                <td>{m.name}</td>
                <td class="num">{m.organisations}</td>
                <td>{m.admins ?? '–'}</td>
              </tr>
            ))}
          </tbody>
        </table>
        <h2>Add an MSP</h2>
        <form method="post" action="/msps" class="filters">
          <Csrf session={session} />
          <input name="name" placeholder="MSP name" aria-label="MSP name" required />
          <button type="submit">Add MSP</button>
        </form>
        <h2>Add an MSP admin</h2>
        <form method="post" action="/msps/admins" class="policy">
          <Csrf session={session} />
          <label>MSP <select name="msp">{msps.map((m) => <option value={m.name}>{m.name}</option>)}</select></label>
          <label>Sign-in address <input name="email" type="email" required /></label>
          <label>Password <input name="password" type="password" autocomplete="new-password" minlength={12} required /></label>
          <button type="submit">Add admin</button>
        </form>
        <h2>Hand an organisation to another MSP</h2>
        <form method="post" action="/msps/move" class="filters">
          <Csrf session={session} />
          <select name="org" aria-label="organisation">{orgs.map((o) => <option value={o.name}>{o.name} ({mspName.get(o.msp_id)})</option>)}</select>
          <select name="msp" aria-label="to MSP">{msps.map((m) => <option value={m.name}>{m.name}</option>)}</select>
          <button type="submit">Hand over</button>
        </form>
      </Layout>,
      status,
    )
  }

  app.get('/msps', (c) => page(c))

  const act = (c: Context<Env>, work: () => string, done: string) => {
    try {
      audit(c, done, work())
      return c.redirect(`/msps?done=${done}`, 303)
    } catch (err) {
      if (err instanceof TenantError) return page(c, 400, err.message)
      throw err
    }
  }

  app.post('/msps', async (c) => {
    const b = await c.req.parseBody()
    return act(c, () => tenants.addMsp(String(b.name ?? '')).name, 'msp-added')
  })

  app.post('/msps/admins', async (c) => {
    const b = await c.req.parseBody()
    try {
      const msp = tenants.msp(String(b.msp ?? ''))
      const email = String(b.email ?? '')
      await deps.accounts.createAdmin(email, String(b.password ?? ''), 'msp_admin', msp.id)
      return act(c, () => `${email.trim().toLowerCase()} for ${msp.name}`, 'msp-admin-added')
    } catch (err) {
      if (err instanceof TenantError) return page(c, 400, err.message)
      throw err
    }
  })

  app.post('/msps/move', async (c) => {
    const b = await c.req.parseBody()
    return act(c, () => {
      const org = tenants.moveOrg(String(b.org ?? ''), String(b.msp ?? ''))
      return `${org.name} to ${String(b.msp).toLowerCase()}`
    }, 'org-moved')
  })
  return app
}
