/*
 * Sign-in and sign-out. The login form is a plain POST /login with `email` and `password`
 * (works without JavaScript); a double-submit cookie guards it against login CSRF, since
 * there is no session yet to hold a token.
 */
import { type Context, Hono } from 'hono'
import { getCookie, setCookie } from 'hono/cookie'
import crypto from 'node:crypto'
import type { Accounts } from '../../appliance/services/accounts'
import { DEVICE_COOKIE, DEVICE_COOKIE_MAX_AGE_S } from '../../appliance/sign-in/password-guard'
import { clearSessionCookie, clientIp, type Env, setSessionCookie, waitWords } from '../security'
import { Layout } from '../views/layout'

const LOGIN_CSRF_COOKIE = 'moat_login'

function safeNext(next: unknown): string {
  // Only our own paths: an open redirect after login is a phishing aid.
  return typeof next === 'string' && /^\/[a-z]/.test(next) && !next.startsWith('//') ? next : '/'
}

function LoginPage(props: { token: string; next: string; error?: string; email?: string; noAdmin: boolean }) {
  return (
    <Layout title="Sign in" session={null}>
      <form method="post" action="/login" class="login">
        <h1>Sign in</h1>
        {props.error && <p class="error" role="alert">{props.error}</p>}
        {props.noAdmin && (
          <p class="notice" id="first-admin">
            No administrator exists yet. Open the one-time setup link that the appliance prints in its log and on its console
            (<code>/setup?token=…</code>), or run <code>moat admin create --email you@example.com --password-file -</code> on the appliance.
          </p>
        )}
        <input type="hidden" name="_login" value={props.token} />
        <input type="hidden" name="next" value={props.next} />
        <label>E-mail <input type="email" name="email" autocomplete="username" required value={props.email ?? ''} /></label>
        <label>Password <input type="password" name="password" autocomplete="current-password" required /></label>
        <button type="submit">Sign in</button>
        <a href="/reset">Forgot your password?</a>
      </form>
    </Layout>
  )
}

export function loginRoutes(accounts: Accounts, opts: { secureCookies: boolean }): Hono<Env> {
  const app = new Hono<Env>()

  const form = (c: Context<Env>, status: 200 | 401 | 403 | 429, next: unknown, error?: string, email?: string) => {
    const token = crypto.randomBytes(18).toString('base64url')
    setCookie(c, LOGIN_CSRF_COOKIE, token, { httpOnly: true, sameSite: 'Strict', secure: opts.secureCookies, path: '/login' })
    return c.html(<LoginPage token={token} next={safeNext(next)} error={error} email={email} noAdmin={!accounts.hasAdmin()} />, status)
  }

  app.get('/login', (c) => (c.get('session') ? c.redirect('/', 303) : form(c, 200, c.req.query('next'))))

  app.post('/login', async (c) => {
    const body = await c.req.parseBody()
    const cookie = getCookie(c, LOGIN_CSRF_COOKIE)
    if (!cookie || cookie !== body._login) return form(c, 403, body.next, 'The form expired; please sign in again.')
    const email = String(body.email ?? '')
    // The device cookie: this browser signed in to this account before, so a stranger's
    // guessing at the account does not slow it (sign-in/password-guard.ts).
    const r = await accounts.login(email, String(body.password ?? ''), clientIp(c), Date.now(), getCookie(c, DEVICE_COOKIE) ?? null)
    if (!r.ok) {
      if (r.reason === 'throttled') c.header('Retry-After', String(r.retryAfterSeconds))
      return r.reason === 'throttled'
        ? form(c, 429, body.next, `Too many failed sign-ins; try again ${waitWords(r.retryAfterSeconds)}.`, email)
        : form(c, 401, body.next, 'Wrong e-mail address or password.', email)
    }
    setCookie(c, DEVICE_COOKIE, r.device, { httpOnly: true, sameSite: 'Lax', secure: opts.secureCookies, path: '/login', maxAge: DEVICE_COOKIE_MAX_AGE_S })
    setSessionCookie(c, r.session.token, opts.secureCookies)
    if (r.session.mfaPending) return c.redirect(`/login/totp?next=${encodeURIComponent(safeNext(body.next))}`, 303)
    return c.redirect(safeNext(body.next), 303)
  })

  const totpForm = (c: Context<Env>, status: 200 | 401, error?: string) => {
    const s = c.get('session')!
    return c.html(
      <Layout title="Second factor" session={null}>
        <form method="post" action="/login/totp" class="login">
          <h1>Code from your authenticator app</h1>
          {error && <p class="error" role="alert">{error}</p>}
          <input type="hidden" name="_csrf" value={s.csrf} />
          <input type="hidden" name="next" value={safeNext(c.req.query('next'))} />
          <input name="code" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9 ]{6,7}" required autofocus />
          <button type="submit">Continue</button>
        </form>
      </Layout>,
      status,
    )
  }
  app.get('/login/totp', (c) => {
    const s = c.get('session')
    if (!s) return c.redirect('/login', 303)
    return s.mfaPending ? totpForm(c, 200) : c.redirect('/', 303)
  })
  app.post('/login/totp', async (c) => {
    const s = c.get('session')
    if (!s) return c.redirect('/login', 303)
    const body = await c.req.parseBody()
    if (!accounts.completeMfa(s, String(body.code ?? ''), Date.now(), clientIp(c))) return totpForm(c, 401, 'That code is not right (or was used already); try the next one.')
    return c.redirect(safeNext(body.next), 303)
  })

  app.post('/logout', (c) => {
    const s = c.get('session')
    if (s) accounts.logout(s.token)
    clearSessionCookie(c)
    return c.redirect('/login', 303)
  })
  return app
}
