/*
 * The password guard on a real SQLite file, with the clock in the test's hands: guessing is
 * slowed more and more, the owner's proven browser and network are not, and an office behind
 * one NAT address is not blocked by a guesser among it.
 */
import t from 'tap'
import { openDatabase } from '../../../appliance/db/database'
import { PasswordGuard, RULES } from '../../../appliance/sign-in/password-guard'
import { Tenants } from '../../../appliance/services/tenants'

function setup(t: { testdir(): string; teardown(fn: () => unknown): void }) {
  const db = openDatabase(`${t.testdir()}/moat.db`)
  t.teardown(() => db.close())
  new Tenants(db).addOrg('acme')
  new Tenants(db).addDomain('example.com', { org: 'acme', deliverTo: '127.0.0.1:25' })
  new Tenants(db).addUser('alice@example.com')
  const logged: string[] = []
  return { db, guard: new PasswordGuard(db, (m) => logged.push(m)), logged }
}

const T0 = 1_800_000_000_000

t.test('one client guessing: free typos, then delays that double', async (t) => {
  const { guard } = setup(t)
  const a = { account: 'alice@example.com', ip: '198.51.100.7', via: 'smtp' as const }
  let now = T0
  for (let i = 0; i < RULES.pair.free; i++) {
    t.ok(guard.check(a, now).ok, `typo ${i + 1} is checked`)
    guard.failed(a, now)
  }
  const waits: number[] = []
  for (let i = 0; i < 5; i++) {
    const d = guard.check(a, now)
    t.notOk(d.ok, 'checked again only after the delay')
    if (d.ok) return
    waits.push(d.retryAfterSeconds)
    now += d.retryAfterSeconds * 1000
    t.ok(guard.check(a, now).ok)
    guard.failed(a, now)
  }
  t.ok(waits.every((w, i) => i === 0 || w >= 2 * waits[i - 1] - 1), `each wait about doubles: ${waits.join(', ')} s`)
})

t.test('a stranger guessing from many addresses does not lock the owner out', async (t) => {
  const { db, guard, logged } = setup(t)
  // Alice signed in from her browser and her office network before.
  const device = guard.succeeded({ account: 'alice@example.com', ip: '192.0.2.10', via: 'web' }, null, T0)!
  t.match(device, /^[\w-]{32}$/)
  // 60 wrong guesses, each from another address (a botnet), 10 s apart.
  let now = T0 + 1000
  let checked = 0
  for (let i = 0; i < 60; i++, now += 10_000) {
    const a = { account: 'alice@example.com', ip: `203.0.113.${i + 1}`, via: 'web' as const }
    if (!guard.check(a, now).ok) continue
    checked++
    guard.failed(a, now)
  }
  t.ok(checked <= 15, `only ${checked} of 60 guesses were checked in 10 minutes`)
  t.notOk(guard.check({ account: 'alice@example.com', ip: '203.0.113.200', via: 'web' }, now).ok, 'an unknown client waits')
  t.ok(guard.check({ account: 'alice@example.com', ip: '198.51.100.99', device, via: 'web' }, now).ok, 'her own browser, from anywhere, is not slowed')
  t.ok(guard.check({ account: 'alice@example.com', ip: '192.0.2.10', via: 'smtp' }, now).ok, 'her office network is not slowed')
  t.ok(guard.check({ account: 'alice@example.com', ip: '192.0.2.10', device: 'x'.repeat(32), via: 'web' }, now).ok, 'a made-up device cookie proves nothing, but her network still does')
  t.notOk(guard.check({ account: 'alice@example.com', ip: '203.0.113.201', device: 'x'.repeat(32), via: 'web' }, now).ok, 'a made-up device cookie elsewhere is a stranger')
  t.match(logged.join('\n'), /wrong passwords for alice@example\.com/)
  const alert = db.prepare(`SELECT org_id, kind, message FROM alerts`).get() as { org_id: number; kind: string; message: string }
  t.match(alert, { kind: 'password-guessing', message: /alice@example\.com/ })
  t.ok(alert.org_id, "the alert goes to alice's organisation's admins")
})

t.test('one NAT address: a guesser among the office slows strangers, not the colleagues who signed in from there', async (t) => {
  const { guard } = setup(t)
  const office = '192.0.2.50'
  guard.succeeded({ account: 'bob@example.com', ip: office, via: 'smtp' }, null, T0)
  let now = T0 + 1000
  for (let i = 0; i < 30; i++, now += 500) {
    const a = { account: `user${i}@example.com`, ip: office, via: 'web' as const }
    if (guard.check(a, now).ok) guard.failed(a, now)
  }
  t.ok(guard.check({ account: 'bob@example.com', ip: office, via: 'web' }, now).ok, 'bob, who used this network before, is not slowed')
  t.notOk(guard.check({ account: 'carol@example.com', ip: office, via: 'web' }, now).ok, 'an account new to this network waits: the spray is slowed')
  t.ok(guard.check({ account: 'carol@example.com', ip: '198.51.100.1', via: 'web' }, now).ok, 'elsewhere it is not')
})

t.test('many attempts at once cannot all pass the check before the first is counted', async (t) => {
  const { guard } = setup(t)
  const a = { account: 'alice@example.com', ip: '198.51.100.7', via: 'smtp' as const }
  const passed = Array.from({ length: 10 }, () => guard.check(a, T0)).filter((d) => d.ok).length
  t.equal(passed, RULES.pair.free, 'exactly the free tries, not one per connection')
})

t.test('the right password starts the pair afresh and the network is remembered', async (t) => {
  const { guard } = setup(t)
  const a = { account: 'alice@example.com', ip: '198.51.100.7', via: 'smtp' as const }
  for (let i = 0; i < RULES.pair.free; i++) guard.check(a, T0)
  t.notOk(guard.check(a, T0).ok)
  const allowed = guard.check(a, T0 + 1000)
  t.ok(allowed.ok)
  guard.succeeded(a, allowed, T0 + 1000)
  t.ok(guard.check(a, T0 + 1000).ok, 'the right password took its own count back and cleared the pair')
})
