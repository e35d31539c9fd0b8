/*
 * First start: while no admin exists, the one-time link printed in the log (/setup?token=…)
 * creates the appliance admin. Once one exists the page is gone (404).
 */
import { Hono } from 'hono'
import type { Accounts } from '../../appliance/services/accounts'
import { TenantError } from '../../appliance/services/tenants'
import type { Env } from '../security'
import { Layout } from '../views/layout'

function SetupPage(props: { token: string; error?: string }) {
  return (
    <Layout title="Set up" session={null}>
      <form method="post" action="/setup" class="login">
        <h1>Create the appliance admin</h1>
        {props.error && <p class="error" role="alert">{props.error}</p>}
        <input type="hidden" name="token" value={props.token} />
        <label>E-mail <input type="email" name="email" autocomplete="username" required /></label>
        <label>Password (10 characters or more) <input type="password" name="password" autocomplete="new-password" minlength={10} required /></label>
        <button type="submit">Create</button>
      </form>
    </Layout>
  )
}

export function setupRoutes(accounts: Accounts): Hono<Env> {
  const app = new Hono<Env>()
  app.get('/setup', (c) => (accounts.hasAdmin() ? c.notFound() : c.html(<SetupPage token={c.req.query('token') ?? ''} />)))
  app.post('/setup', async (c) => {
    if (accounts.hasAdmin()) return c.notFound()
    const body = await c.req.parseBody()
    try {
      const id = await accounts.setupFirstAdmin(String(body.token ?? ''), String(body.email ?? ''), String(body.password ?? ''))
      if (id === null) return c.html(<SetupPage token="" error="This setup link is not valid; use the newest one from the log." />, 403)
    } catch (err) {
      if (err instanceof TenantError) return c.html(<SetupPage token={String(body.token ?? '')} error={err.message} />, 400)
      throw err
    }
    return c.redirect('/login', 303)
  })
  return app
}
