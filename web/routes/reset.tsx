/*
 * "Forgot your password?": a form that always answers the same (no account enumeration), an
 * e-mailed single-use link that expires in an hour, and a page to choose the new password.
 */
import { Hono } from 'hono'
import type { Child } from 'hono/jsx'
import type { MailStore } from '../../appliance/services/mail-store'
import { PasswordReset } from '../../appliance/services/password-reset'
import { TenantError } from '../../appliance/services/tenants'
import type { Db } from '../../appliance/db/database'
import type { Env } from '../security'
import { Layout } from '../views/layout'

export function resetRoutes(deps: { db: Db; store: MailStore; publicUrl: string; hostname: string }): Hono<Env> {
  const app = new Hono<Env>()
  const resets = new PasswordReset(deps.db)
  const page = (body: Child) => <Layout title="Reset password" session={null}>{body}</Layout>
  app.get('/reset', (c) =>
    c.html(
      page(
        <form method="post" action="/reset" class="login">
          <h1>Reset your password</h1>
          <label>E-mail <input type="email" name="email" autocomplete="username" required /></label>
          <button type="submit">Send me a link</button>
        </form>,
      ),
    ),
  )
  app.post('/reset', async (c) => {
    const body = await c.req.parseBody()
    await resets.request(String(body.email ?? ''), deps.store, { publicUrl: deps.publicUrl, hostname: deps.hostname })
    return c.html(page(<p role="status">If that address has an account here, a link to reset its password is on its way. It works once, within an hour.</p>))
  })
  const form = (token: string, error?: string) => (
    <form method="post" action={`/reset/${token}`} class="login">
      <h1>Choose a new password</h1>
      {error && <p class="error" role="alert">{error}</p>}
      <label>New password (10 characters or more) <input type="password" name="password" autocomplete="new-password" minlength={10} required /></label>
      <button type="submit">Set password</button>
    </form>
  )
  app.get('/reset/:token', (c) => {
    c.header('Referrer-Policy', 'no-referrer')
    const token = c.req.param('token')
    if (!resets.valid(token)) return c.html(page(<p class="error" role="alert">This link has expired or was used already; ask for a new one.</p>), 410)
    return c.html(page(form(token)))
  })
  app.post('/reset/:token', async (c) => {
    const token = c.req.param('token')
    const body = await c.req.parseBody()
    try {
      if (!(await resets.complete(token, String(body.password ?? '')))) {
        return c.html(page(<p class="error" role="alert">This link has expired or was used already; ask for a new one.</p>), 410)
      }
    } catch (err) {
      if (err instanceof TenantError) return c.html(page(form(token, err.message)), 400)
      throw err
    }
    return c.html(page(<p role="status">Your password is changed; every session of the account was signed out. <a href="/login">Sign in</a></p>))
  })
  return app
}
