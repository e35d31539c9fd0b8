/*
 * The web application. For now a status page and a health endpoint; the admin, MSP and user
 * UI grow here (one route file per resource, mounted with app.route()).
 */
import { Hono } from 'hono'
import type { Db } from '../appliance/db/database'

export interface WebDeps {
  db: Db
  version: string
  /** clamd address, or null when antivirus is off. */
  clamd: string | null
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

export function createApp(deps: WebDeps): Hono {
  const app = new Hono()
  app.use('*', async (c, next) => {
    await next()
    c.header('X-Content-Type-Options', 'nosniff')
    c.header('X-Frame-Options', 'DENY')
    c.header('Content-Security-Policy', "default-src 'self'")
  })
  const antivirus = deps.clamd ? `on (clamd at ${deps.clamd})` : 'OFF: no clamd configured'
  app.get('/healthz', (c) => c.json({ ok: true, version: deps.version, antivirus, ...counts(deps.db) }))
  app.get('/', (c) => {
    const n = counts(deps.db)
    return c.html(
      <html lang="en">
        <head>
          <meta charset="utf-8" />
          <meta name="viewport" content="width=device-width, initial-scale=1" />
          <title>Moat</title>
        </head>
        <body>
          <h1>Moat {deps.version}</h1>
          <p>The appliance is running. The web interface is not built yet; use the <code>moat</code> command.</p>
          <p>Antivirus: {antivirus}</p>
          <ul>
            {Object.entries(n).map(([k, v]) => (
              <li>
                {k}: {v}
              </li>
            ))}
          </ul>
        </body>
      </html>,
    )
  })
  return app
}
