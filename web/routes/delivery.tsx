/*
 * The delivery monitor: per destination IP (and, filtered, for one domain), what happened to our deliveries hour by hour, how
 * long connecting and delivering took, and whose side the trouble is on (theirs, the
 * network's, or ours when our address is on a blocklist). Appliance-wide, so appliance admins
 * only.
 */
import { Hono } from 'hono'
import type { Db } from '../../appliance/db/database'
import { DeliveryMonitor } from '../../appliance/services/delivery-monitor'
import { type Env, requireLogin } from '../security'
import { Lines, StackedBars } from '../views/chart'
import { Layout } from '../views/layout'

const HOUR_MS = 3_600_000

export function deliveryRoutes(db: Db): Hono<Env> {
  const app = new Hono<Env>()
  const monitor = new DeliveryMonitor(db)
  app.get('/delivery', requireLogin(['appliance_admin']), (c) => {
    const hours = Math.min(24 * 31, Math.max(1, Number(c.req.query('hours')) || 24))
    const ip = c.req.query('ip') || undefined
    const domain = c.req.query('domain')?.trim() || undefined
    const now = Date.now()
    const stats = monitor.stats({ hours, ip, domain, now })
    const rows = monitor.series({ hours, ip, domain, now }) as { hour: number; attempts: number; delivered: number; deferred: number; bounced: number; failed: number; rbl: number; connect_ms_sum: number; connect_count: number; total_ms_sum: number }[]
    // One bucket per hour of the window, summed over the IPs shown.
    const first = Math.floor(now / HOUR_MS) - hours + 1
    const buckets = Array.from({ length: hours }, (_, i) => ({ hour: first + i, delivered: 0, deferred: 0, failed: 0, rbl: 0, connectSum: 0, connectN: 0, totalSum: 0, attempts: 0 }))
    for (const r of rows) {
      const b = buckets[r.hour - first]
      if (!b) continue
      b.delivered += r.delivered
      b.deferred += r.deferred
      b.failed += r.bounced + r.failed - r.rbl
      b.rbl += r.rbl
      b.connectSum += r.connect_ms_sum
      b.connectN += r.connect_count
      b.totalSum += r.total_ms_sum
      b.attempts += r.attempts
    }
    const labels = buckets.map((b) => new Date(b.hour * HOUR_MS).toISOString().slice(5, 13).replace('T', ' ') + 'h')
    const side = { theirs: 'their side', network: 'network', ours: 'OUR side', none: '' } as Record<string, string>
    return c.html(
      <Layout title="Delivery monitor" session={c.get('session')}>
        <h1>Delivery monitor{ip ? `: ${ip}` : ''}{domain ? ` for ${domain}` : ''}</h1>
        <form method="get" action="/delivery" class="filters">
          <input name="ip" placeholder="destination IP" value={ip ?? ''} />
          <input name="domain" placeholder="destination domain" value={domain ?? ''} />
          <select name="hours">
            {[6, 24, 72, 168, 720].map((h) => <option value={String(h)} selected={h === hours}>{h < 48 ? `${h} hours` : `${h / 24} days`}</option>)}
          </select>
          <button type="submit">Show</button>
        </form>
        <StackedBars
          title="Attempts per hour"
          labels={labels}
          series={[
            { name: 'delivered', cls: 's-ok', values: buckets.map((b) => b.delivered) },
            { name: 'deferred', cls: 's-defer', values: buckets.map((b) => b.deferred) },
            { name: 'failed', cls: 's-fail', values: buckets.map((b) => b.failed) },
            { name: 'refused for our blocklisting', cls: 's-ours', values: buckets.map((b) => b.rbl) },
          ]}
        />
        <Lines
          title="Average time per attempt"
          unit="ms"
          labels={labels}
          series={[
            { name: 'connect', cls: 's-ok', values: buckets.map((b) => (b.connectN ? Math.round(b.connectSum / b.connectN) : 0)) },
            { name: 'whole attempt', cls: 's-line', values: buckets.map((b) => (b.attempts ? Math.round(b.totalSum / b.attempts) : 0)) },
          ]}
        />
        <table id="delivery">
          <thead><tr><th>Destination</th><th class="num">Attempts</th><th class="num">Delivered</th><th class="num">Deferred</th><th class="num">Failed</th><th class="num wide">Connect ms</th><th class="num wide">Total ms</th><th>Whose side</th></tr></thead>
          <tbody>
            {stats.map((s) => (
              <tr data-ip={s.ip}>
                <td><a href={`/delivery?ip=${encodeURIComponent(s.ip)}&hours=${hours}`}>{s.ip}</a> {s.domain.split(',').map((d) => <> <a class="muted" href={`/delivery?domain=${encodeURIComponent(d)}&hours=${hours}`}>{d}</a></>)}</td>
                <td class="num">{s.attempts}</td>
                <td class="num">{s.delivered}</td>
                <td class="num">{s.deferred}</td>
                <td class="num">{s.bounced + s.failed}</td>
                <td class="num wide">{s.avg_connect_ms ?? ''}</td>
                <td class="num wide">{s.avg_total_ms ?? ''}</td>
                <td>
                  {s.diagnosis.length
                    ? s.diagnosis.map((d) => <div class={d.side === 'ours' ? 'side-ours' : ''}>{d.count} × {side[d.side]}: {d.reason}</div>)
                    : 'ok'}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
        {!stats.length && <p class="muted">No deliveries in this window.</p>}
      </Layout>,
    )
  })
  return app
}
