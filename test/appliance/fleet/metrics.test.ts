/*
 * Metrics and logs at the console, through its own ingest (signed as an agent signs) on a real
 * SQLite file: hourly roll-ups that equal the minutes they sum, plots with gaps where a host
 * was silent, purges that keep what plots need, log lines searchable per host.
 */
import t, { type Test } from 'tap'
import { openDatabase } from '../../../appliance/db/database'
import { Fleet } from '../../../appliance/fleet/console'
import { enrollTestHost } from '../../helpers/fleet'
import { Tenants } from '../../../appliance/services/tenants'

const H = 3_600_000
const T0 = Math.floor(1_800_000_000_000 / H) * H

function setUp(t: Test) {
  const db = openDatabase(`${t.testdir()}/moat.db`)
  t.teardown(() => db.close())
  const org = new Tenants(db).addOrg('acme')
  const fleet = new Fleet(db)
  const { hostId, send } = enrollTestHost(fleet, org.id, 'web01', 'linux', T0)
  return { db, fleet, hostId, send }
}

t.test('a sample a minute: hourly sums equal the minutes, plots have gaps, the host row has the newest', async (t) => {
  const { db, fleet, hostId, send } = setUp(t)
  // Two hours of minutes, then an hour of silence, then one more hour; sent in batches of 60.
  const minutes = [...Array.from({ length: 120 }, (_, i) => i), ...Array.from({ length: 60 }, (_, i) => 180 + i)]
  for (let b = 0; b < minutes.length; b += 60) {
    send(minutes.slice(b, b + 60).map((m) => ({ kind: 'metrics', at: T0 + m * 60_000, data: { cpu: m % 60, memUsed: 1, memTotal: 4, diskUse: 50 + (m % 7), load1: 0.5, netRx: 1000 } })))
  }
  const hours = db.prepare(`SELECT hour, samples, cpu_sum / samples AS cpu, cpu_max, mem_pct_sum / samples AS mem, disk_max FROM fleet_metrics_hourly WHERE host_id = ? ORDER BY hour`).all(hostId)
  t.same(hours, [0, 1, 3].map((h) => ({ hour: T0 / H + h, samples: 60, cpu: 29.5, cpu_max: 59, mem: 25, disk_max: 56 })), 'each hour: 60 samples, their mean and max')
  const host = fleet.hosts(null, T0 + 240 * 60_000)[0]
  t.match(host, { cpu: 59, mem_pct: 25, disk_use: 50 + (239 % 7) }, 'the newest figures on the host row')

  const now = T0 + 240 * 60_000
  const day = fleet.metrics.series(hostId, '24h', now)
  t.equal(day.at.length, 36, '5-minute points where there were samples')
  t.equal(day.cpu[0], 2, 'the mean of minutes 0-4')
  t.notOk(day.at.some((at) => at >= T0 + 120 * 60_000 && at < T0 + 180 * 60_000), 'nothing in the silent hour: the plot shows a gap')
  const week = fleet.metrics.series(hostId, '7d', now)
  t.same(week.cpu, [29.5, 29.5, 29.5])

  // Two days later the samples are gone; the hours stay for the 7- and 30-day plots.
  const later = T0 + 3 * 86_400_000
  t.same(fleet.purge(later), { metricSamples: 180, metricHours: 0, logLines: 0, reports: 0 })
  t.equal(fleet.metrics.series(hostId, '30d', later).at.length, 3)
  t.equal(fleet.metrics.series(hostId, '24h', later).at.length, 0)
})

t.test('log lines: checked before anything is stored, searched by words and priority', async (t) => {
  const { fleet, hostId, send } = setUp(t)
  const entry = (at: number, priority: number, source: string, message: string) => ({ at: T0 + at, priority, source, message })
  send([{ kind: 'logs', at: T0, data: { entries: [entry(1, 3, 'nginx.service', 'upstream timed out'), entry(2, 4, 'kernel', 'EXT4-fs warning on sda1'), entry(3, 6, 'CRON', 'session opened')] } }])
  t.throws(() => send([{ kind: 'metrics', at: T0, data: { cpu: 1 } }, { kind: 'logs', at: T0, data: { entries: [{ at: 'yesterday', priority: 3, message: 'x' }] } }]), /each log entry needs/)
  t.throws(() => send([{ kind: 'logs', at: T0, data: { entries: Array.from({ length: 501 }, () => entry(1, 3, 'x', 'y')) } }]), /at most 500/)
  t.equal(fleet.metrics.latest(hostId), null, 'nothing of a refused batch was stored')

  t.same(fleet.logs.search(hostId).map((l) => l.message), ['session opened', 'EXT4-fs warning on sda1', 'upstream timed out'], 'newest first')
  t.same(fleet.logs.search(hostId, { maxPriority: 4 }).map((l) => l.source), ['kernel', 'nginx.service'], 'warning and worse')
  t.same(fleet.logs.search(hostId, { q: 'NGINX timed' }).map((l) => l.message), ['upstream timed out'], 'every word, in the line or its source, any case')
  t.same(fleet.purge(T0 + 15 * 86_400_000).logLines, 3, 'gone after 14 days')
})

t.test('a month of one host, measured: well under 5 MB', async (t) => {
  const { db, send } = setUp(t)
  const days = 30
  for (let d = 0; d < days; d++) {
    for (let b = 0; b < 1440; b += 200) {
      send(Array.from({ length: Math.min(200, 1440 - b) }, (_, i) => ({
        kind: 'metrics', at: T0 + d * 86_400_000 + (b + i) * 60_000,
        data: { cpu: 12.34567, load1: 0.42, memUsed: 3_123_456_789, memTotal: 8_000_000_000, swapUsed: 0, diskUse: 61.2, processes: 212, netRx: 12345.678, netTx: 2345.678, diskRead: 4096, diskWrite: 81920 },
      })), T0 + d * 86_400_000)
    }
    // The daily purge, as the retention job runs it.
    new Fleet(db).purge(T0 + (d + 1) * 86_400_000)
  }
  db.exec('VACUUM')
  const bytes = (db.prepare(`SELECT sum(pgsize) FROM dbstat WHERE name IN ('fleet_metrics', 'fleet_metrics_hourly')`).pluck().get() as number)
  t.comment(`a month of one host's metrics: ${(bytes / 1024).toFixed(0)} KiB (two days of minutes, 30 days of hours)`)
  t.ok(bytes < 5 * 1024 * 1024, `${bytes} bytes`)
})
