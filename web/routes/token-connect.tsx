/*
 * "Connect" pages for the clients (the desktop notifier at /app/connect, the Outlook add-in's
 * sign-in dialog at /outlook/connect): a signed-in user confirms the password, through the
 * same guard as every sign-in, and the client gets a per-user API token of its own, shown on
 * the account page and revocable there. The token goes to the client by a script of its own
 * (`scripts`), never in a URL.
 */
import { type Context, Hono } from 'hono'
import type { Accounts } from '../../appliance/services/accounts'
import { clientIp, type Env, requireLogin } from '../security'
import { Csrf, Layout } from '../views/layout'

export interface ConnectOptions {
  path: string
  /** What the client is called on the page and in the token list. */
  client: string
  /** Scripts that take the token from #token[data-token] to the client. */
  scripts: string[]
  /** A Content-Security-Policy for the page, when the client needs more than the default. */
  csp?: string
}

export function tokenConnectRoutes(accounts: Accounts, opts: ConnectOptions): Hono<Env> {
  const app = new Hono<Env>()
  const page = (c: Context<Env>, status: 200 | 403 | 429 = 200, error?: string, token?: string) => {
    if (opts.csp) c.header('Content-Security-Policy', opts.csp)
    return c.html(
      <Layout title={`Connect the ${opts.client}`} session={c.get('session')}>
        <h1>Connect the {opts.client}</h1>
        {token ? (
          <>
            <p role="status">Connected. Returning to the {opts.client}…</p>
            <div id="token" data-token={token} />
            {opts.scripts.map((src) => (
              <script src={src} />
            ))}
          </>
        ) : (
          <>
            {error && <p class="error" role="alert">{error}</p>}
            <p>The {opts.client} gets a token of its own to read your quarantine and search your mail; it shows on your account page, where you can revoke it.</p>
            <form method="post" action={opts.path} class="login">
              <Csrf session={c.get('session')!} />
              <input type="password" name="password" placeholder="Your password" autocomplete="current-password" required />
              <button type="submit">Connect</button>
            </form>
          </>
        )}
      </Layout>,
      status,
    )
  }
  app.get(opts.path, requireLogin(), (c) => page(c))
  app.post(opts.path, requireLogin(), async (c) => {
    const p = c.get('session')!.principal
    const confirmed = await accounts.confirmPassword(p, String((await c.req.parseBody()).password ?? ''), clientIp(c), 'token')
    if (confirmed === 'throttled') return page(c, 429, 'Too many wrong passwords; try again later.')
    if (confirmed === 'wrong') return page(c, 403, `The password is wrong; the ${opts.client} was not connected.`)
    const name = opts.client.charAt(0).toUpperCase() + opts.client.slice(1)
    const { token } = accounts.createToken(p, name)
    accounts.audit(p, 'client-connect', name)
    return page(c, 200, undefined, token)
  })
  return app
}
