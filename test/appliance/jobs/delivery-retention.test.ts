import t from 'tap'
import { openDatabase } from '../../../appliance/db/database'
import { DELIVERY_ATTEMPT_DAYS_SETTING, run } from '../../../appliance/jobs/retention'
import { DeliveryMonitor } from '../../../appliance/services/delivery-monitor'
import { Spool } from '../../../appliance/services/spool'
import { StoredSettings } from '../../../appliance/services/stored-settings'

t.test('raw delivery attempts are kept as long as the setting says; the hourly roll-up stays', async (t) => {
  const dir = t.testdir()
  const db = openDatabase(`${dir}/moat.db`)
  t.teardown(() => db.close())
  const m = new DeliveryMonitor(db)
  const now = Date.UTC(2026, 10, 27)
  const base = { queueId: 'q', direction: 'out' as const, domain: 'example.net', mxHost: 'mx', ip: '192.0.2.1', port: 25, tls: false, outcome: 'delivered' as const, code: 250, response: 'ok', connectMs: 1, totalMs: 2, attempt: 1, recipients: 1 }
  await m.record({ ...base, at: now - 3 * 86_400_000 })
  await m.record({ ...base, at: now - 10 * 86_400_000 })
  t.equal((await run({ db, spool: new Spool(`${dir}/spool`), now })).deliveryAttemptsPurged, 0, 'both within the default 14 days')
  new StoredSettings(db).set(DELIVERY_ATTEMPT_DAYS_SETTING, 5)
  t.equal((await run({ db, spool: new Spool(`${dir}/spool`), now })).deliveryAttemptsPurged, 1, 'the 10-day-old one goes with a 5-day window')
  t.equal((db.prepare(`SELECT count(*) AS n FROM delivery_hourly`).get() as { n: number }).n, 2, 'the roll-up is kept')
})

t.test('the roll-up lists every domain behind an IP, once, after the raw attempts are gone', async (t) => {
  const db = openDatabase(`${t.testdir()}/moat.db`)
  t.teardown(() => db.close())
  const m = new DeliveryMonitor(db)
  const now = Date.UTC(2026, 10, 27, 12)
  const base = { queueId: 'q', direction: 'out' as const, mxHost: 'mx', ip: '192.0.2.7', port: 25, tls: true, outcome: 'delivered' as const, code: 250, response: 'ok', connectMs: 1, totalMs: 2, attempt: 1, recipients: 1 }
  for (const [domain, hoursAgo] of [['a.example', 1], ['b.example', 1], ['a.example', 1], ['c.example', 3], ['a.example', 3]] as const) await m.record({ ...base, domain, at: now - hoursAgo * 3_600_000 })
  db.prepare(`DELETE FROM delivery_attempts`).run()
  const [row] = m.stats({ now })
  t.equal(row.domain.split(',').sort().join(','), 'a.example,b.example,c.example', `got ${row.domain}`)
  t.equal(row.attempts, 5)
})
