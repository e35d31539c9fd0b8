/*
 * Watching the appliance's own outbound addresses: listings, delistings and the held sender,
 * against a real DNS server (rbldnsd on loopback) serving test lists.
 */
import fs from 'node:fs'
import path from 'node:path'
import Database from 'better-sqlite3'
import t from 'tap'
import { freePort, moat, moatOk, provisionAcme, startRbldnsd, workDir } from '../helpers/appliance'

const OURS = '192.0.2.25'
const OTHER = '198.51.100.7'

t.test('a new listing holds the worst outbound sender; a delisting is recorded', async (t) => {
  const dir = workDir(t)
  provisionAcme(dir, 2600)
  moatOk(dir, ['rbl', 'watch', OURS, OTHER])
  const zoneFile = path.join(dir, 'zones.txt')
  fs.writeFileSync(zoneFile, '# test lists\nbl.test\nclean.test\nrefusing.test\n')
  t.same(JSON.parse(moatOk(dir, ['rbl', 'zones', '--file', zoneFile, '--json'])), ['bl.test', 'clean.test', 'refusing.test'])
  t.ok(JSON.parse(moatOk(dir, ['rbl', 'zones', '--shipped', '--json'])).length >= 100, 'over 100 public lists shipped')
  moatOk(dir, ['rbl', 'zones', '--file', zoneFile])

  // Outbound counters as moat-queue leaves them: one spammer, one ordinary user.
  const db = new Database(path.join(dir, 'moat.db'))
  t.teardown(() => db.close())
  const org = (db.prepare(`SELECT id FROM organisations WHERE name = 'acme'`).get() as { id: number }).id
  const hour = Math.floor(Date.now() / 3_600_000)
  const count = db.prepare(`INSERT INTO sender_counts (org_id, address, hour, messages, spam) VALUES (?, ?, ?, ?, ?)`)
  count.run(org, 'alice@example.com', hour, 40, 1)
  count.run(org, 'compromised@example.com', hour - 2, 900, 350)

  const zones = (listed: boolean): Record<string, [string, string]> => ({
    'bl.test': ['ip4set', listed ? `${OURS} :127.0.0.2:Listed for spam\n` : '192.0.2.200\n'],
    'clean.test': ['ip4set', '203.0.113.1\n'],
    'refusing.test': ['ip4set', `${OURS} :127.255.255.254:refused\n${OTHER} :127.255.255.254:refused\n`],
  })
  const dns1 = await startRbldnsd(path.join(dir, 'dns1'), zones(true))
  t.teardown(() => dns1.proc.kill())
  const env1 = { MOAT_DNS_SERVER: `127.0.0.1:${dns1.port}` }

  const check = (env: Record<string, string>) => {
    const r = moat(dir, ['rbl', 'check', '--json'], undefined, env)
    if (r.code !== 0) throw new Error(r.stderr)
    return JSON.parse(r.stdout)
  }
  const first = check(env1)
  t.same(first.listed, [{ ip: OURS, zone: 'bl.test', codes: ['127.0.0.2'], isNew: true }])
  t.equal(first.errors, 2, "a refusing list's answer is not a listing")
  t.same(first.held, { org_id: org, address: 'compromised@example.com' })
  const held = JSON.parse(moatOk(dir, ['sender', 'list', '--json'])) as { address: string; reason: string }[]
  t.equal(held.length, 1)
  t.match(held[0].reason, /listed \(192\.0\.2\.25 on bl\.test/)
  const alert = db.prepare(`SELECT kind, message FROM alerts WHERE kind = 'rbl-listed'`).get() as { message: string }
  t.match(alert.message, /192\.0\.2\.25 on bl\.test/)

  const again = check(env1)
  t.equal(again.listed[0].isNew, false, 'still listed, not new')
  t.equal(again.held, null, 'nobody else held')

  // The list drops us.
  const dns2 = await startRbldnsd(path.join(dir, 'dns2'), zones(false))
  t.teardown(() => dns2.proc.kill())
  const cleared = check({ MOAT_DNS_SERVER: `127.0.0.1:${dns2.port}` })
  t.same(cleared.delisted, [{ ip: OURS, zone: 'bl.test' }])
  t.same(cleared.listed, [])
  const status = JSON.parse(moatOk(dir, ['rbl', 'status', '--json']))
  t.equal(status.listed.length, 0)
  t.equal(status.history.length, 1)
  t.ok(status.history[0].delisted_at > status.history[0].listed_at, 'listing and delisting both recorded')
  t.match(moatOk(dir, ['rbl', 'status']), /192\.0\.2\.25\s+bl\.test\s+127\.0\.0\.2/)

  // A DNS server that does not answer changes nothing.
  const down = check({ MOAT_DNS_SERVER: `127.0.0.1:${await freePort()}` })
  t.equal(down.errors, 6)
  t.same(down.delisted, [])
})
