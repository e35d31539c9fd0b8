/*
 * The web application: server-rendered Hono + htmx, every asset served by the app itself
 * (the appliance may be offline). One route file per area under routes/, all behind the
 * security middleware (headers, session, CSRF); every query is scoped by the session.
 */
import fs from 'node:fs'
import path from 'node:path'
import { Hono } from 'hono'
import type { Db } from '../appliance/db/database'
import { Accounts } from '../appliance/services/accounts'
import { Alerts } from '../appliance/services/alerts'
import { Archive } from '../appliance/services/archive'
import { RawStore } from '../appliance/services/raw-store'
import type { Spool } from '../appliance/services/spool'
import { accountRoutes } from './routes/account'
import { loadAssets } from './assets'
import { apiRoutes } from './routes/api'
import { PushNotifier } from '../appliance/notifier/push'
import { notifierRoutes } from './routes/notifier'
import { outlookRoutes } from './routes/outlook'
import { releaseRoutes } from './routes/release'
import { resetRoutes } from './routes/reset'
import { MailStore } from '../appliance/services/mail-store'
import { GroupCommitter } from '../appliance/db/group-commit'
import { Digests } from '../appliance/services/digests'
import { archiveRoutes } from './routes/archive'
import { loginRoutes } from './routes/login'
import { quarantineRoutes } from './routes/quarantine'
import { setupRoutes } from './routes/setup'
import { listRoutes } from './routes/lists'
import { deliveryRoutes } from './routes/delivery'
import { orgRoutes } from './routes/orgs'
import { alertRoutes } from './routes/alerts'
import { fleetApiRoutes, fleetRoutes } from './routes/fleet'
import { aboutRoutes } from './routes/about'
import { auditRoutes } from './routes/audit'
import { classifierRoutes } from './routes/classifier'
import { jobRoutes } from './routes/jobs'
import { ruleRoutes } from './routes/rules'
import { statsRoutes } from './routes/stats'
import { type Probe, systemRoutes } from './routes/system'
import { backupRoutes } from './routes/backups'
import { mspRoutes } from './routes/msps'
import { trackingRoutes } from './routes/tracking'
import { homeRoutes } from './routes/home'
import { fingerprintRoutes } from './routes/fingerprints'
import { adminApiRoutes } from './admin-api/routes'
import { csrfCheck, type Env, loadSession, requireLogin, securityHeaders } from './security'
import { Layout } from './views/layout'

export interface WebDeps {
  db: Db
  spool: Spool
  version: string
  /** clamd address, or null when antivirus is off. */
  clamd: string | null
  /** The UI is served over HTTPS (MOAT_WEB_TLS; dev mode on loopback is not): Secure cookies and HSTS. */
  secureCookies?: boolean
  dataDir?: string
  /** The web UI's address as users reach it (links in mail) and this appliance's name. */
  publicUrl?: string
  hostname?: string
  /** URL or file of the update feed the About page checks. */
  updateFeed?: string | null
  /** Which Web Push endpoints browsers may subscribe (notifier/push.ts; tests add loopback). */
  pushEndpointAllowed?: (url: string) => boolean
  /** Services the status page checks for an answer (SMTP, submission, clamd). */
  probes?: Probe[]
  /** Called once the first admin exists (the console's setup link is then gone). */
  onSetupDone?: () => void
  /** The setup wizard and Status page offer host name and network (the image). */
  hostSettings?: boolean
  /** Public keys a release uploaded on the Status page must be signed with. */
  releaseKeys?: string
  /** The resolver blocklist checks ask (MOAT_DNS_SERVER; null: the system's). */
  dnsServer?: string | null
}

const STATIC: Record<string, { file: string; type: string }> = {
  'htmx.min.js': { file: require.resolve('htmx.org/dist/htmx.min.js'), type: 'text/javascript' },
  // Plots: uPlot (MIT, 50 KB, no dependencies) draws the charts the pages render as SVG first.
  'uPlot.iife.min.js': { file: require.resolve('uplot/dist/uPlot.iife.min.js'), type: 'text/javascript' },
  'uPlot.min.css': { file: require.resolve('uplot/dist/uPlot.min.css'), type: 'text/css' },
  'plots.js': { file: path.resolve(__dirname, '../../web/static/plots.js'), type: 'text/javascript' },
  'moat.css': { file: path.resolve(__dirname, '../../web/static/moat.css'), type: 'text/css' },
  // The notifier's icon, in every tab too.
  'favicon.svg': { file: path.resolve(__dirname, '../../web/notifier/icon.svg'), type: 'image/svg+xml' },
}

function counts(db: Db): Record<string, number> {
  const one = (sql: string) => (db.prepare(sql).get() as { n: number }).n
  return {
    organisations: one('SELECT count(*) AS n FROM organisations'),
    domains: one('SELECT count(*) AS n FROM domains'),
    users: one('SELECT count(*) AS n FROM users'),
    archived: one('SELECT count(*) AS n FROM messages'),
    quarantined: one('SELECT count(*) AS n FROM quarantine WHERE released_at IS NULL'),
    pendingDeliveries: one(`SELECT count(*) AS n FROM deliveries WHERE state IN ('pending', 'queued', 'deferred')`),
  }
}

export function createApp(deps: WebDeps): Hono<Env> {
  const app = new Hono<Env>()
  const accounts = new Accounts(deps.db)
  const raws = new RawStore(deps.db, deps.spool)
  const archive = new Archive(deps.db, raws)
  const antivirus = deps.clamd ? `on (clamd at ${deps.clamd})` : 'OFF: no clamd configured'

  app.use('*', securityHeaders({ https: !!deps.secureCookies }))
  const assets = loadAssets(STATIC)
  app.get('/static/:name', (c) => {
    const a = assets.get(c.req.param('name'))
    if (!a) return c.notFound()
    c.header('Content-Type', a.type)
    c.header('Cache-Control', 'public, max-age=86400')
    return c.body(a.body)
  })
  // Browsers ask for /favicon.ico whatever the page links; every modern one takes the SVG.
  app.get('/favicon.ico', (c) => c.redirect('/static/favicon.svg', 301))
  app.get('/healthz', (c) => c.json({ ok: true, version: deps.version, antivirus, ...counts(deps.db) }))

  // The API authenticates by token, never by cookie: mounted before the session and CSRF layers.
  app.route('/', apiRoutes({ db: deps.db, accounts, raws, archive, version: deps.version, updateFeed: deps.updateFeed ?? null, push: new PushNotifier(deps.db, { endpointAllowed: deps.pushEndpointAllowed }) }) as unknown as Hono<Env>)
  // The admin API: behind the same token check (apiRoutes' middleware covers /api/v1/*).
  app.route('/', adminApiRoutes({ db: deps.db, accounts, raws, version: deps.version }) as unknown as Hono<Env>)
  // The fleet agents sign their requests: no session, no CSRF token.
  app.route('/', fleetApiRoutes(deps.db) as unknown as Hono<Env>)
  // Digest release links and password resets: the token authorises, not a session (and a
  // session must not get in the way).
  const digests = new Digests(deps.db)
  app.route('/', releaseRoutes(digests, accounts))
  const store = new MailStore(deps.db, raws, new GroupCommitter(deps.db))
  app.route('/', resetRoutes({ db: deps.db, store, publicUrl: deps.publicUrl ?? 'http://127.0.0.1:8080', hostname: deps.hostname ?? 'moat' }))
  app.use('*', loadSession(accounts))
  // Open alerts for the banner every admin page shows.
  const alerts = new Alerts(deps.db)
  app.use('*', async (c, next) => {
    const s = c.get('session')
    if (s && !s.mfaPending && s.principal.role !== 'user') s.openAlerts = alerts.list(c.get('scope'), { limit: 100 }).length
    if (s?.viewOrgId) s.viewOrgName = (deps.db.prepare(`SELECT name FROM organisations WHERE id = ?`).get(s.viewOrgId) as { name: string } | undefined)?.name
    await next()
  })
  app.use('*', csrfCheck())
  app.route('/', loginRoutes(accounts, { secureCookies: !!deps.secureCookies }))
  app.route('/', quarantineRoutes({ db: deps.db, accounts, raws, archive }))
  app.route('/', archiveRoutes({ db: deps.db, raws, archive, accounts }))
  app.route('/', notifierRoutes(accounts))
  app.route('/', outlookRoutes({ db: deps.db, accounts, publicUrl: deps.publicUrl ?? 'http://127.0.0.1:8080', version: deps.version }))
  app.route('/', accountRoutes(accounts, digests))
  app.route('/', setupRoutes(accounts, deps.db, {
    onDone: deps.onSetupDone, hostSettings: deps.hostSettings && deps.dataDir ? { dataDir: deps.dataDir, hostname: deps.hostname ?? 'moat' } : null,
    agent: deps.dataDir ? { dataDir: deps.dataDir, version: deps.version, hostname: deps.hostname ?? 'moat' } : null,
  }))
  app.route('/', listRoutes({ db: deps.db, accounts }))
  app.route('/', deliveryRoutes(deps.db))
  app.route('/', orgRoutes({ db: deps.db, accounts, archive, dnsServer: deps.dnsServer ?? null }))
  app.route('/', alertRoutes(deps.db))
  app.route('/', fleetRoutes(deps.db))
  app.route('/', aboutRoutes({ version: deps.version, updateFeed: deps.updateFeed ?? null }))
  app.route('/', statsRoutes({ db: deps.db }))
  app.route('/', ruleRoutes({ db: deps.db, accounts }))
  app.route('/', classifierRoutes({ db: deps.db, accounts }))
  app.route('/', jobRoutes({ db: deps.db, spool: deps.spool, accounts }))
  app.route('/', auditRoutes({ db: deps.db }))
  app.route('/', mspRoutes({ db: deps.db, accounts }))
  app.route('/', trackingRoutes({ db: deps.db }))
  app.route('/', fingerprintRoutes({ db: deps.db, accounts }))
  if (deps.dataDir) app.route('/', backupRoutes({ db: deps.db, accounts, dataDir: deps.dataDir, version: deps.version, hostname: deps.hostname ?? 'moat' }))
  app.route('/', systemRoutes({ db: deps.db, accounts, version: deps.version, antivirus, dataDir: deps.dataDir, hostname: deps.hostname ?? 'moat', probes: deps.probes ?? [], hostSettings: !!deps.hostSettings, releaseKeys: deps.releaseKeys ?? null }))

  app.route('/', homeRoutes({ db: deps.db }))

  return app
}
