/*
 * Fleet incidents on a real SQLite file, posted to a real HTTP server on loopback (the MSP's
 * ticketing system): opened once, resolved once, sent again when the webhook was down.
 */
import http from 'node:http'
import t from 'tap'
import { openDatabase } from '../../../appliance/db/database'
import { Fleet } from '../../../appliance/fleet/console'
import { enrollTestHost } from '../../helpers/fleet'
import { setRules, WEBHOOK_SETTING, type WebhookEvent, watchFleet } from '../../../appliance/fleet/watch'
import { StoredSettings } from '../../../appliance/services/stored-settings'
import { Tenants } from '../../../appliance/services/tenants'
import { GroupCommitter } from '../../../appliance/db/group-commit'
import { mailIncidents, setAlertMail } from '../../../appliance/fleet/alert-mail'
import { MailStore } from '../../../appliance/services/mail-store'
import { RawStore } from '../../../appliance/services/raw-store'
import { Spool } from '../../../appliance/services/spool'

t.test('offline and disk incidents: one alert and one webhook event each way', async (t) => {
  const db = openDatabase(`${t.testdir()}/moat.db`)
  t.teardown(() => db.close())
  const org = new Tenants(db).addOrg('acme')
  const fleet = new Fleet(db)
  const T0 = 1_800_000_000_000
  // Through the console's own ingest, signed as an agent signs.
  const host = enrollTestHost(fleet, org.id, 'web01', 'linux', T0)
  const report = (at: number, diskUse: number) => host.send([{ kind: 'metrics', at, data: { diskUse } }], at)

  const events: WebhookEvent[] = []
  let up = false
  const server = http.createServer((req, res) => {
    let body = ''
    req.on('data', (d) => (body += d))
    req.on('end', () => {
      if (up) events.push(JSON.parse(body))
      res.writeHead(up ? 204 : 503).end()
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  t.teardown(() => server.close())
  new StoredSettings(db).set(WEBHOOK_SETTING, `http://127.0.0.1:${(server.address() as { port: number }).port}/hooks/moat`)

  report(T0, 40)
  t.match(await watchFleet(db, { now: T0 + 60_000 }), { opened: 0, resolved: 0 }, 'a healthy host is no incident')
  report(T0 + 120_000, 95)
  t.match(await watchFleet(db, { now: T0 + 150_000 }), { opened: 1, sent: 0 }, 'a full disk opens an incident; the webhook is down')
  up = true
  t.match(await watchFleet(db, { now: T0 + 210_000 }), { opened: 0, sent: 1 }, 'the same incident is not opened again; its event goes out once the webhook is back')
  t.match(events, [{ event: 'open', rule: 'disk', host: { name: 'web01' }, org: 'acme', detail: /95 % full/ }])
  // Silent for 20 minutes: offline; the disk rule says nothing about a host that is offline.
  t.match(await watchFleet(db, { now: T0 + 120_000 + 20 * 60_000 }), { opened: 1, resolved: 1, sent: 2 })
  report(T0 + 25 * 60_000, 50)
  t.match(await watchFleet(db, { now: T0 + 25 * 60_000 + 1000 }), { opened: 0, resolved: 1, sent: 1 })
  t.same(events.map((e) => `${e.event} ${e.rule}`), ['open disk', 'resolve disk', 'open offline', 'resolve offline'], 'each event once, in order')
  const alerts = db.prepare(`SELECT kind, org_id, acknowledged_at IS NOT NULL AS done FROM alerts ORDER BY id`).all()
  t.same(alerts, [{ kind: 'fleet-disk', org_id: org.id, done: 1 }, { kind: 'fleet-offline', org_id: org.id, done: 1 }], "one alert per incident, for the host's organisation, cleared when it resolves")
  t.match(await watchFleet(db, { now: T0 + 26 * 60_000 }), { opened: 0, resolved: 0, sent: 0 }, 'nothing more to say')
})

t.test("appliance rules on its health report, with each organisation's own thresholds", async (t) => {
  const db = openDatabase(`${t.testdir()}/moat.db`)
  t.teardown(() => db.close())
  const tenants = new Tenants(db)
  const acme = tenants.addOrg('acme')
  const globex = tenants.addOrg('globex')
  const fleet = new Fleet(db)
  const T0 = 1_800_000_000_000
  const D = 86_400_000
  const hosts = [acme, globex].map((org, i) => enrollTestHost(fleet, org.id, `mx${i}`, 'appliance', T0 - 30 * D))
  const health = (h: (typeof hosts)[number], at: number, data: Record<string, unknown>) =>
    h.send([{ kind: 'health', at, data: { version: '0.1.0', queue: { pending: 0, queued: 0, deferred: 0 }, blocklisted: [], certificateExpires: at + 90 * D, lastBackupAt: at - D, services: { 'moat-smtp': 'active', 'moat-web': 'active' }, ...data } }], at)
  const open = () => (db.prepare(`SELECT h.name || ' ' || i.rule AS r FROM fleet_incidents i JOIN fleet_hosts h ON h.id = i.host_id WHERE i.resolved_at IS NULL ORDER BY 1`).pluck().all() as string[])

  for (const h of hosts) health(h, T0, {})
  await watchFleet(db, { now: T0 + 1000 })
  t.same(open(), [], 'a healthy appliance is no incident')

  const trouble = { queue: { pending: 10, queued: 300, deferred: 400 }, blocklisted: [{ ip: '192.0.2.25', zone: 'zen.example' }], certificateExpires: T0 + 10 * D, lastBackupAt: T0 - 9 * D, services: { 'moat-smtp': 'failed', 'moat-web': 'active' } }
  for (const h of hosts) health(h, T0 + 60_000, trouble)
  // globex's MSP tolerates a longer queue and older backups.
  setRules(new StoredSettings(db), globex.id, { queueOver: 1000, backupDays: 10 })
  t.throws(() => setRules(new StoredSettings(db), globex.id, { diskPercent: 150 }), /diskPercent must be a number from 0 to 100/)
  await watchFleet(db, { now: T0 + 61_000 })
  t.same(open(), ['mx0 backup', 'mx0 blocklisted', 'mx0 certificate', 'mx0 queue', 'mx0 service', 'mx1 blocklisted', 'mx1 certificate', 'mx1 service'])
  const details = db.prepare(`SELECT rule, detail FROM fleet_incidents WHERE host_id = ? ORDER BY rule`).all(hosts[0].hostId)
  t.same(details, [
    { rule: 'backup', detail: 'the last backup is 9 days old' },
    { rule: 'blocklisted', detail: 'listed: 192.0.2.25 on zen.example' },
    { rule: 'certificate', detail: 'the TLS certificate expires in 10 days' },
    { rule: 'queue', detail: '710 messages wait for delivery' },
    { rule: 'service', detail: 'not running: moat-smtp (failed)' },
  ])

  for (const h of hosts) health(h, T0 + 120_000, {})
  t.match(await watchFleet(db, { now: T0 + 121_000 }), { opened: 0, resolved: 8 }, 'all resolve once the appliance is well')
})

t.test('incidents mailed to the MSP: once when they open, once when they resolve, none from before', async (t) => {
  const dir = t.testdir()
  const db = openDatabase(`${dir}/moat.db`)
  t.teardown(() => db.close())
  const org = new Tenants(db).addOrg('acme')
  const fleet = new Fleet(db)
  const store = new MailStore(db, new RawStore(db, new Spool(`${dir}/spool`)), new GroupCommitter(db))
  const T0 = 1_800_000_000_000
  const host = enrollTestHost(fleet, org.id, 'web01', 'linux', T0)
  const report = (at: number, diskUse: number) => host.send([{ kind: 'metrics', at, data: { diskUse } }], at)
  const mails = () => db.prepare(`SELECT m.subject, m.direction, d.rcpt, d.state FROM messages m JOIN deliveries d ON d.message_id = m.id ORDER BY m.id, d.rcpt`).all() as { subject: string; direction: string; rcpt: string; state: string }[]

  report(T0, 95)
  await watchFleet(db, { now: T0 + 1000 })
  t.equal(await mailIncidents(db, store, 'console.msp.example', T0 + 2000), 0, 'no addresses: no mail')
  t.throws(() => setAlertMail(db, ['noc@msp.example', 'not an address']), /not an e-mail address/)
  setAlertMail(db, ['NOC@msp.example', 'oncall@msp.example'], T0 + 3000)
  t.equal(await mailIncidents(db, store, 'console.msp.example', T0 + 4000), 0, 'the incident from before the addresses were set is not mailed')

  report(T0 + 10_000, 40)
  await watchFleet(db, { now: T0 + 11_000 })
  report(T0 + 20_000, 97)
  await watchFleet(db, { now: T0 + 21_000 })
  t.equal(await mailIncidents(db, store, 'console.msp.example', T0 + 22_000), 1, 'a new incident: one message')
  t.equal(await mailIncidents(db, store, 'console.msp.example', T0 + 23_000), 0, 'not twice')
  report(T0 + 30_000, 50)
  await watchFleet(db, { now: T0 + 31_000 })
  t.equal(await mailIncidents(db, store, 'console.msp.example', T0 + 32_000), 1, 'its resolve: one more')
  t.same(mails(), [
    { subject: '[Moat fleet] web01 (acme): a file system is 97 % full', direction: 'out', rcpt: 'noc@msp.example', state: 'pending' },
    { subject: '[Moat fleet] web01 (acme): a file system is 97 % full', direction: 'out', rcpt: 'oncall@msp.example', state: 'pending' },
    { subject: '[Moat fleet] resolved: web01 (acme) disk', direction: 'out', rcpt: 'noc@msp.example', state: 'pending' },
    { subject: '[Moat fleet] resolved: web01 (acme) disk', direction: 'out', rcpt: 'oncall@msp.example', state: 'pending' },
  ], "handed to the appliance's outbox for delivery, to every address")
})
