/*
 * The home page, where everyone lands after signing in: today's numbers for what the viewer
 * may see, each a link to the page that explains it, and the last 24 hours as interactive
 * plots. An end user sees their own mail and quarantine; an organisation admin their
 * organisation; an MSP admin all their customers; the appliance admin everything, with the
 * appliance's own delivery problems and alerts.
 */
import { Hono } from 'hono'
import type { Db } from '../../appliance/db/database'
import { MailStats, startOfToday, type Today, VERDICTS } from '../../appliance/stats/mail-stats'
import { type Env, requireLogin } from '../security'
import { StackedBars, verdictClass } from '../views/chart'
import { Layout } from '../views/layout'

interface Tile {
  id: string
  label: string
  value: number
  href: string | null
  /** a number that wants a look when it is not 0 */
  warn?: boolean
}

function tiles(role: string, t: Today, openAlerts: number): Tile[] {
  const user = role === 'user'
  const out: Tile[] = [
    { id: 'inbound', label: user ? 'Mail to you' : 'Mail in', value: t.inbound, href: user ? '/archive' : '/stats' },
    ...(user ? [] : [{ id: 'outbound', label: 'Mail out', value: t.outbound, href: '/stats' }]),
    { id: 'spam', label: 'Spam', value: t.spam, href: '/quarantine?verdict=spam' },
    { id: 'surespam', label: 'Surespam', value: t.surespam, href: '/quarantine?verdict=surespam' },
    { id: 'viruses', label: 'Viruses', value: t.viruses, href: '/quarantine', warn: true },
    { id: 'quarantine', label: 'Quarantine waiting', value: t.quarantineWaiting, href: '/quarantine' },
    { id: 'deferred', label: 'Deliveries retrying', value: t.deferred, href: role === 'appliance_admin' ? '/delivery' : '/tracking', warn: true },
    { id: 'bounced', label: 'Deliveries failed', value: t.bounced, href: role === 'appliance_admin' ? '/delivery' : '/tracking', warn: true },
  ]
  if (!user) out.push({ id: 'alerts', label: 'Open alerts', value: openAlerts, href: '/alerts', warn: true })
  return out
}

export function homeRoutes(deps: { db: Db }): Hono<Env> {
  const app = new Hono<Env>()
  const stats = new MailStats(deps.db)
  const orgName = deps.db.prepare(`SELECT name FROM organisations WHERE id = ?`).pluck()

  app.get('/', async (c, next) => (c.get('session') ? next() : c.redirect('/login', 303)))
  app.get('/', requireLogin(), (c) => {
    const session = c.get('session')!
    const scope = c.get('scope')!
    const role = session.principal.role
    const now = Date.now()
    const today = stats.today(scope, startOfToday(now))
    // Counted once a request already, for the banner every admin page shows (web/app.tsx).
    const open = session.openAlerts ?? 0
    const hourly = stats.hourly(scope, now)
    const labels = hourly.hours.map((h) => new Date(h).toTimeString().slice(0, 5))
    const whose =
      role === 'user' ? 'your mail'
      : scope.orgIds === null ? 'every organisation on this appliance'
      : scope.orgIds.length === 1 ? String(orgName.get(scope.orgIds[0]) ?? 'your organisation')
      : `your ${scope.orgIds.length} organisations`
    const shown = tiles(role, today, open).filter((t) => t.id !== 'surespam' || scope.surespam)
    return c.html(
      <Layout title="Today" session={session}>
        <h1>Today</h1>
        <p class="muted">Since {new Date(today.since).toTimeString().slice(0, 5)}, for {whose}.</p>
        <ul class="tiles" id="today">
          {shown.map((t) => (
            <li class={t.warn && t.value > 0 ? 'tile warn' : 'tile'} data-tile={t.id}>
              {t.href ? <a href={t.href}><strong>{t.value.toLocaleString('en')}</strong> {t.label}</a> : <><strong>{t.value.toLocaleString('en')}</strong> {t.label}</>}
            </li>
          ))}
        </ul>
        <StackedBars
          title={role === 'user' ? 'Your mail, last 24 hours' : 'Mail in, last 24 hours'}
          labels={labels}
          series={VERDICTS.filter((v) => v !== 'surespam' || scope.surespam).map((v) => ({ name: v, cls: verdictClass(v), values: hourly.in[v] }))}
        />
        {role !== 'user' && (
          <StackedBars title="Mail out, last 24 hours" labels={labels} series={VERDICTS.map((v) => ({ name: v, cls: verdictClass(v), values: hourly.out[v] }))} />
        )}
      </Layout>,
    )
  })
  return app
}
