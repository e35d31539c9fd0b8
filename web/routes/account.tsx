/* The signed-in person's own account: password, quarantine digest, API tokens. */
import { Hono } from 'hono'
import type { Accounts } from '../../appliance/services/accounts'
import type { DigestFrequency, Digests } from '../../appliance/services/digests'
import { TenantError } from '../../appliance/services/tenants'
import { raw } from 'hono/html'
import { renderSVG } from 'uqr'
import { newSecret, otpauthUri } from '../../appliance/services/totp'
import { clientIp, type Env, requireLogin } from '../security'
import { Csrf, Done, doneOf, Layout, when } from '../views/layout'

export function accountRoutes(accounts: Accounts, digests: Digests): Hono<Env> {
  const app = new Hono<Env>()
  app.use('/account', requireLogin())
  app.use('/account/*', requireLogin())

  const page = (c: any, status: 200 | 400 | 403 | 429, message?: string, error?: string, newToken?: string) => {
    const session = c.get('session')!
    const tokens = accounts.listTokens(session.principal)
    const digest = session.principal.kind === 'user' ? digests.preferences(session.principal.id) : null
    return c.html(
      <Layout title="Account" session={session}>
        <h1>{session.principal.email}</h1>
        <p class="muted">Signed in as {session.principal.role.replace('_', ' ')}.</p>
        {message && <p role="status">{message}</p>}
        <Done {...doneOf(c)} />
        {error && <p class="error" role="alert">{error}</p>}
        <form method="post" action="/account/password" class="login">
          <h2>Change password</h2>
          <Csrf session={session} />
          <label>Current password <input type="password" name="current" autocomplete="current-password" required /></label>
          <label>New password <input type="password" name="next" autocomplete="new-password" minlength={10} required /></label>
          <button type="submit">Change password</button>
        </form>
        {digest && (
          <form method="post" action="/account/digest" class="login" id="digest">
            <h2>Quarantine digest</h2>
            <Csrf session={session} />
            <label><input type="checkbox" name="enabled" value="on" checked={digest.enabled} /> Send me a digest of new quarantined mail</label>
            <label>How often{' '}
              <select name="frequency">
                <option value="hourly" selected={digest.frequency === 'hourly'}>every hour</option>
                <option value="every4h" selected={digest.frequency === 'every4h'}>every 4 hours</option>
                <option value="daily" selected={digest.frequency === 'daily'}>daily</option>
              </select>
            </label>
            <label><input type="checkbox" name="surespam" value="on" checked={digest.includeSurespam} /> List surespam too</label>
            <button type="submit">Save</button>
          </form>
        )}
        {digest && (
          <form method="post" action="/account/surespam" class="login" id="show-surespam">
            <h2>Surespam</h2>
            <Csrf session={session} />
            <p class="muted">Mail so surely spam that it is kept quietly, out of your quarantine list.</p>
            <label><input type="checkbox" name="show" value="on" checked={c.get('scope')!.surespam} /> Show surespam in my quarantine</label>
            <button type="submit">Save</button>
          </form>
        )}
        <p><a href="/account/totp">Second factor (TOTP): {session.principal.totp ? 'on' : 'off'}</a></p>
        <h2>Moat where you work</h2>
        <p><a href="/app/">The desktop notifier</a>: new spam as notifications and a search of your mail; install it from Edge or Chrome. <a href="/outlook/">The Outlook add-in</a>: report spam and manage your quarantine from Outlook.</p>
        <h2>API tokens</h2>
        <p class="muted">For the Outlook add-in and the desktop notifier; see <a href="/api/v1/openapi.json">the API description</a>.</p>
        {newToken && (
          <p role="status">
            New token (shown once; copy it now): <code id="new-token">{newToken}</code>
          </p>
        )}
        <table id="tokens">
          <tbody>
            {tokens.map((t) => (
              <tr data-id={t.id}>
                <td>{t.name}</td>
                <td>{when(t.created_at)}</td>
                <td class="muted">{t.last_used_at ? `used ${when(t.last_used_at)}` : 'never used'}</td>
                <td><form method="post" action={`/account/tokens/${t.id}/revoke`} class="inline"><Csrf session={session} /><button type="submit">Revoke</button></form></td>
              </tr>
            ))}
          </tbody>
        </table>
        <form method="post" action="/account/tokens" class="filters">
          <Csrf session={session} />
          <input name="name" placeholder="e.g. Outlook on my laptop" maxlength={80} />
          <input type="password" name="password" placeholder="Your password" autocomplete="current-password" required />
          <button type="submit">New token</button>
        </form>
      </Layout>,
      status,
    )
  }

  app.get('/account', (c) => page(c, 200))

  const totpPage = (c: any, status: 200 | 400, error?: string) => {
    const session = c.get('session')!
    const p = session.principal
    const secret = newSecret()
    return c.html(
      <Layout title="Second factor" session={session}>
        <h1>Second factor (TOTP)</h1>
        {c.get('mustEnrollTotp') && <p role="alert">Admins of this appliance must use a second factor: set it up to continue.</p>}
        {error && <p class="error" role="alert">{error}</p>}
        {p.totp ? (
          <form method="post" action="/account/totp/disable" class="login">
            <p>A second factor is on for {p.email}.</p>
            <Csrf session={session} />
            <label>Current code <input name="code" inputmode="numeric" autocomplete="one-time-code" required /></label>
            <button type="submit">Turn it off</button>
          </form>
        ) : (
          <form method="post" action="/account/totp" class="login">
            <p>Scan this with your authenticator app (or type the key under it), then enter the code it shows.</p>
            {/* Our own SVG, drawn from the key made above: no text from outside goes into it. */}
            <div id="totp-qr" class="qr">{raw(renderSVG(otpauthUri(secret, p.email), { border: 2 }))}</div>
            <p><code id="totp-secret">{secret}</code></p>
            <p class="muted"><code>{otpauthUri(secret, p.email)}</code></p>
            <Csrf session={session} />
            <input type="hidden" name="secret" value={secret} />
            <label>Code <input name="code" inputmode="numeric" autocomplete="one-time-code" required /></label>
            <button type="submit">Turn it on</button>
          </form>
        )}
      </Layout>,
      status,
    )
  }
  app.get('/account/totp', (c) => totpPage(c, 200))
  app.post('/account/totp', async (c) => {
    const body = await c.req.parseBody()
    const p = c.get('session')!.principal
    if (!/^[A-Z2-7]{32}$/.test(String(body.secret ?? ''))) return totpPage(c, 400, 'The form was damaged; start again.')
    if (!accounts.enableTotp(p, String(body.secret), String(body.code ?? ''))) return totpPage(c, 400, 'That code does not match the key; check the app and try again.')
    return c.redirect('/account?done=totp-on', 303)
  })
  app.post('/account/totp/disable', async (c) => {
    const body = await c.req.parseBody()
    if (!accounts.disableTotp(c.get('session')!.principal, String(body.code ?? ''), Date.now(), clientIp(c))) return totpPage(c, 400, 'That code is not right.')
    return c.redirect('/account?done=totp-off', 303)
  })
  app.post('/account/digest', async (c) => {
    const p = c.get('session')!.principal
    if (p.kind !== 'user') return c.notFound()
    const body = await c.req.parseBody()
    const frequency = ['hourly', 'every4h', 'daily'].includes(String(body.frequency)) ? (String(body.frequency) as DigestFrequency) : 'daily'
    digests.setPreferences(p.id, { enabled: body.enabled === 'on', frequency, includeSurespam: body.surespam === 'on' })
    return page(c, 200, 'Digest settings saved.')
  })
  app.post('/account/surespam', async (c) => {
    const p = c.get('session')!.principal
    if (p.kind !== 'user') return c.notFound()
    const on = (await c.req.parseBody()).show === 'on'
    accounts.setShowSurespam(p, on)
    c.set('scope', { ...c.get('scope')!, surespam: on })
    return page(c, 200, on ? 'Surespam is shown in your quarantine.' : 'Surespam is kept out of your quarantine list.')
  })
  app.post('/account/tokens', async (c) => {
    const body = await c.req.parseBody()
    const p = c.get('session')!.principal
    // A token reads the mailbox's quarantine and archive without the password: creating one
    // asks for the password again, checked through the same guard as every sign-in.
    const confirmed = await accounts.confirmPassword(p, String(body.password ?? ''), clientIp(c), 'token')
    if (confirmed === 'throttled') return page(c, 429, undefined, 'Too many wrong passwords; try again later.')
    if (confirmed === 'wrong') return page(c, 403, undefined, 'The password is wrong; no token was created.')
    const { token } = accounts.createToken(p, String(body.name ?? ''))
    return page(c, 200, undefined, undefined, token)
  })
  app.post('/account/tokens/:id/revoke', (c) => {
    if (!accounts.revokeToken(c.get('session')!.principal, Number(c.req.param('id')))) return c.notFound()
    return c.redirect('/account?done=token-revoked', 303)
  })
  app.post('/account/password', async (c) => {
    const body = await c.req.parseBody()
    try {
      const ok = await accounts.changePassword(c.get('session')!.principal, String(body.current ?? ''), String(body.next ?? ''), clientIp(c))
      return ok ? page(c, 200, 'Password changed.') : page(c, 403, undefined, 'The current password is wrong.')
    } catch (err) {
      if (err instanceof TenantError) return page(c, 400, undefined, err.message)
      throw err
    }
  })
  return app
}
