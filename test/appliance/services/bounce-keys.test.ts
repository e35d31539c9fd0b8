import t from 'tap'
import { openDatabase } from '../../../appliance/db/database'
import { BounceKeys } from '../../../appliance/services/bounce-keys'

const DAY = 86_400_000

function keys(days = 7): BounceKeys {
  return new BounceKeys(openDatabase(':memory:'), days)
}

t.test('a key is made at first use; a tag checks, and only for its own address', async (t) => {
  const k = keys()
  t.equal(k.list().length, 1)
  const now = Date.UTC(2026, 10, 27)
  const tagged = k.tagAddress('Bob@Example.com', now)
  t.match(tagged, /^prvs=\d\d{3}[0-9a-f]{6}=Bob@Example\.com$/)
  t.same(k.checkAddress(tagged, now), { status: 'valid', original: 'Bob@Example.com' })
  t.same(k.checkAddress(tagged.toLowerCase(), now + 6 * DAY), { status: 'valid', original: 'bob@example.com' }, 'case does not matter')
  t.equal(k.checkAddress(tagged.replace('Bob@', 'alice@'), now).status, 'forged', 'moved to another address')
  t.equal(k.checkAddress(tagged, now + 8 * DAY).status, 'expired')
  t.equal(k.checkAddress('bob@example.com', now).status, 'none')
  t.equal(k.tagAddress('', now), '', 'the null sender stays null')
  t.equal(k.tagAddress(tagged, now), tagged, 'never tagged twice')
})

t.test('rotation: new tags use the new key, old tags check until they expire', async (t) => {
  const k = keys()
  const now = Date.UTC(2026, 10, 27)
  const old = k.tagAddress('bob@example.com', now)
  k.rotate(now + DAY)
  const fresh = k.tagAddress('bob@example.com', now + DAY)
  t.not(fresh.slice(5, 6), old.slice(5, 6), 'another key number')
  t.equal(k.checkAddress(old, now + 2 * DAY).status, 'valid')
  t.equal(k.checkAddress(fresh, now + 2 * DAY).status, 'valid')
  // A later rotation forgets keys retired longer ago than the validity window.
  k.rotate(now + 20 * DAY)
  t.equal(k.list().length, 2)
})

t.test('header stamps are bound to the sender and expire', async (t) => {
  const k = keys()
  const now = Date.UTC(2026, 10, 27)
  const stamp = k.headerStamp('bob@example.com', now)
  const quoted = `Received: by x\nX-Moat-Bounce-Stamp: ${stamp}\nSubject: hi\n`
  t.equal(k.checkHeaderStamps(quoted, 'bob@example.com', now).status, 'valid')
  t.equal(k.checkHeaderStamps(quoted, 'alice@example.com', now).status, 'forged')
  t.equal(k.checkHeaderStamps(quoted, 'bob@example.com', now + 8 * DAY).status, 'expired')
  t.equal(k.checkHeaderStamps('Subject: none\n', 'bob@example.com', now).status, 'none')
  const tampered = quoted.replace(/e=(\d+)/, (_, e) => `e=${Number(e) + 30}`)
  t.equal(k.checkHeaderStamps(tampered, 'bob@example.com', now).status, 'forged', 'a longer expiry breaks the hash')
})

t.test('a key in another database does not check', async (t) => {
  const a = keys()
  const b = new BounceKeys(openDatabase(':memory:'))
  t.equal(b.checkAddress(a.tagAddress('bob@example.com')).status, 'forged')
})
