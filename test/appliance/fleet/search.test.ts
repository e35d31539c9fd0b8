/*
 * Searching the fleet (fleet/search.ts) on a real SQLite file: every filter against hosts
 * made to hold or not hold it, tenant scope kept, pages that add up to the whole.
 */
import t from 'tap'
import { openDatabase } from '../../../appliance/db/database'
import { Fleet, OFFLINE_MS, type SortKey } from '../../../appliance/fleet/console'
import { enrollTestHost } from '../../helpers/fleet'
import { versionKey } from '../../../appliance/fleet/search'
import { Tenants } from '../../../appliance/services/tenants'

t.test('filters: status, kind, org, metrics, versions, software, words; scoped; paged', async (t) => {
  const db = openDatabase(`${t.testdir()}/moat.db`)
  t.teardown(() => db.close())
  const tenants = new Tenants(db)
  const acme = tenants.addOrg('acme')
  const globex = tenants.addOrg('globex')
  const fleet = new Fleet(db)
  const now = 1_800_000_000_000
  const add = (org: number, name: string, kind: 'linux' | 'windows' | 'appliance', seenAgo: number, data: { version: string; disk: number; cpu: number; software: [string, string][] }) => {
    const h = enrollTestHost(fleet, org, name, kind, now - 86_400_000)
    h.send([
      { kind: 'inventory', at: now - seenAgo, data: { version: data.version, software: data.software.map(([n, v]) => ({ name: n, version: v })) } },
      { kind: 'metrics', at: now - seenAgo, data: { cpu: data.cpu, diskUse: data.disk, memUsed: 1, memTotal: 2 } },
    ], now - seenAgo)
    return h.hostId
  }
  add(acme.id, 'web01', 'linux', 0, { version: '0.10.2', disk: 95, cpu: 10, software: [['nginx', '1.22.1-9'], ['openssl', '3.0.11-1']] })
  add(acme.id, 'db01', 'linux', OFFLINE_MS + 1, { version: '0.9.0', disk: 40, cpu: 85, software: [['postgresql-15', '15.5-0'], ['openssl', '3.0.9-1']] })
  add(acme.id, 'dc01', 'windows', 5 * 60_000, { version: '0.2.0', disk: 91, cpu: 3, software: [['Microsoft Edge', '120.0']] })
  add(globex.id, 'mx1', 'appliance', 0, { version: '0.1.0', disk: 20, cpu: 50, software: [['nginx', '1.18.0']] })
  const names = (q: string, orgs: number[] | null = null) => fleet.search(orgs, q, {}, now).hosts.map((h) => h.name).sort()

  t.same(names('status:offline'), ['db01'])
  t.same(names('status:late'), ['dc01'])
  t.same(names('status:online'), ['mx1', 'web01'])
  t.same(names('kind:windows'), ['dc01'])
  t.same(names('org:globex'), ['mx1'])
  t.same(names('disk>90'), ['dc01', 'web01'], 'the fullest disk over 90 %')
  t.same(names('cpu>=85'), ['db01'])
  t.same(names('version<0.2'), ['mx1'], 'versions compare as versions: 0.10.2 is not below 0.2')
  t.same(names('version>=0.9'), ['db01', 'web01'])
  t.same(names('software:nginx'), ['mx1', 'web01'])
  t.same(names('software:openssl<3.0.11'), ['db01'], 'a package older than a fixed version')
  t.same(names('software:nginx disk>90'), ['web01'], 'every filter must hold')
  t.same(names('WEB'), ['web01'], 'words, any case')
  t.same(names('software:nginx', [acme.id]), ['web01'], "another tenant's host is not found")
  t.throws(() => fleet.search(null, 'status:sleeping', {}, now), /status: is one of/)
  t.throws(() => fleet.search(null, 'disk>lots', {}, now), /needs a number/)

  const all = fleet.search([acme.id], '', {}, now)
  t.same([all.total, all.counts], [3, { online: 1, late: 1, offline: 1, revoked: 0 }])
  const pages = [0, 1, 2].flatMap((offset) => fleet.search(null, '', { limit: 1, offset }, now).hosts.map((h) => h.name))
  t.same(pages, ['db01', 'dc01', 'web01'], 'pages in order, none skipped or repeated')

  const order = (sort: SortKey) => fleet.search(null, '', { sort }, now).hosts.map((h) => h.name)
  t.same(order('disk'), ['web01', 'dc01', 'db01', 'mx1'], 'the fullest disks first')
  t.same(order('cpu'), ['db01', 'mx1', 'web01', 'dc01'], 'the busiest first')
  t.same(order('last-report'), ['db01', 'dc01', 'web01', 'mx1'], 'the longest silent first (a tie by organisation)')
  t.same(order('version'), ['mx1', 'dc01', 'db01', 'web01'], 'versions in version order: 0.1.0, 0.2.0, 0.9.0, 0.10.2')
  t.ok(versionKey('0.10.2')! > versionKey('0.9')!)
})

t.test('commands: the appliance ones are refused for servers, apply-update needs a release URL', async (t) => {
  const db = openDatabase(`${t.testdir()}/moat.db`)
  t.teardown(() => db.close())
  const org = new Tenants(db).addOrg('acme')
  const fleet = new Fleet(db)
  const enroll = (name: string, kind: 'linux' | 'appliance') => enrollTestHost(fleet, org.id, name, kind).hostId
  const server = enroll('web01', 'linux')
  const mx = enroll('mx1', 'appliance')
  t.throws(() => fleet.queueCommand(server, 'restart-services', null, 't'), /for Moat appliances; web01 is a linux server/)
  t.throws(() => fleet.queueCommand(mx, 'apply-update', null, 't'), /needs the https:\/\/ URL/)
  t.throws(() => fleet.queueCommand(mx, 'apply-update', null, 't', Date.now(), 'http://x/y.moat'), /needs the https:\/\/ URL/)
  t.ok(fleet.queueCommand(mx, 'apply-update', null, 't', Date.now(), 'https://releases.msp.example/moat-0.2.0.moat'))
  t.ok(fleet.queueCommand(server, 'collect-logs', null, 't'))
  t.match(fleet.commands(mx), [{ kind: 'apply-update', arg: 'https://releases.msp.example/moat-0.2.0.moat', done_at: null }])
})
