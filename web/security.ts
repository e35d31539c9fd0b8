/*
 * What every request passes through: security headers with a strict Content-Security-Policy
 * (no inline script or style anywhere; htmx and the stylesheet are files of ours), the
 * session from its cookie, and the CSRF check on every state-changing request: a form field
 * `_csrf` or htmx's `X-CSRF-Token` header must equal the session's token.
 */
import type { Context, MiddlewareHandler } from 'hono'
import { deleteCookie, getCookie, setCookie } from 'hono/cookie'
import crypto from 'node:crypto'
import type { Accounts, Role, Scope, Session } from '../appliance/services/accounts'

export const SESSION_COOKIE = 'moat_session'

export type Env = { Variables: { session: Session | null; scope: Scope | null; mustEnrollTotp: boolean } }

export const CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "frame-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ')

/** The client's address as the socket saw it (the appliance is reached directly, not through a proxy). */
export function clientIp(c: Context): string {
  return (c.env as { incoming?: { socket?: { remoteAddress?: string } } } | undefined)?.incoming?.socket?.remoteAddress ?? 'local'
}

/** "in 40 seconds", "in 3 minutes": how long a throttled person waits, in words. */
export function waitWords(seconds: number): string {
  return seconds < 90 ? `in ${seconds} seconds` : `in ${Math.ceil(seconds / 60)} minutes`
}

/** A year, as the HSTS preload list asks; the appliance's own host only (not its subdomains). */
export const HSTS = 'max-age=31536000'

/** `https`: the UI is served over TLS (MOAT_WEB_TLS), so browsers are told to keep to it (HSTS). */
export function securityHeaders(opts: { https?: boolean } = {}): MiddlewareHandler {
  return async (c, next) => {
    await next()
    if (opts.https) c.header('Strict-Transport-Security', HSTS)
    c.header('X-Content-Type-Options', 'nosniff')
    c.header('Referrer-Policy', 'no-referrer')
    if (!c.res.headers.get('Content-Security-Policy')) {
      c.header('X-Frame-Options', 'DENY')
      c.header('Content-Security-Policy', CSP)
    }
    if (c.res.headers.get('Content-Type')?.startsWith('text/html')) c.header('Cache-Control', 'no-store')
  }
}

export function loadSession(accounts: Accounts): MiddlewareHandler<Env> {
  return async (c, next) => {
    const session = accounts.session(getCookie(c, SESSION_COOKIE))
    c.set('session', session)
    c.set('scope', session ? accounts.sessionScope(session) : null)
    c.set('mustEnrollTotp', session ? accounts.mustEnrollTotp(session.principal) : false)
    await next()
  }
}

function sameToken(a: string | undefined, b: string): boolean {
  if (!a) return false
  const x = Buffer.from(a)
  const y = Buffer.from(b)
  return x.length === y.length && crypto.timingSafeEqual(x, y)
}

/** Refuses a state-changing request of a session without its CSRF token. */
export function csrfCheck(): MiddlewareHandler<Env> {
  return async (c, next) => {
    const session = c.get('session')
    if (session && !['GET', 'HEAD', 'OPTIONS'].includes(c.req.method)) {
      let token = c.req.header('X-CSRF-Token')
      if (!token && /form/.test(c.req.header('Content-Type') ?? '')) {
        const body = await c.req.parseBody({ all: true })
        token = typeof body._csrf === 'string' ? body._csrf : undefined
      }
      if (!sameToken(token, session.csrf)) return c.text('Forbidden: missing or wrong CSRF token; reload the page', 403)
    }
    await next()
  }
}

export function setSessionCookie(c: Context, token: string, secure: boolean): void {
  setCookie(c, SESSION_COOKIE, token, { httpOnly: true, sameSite: 'Lax', secure, path: '/' })
}

export function clearSessionCookie(c: Context): void {
  deleteCookie(c, SESSION_COOKIE, { path: '/' })
}

/** Only signed-in principals (with one of `roles`, when given); others go to the login page. */
export function requireLogin(roles?: Role[]): MiddlewareHandler<Env> {
  return async (c, next) => {
    const session = c.get('session')
    if (!session) {
      if (c.req.header('HX-Request')) {
        c.header('HX-Redirect', '/login')
        return c.body(null, 401)
      }
      return c.redirect(`/login?next=${encodeURIComponent(c.req.path)}`, 303)
    }
    // Password checked, second factor not yet: only the TOTP step.
    if (session.mfaPending) return c.redirect('/login/totp', 303)
    // Admins without a second factor set one up before anything else (appliance policy).
    if (c.get('mustEnrollTotp') && !c.req.path.startsWith('/account/totp')) return c.redirect('/account/totp', 303)
    if (roles && !roles.includes(session.principal.role)) return c.notFound()
    await next()
  }
}
