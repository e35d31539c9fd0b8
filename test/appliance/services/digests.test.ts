import t from 'tap'
import { openDatabase } from '../../../appliance/db/database'
import { GroupCommitter } from '../../../appliance/db/group-commit'
import { Digests, RELEASE_LINK_DAYS } from '../../../appliance/services/digests'
import { MailStore } from '../../../appliance/services/mail-store'
import { RawStore } from '../../../appliance/services/raw-store'
import { Spool } from '../../../appliance/services/spool'
import { Tenants } from '../../../appliance/services/tenants'

const HOUR = 3_600_000

t.test('who gets a digest, when, and what it lists; links expire', async (t) => {
  const dir = t.testdir()
  const db = openDatabase(`${dir}/moat.db`)
  t.teardown(() => db.close())
  const tenants = new Tenants(db)
  const org = tenants.addOrg('acme')
  tenants.addDomain('example.com', { org: 'acme', deliverTo: '127.0.0.1:2600' })
  const alice = tenants.addUser('alice@example.com')
  const store = new MailStore(db, new RawStore(db, new Spool(`${dir}/spool`)), new GroupCommitter(db))
  const t0 = Date.UTC(2026, 10, 27, 8)
  const quarantine = async (subject: string, verdict: 'spam' | 'surespam', at: number) =>
    store.accept({
      queueId: subject, direction: 'in', raw: Buffer.from(`Subject: ${subject}\r\n\r\nx\r\n`), receivedAt: at, clientIp: null, helo: null, mailFrom: 's@spam.test',
      fromHeader: null, subject, messageIdHeader: null, bodyText: 'x',
      parts: [{ orgId: org.id, verdict, score: 9, symbols: [], rcpts: [{ address: 'alice@example.com', userId: alice.id, action: 'quarantine' }] }],
    })
  await quarantine('plain spam', 'spam', t0 - HOUR / 2)
  await quarantine('very sure', 'surespam', t0 - HOUR / 3)
  const d = new Digests(db)
  const opts = { publicUrl: 'https://moat.example.com', hostname: 'moat.example.com' }
  t.match(d.preferences(alice.id), { enabled: false }, 'off for a new account')
  t.same(await d.run(store, { ...opts, now: t0 }), { sent: 0, entries: 0 })

  d.setPreferences(alice.id, { enabled: true, frequency: 'daily', includeSurespam: false })
  t.same(await d.run(store, { ...opts, now: t0 }), { sent: 1, entries: 1 }, 'spam only, surespam not by default')
  const mail = db.prepare(`SELECT subject FROM messages WHERE queue_id LIKE 'digest-%'`).get() as { subject: string }
  t.match(mail.subject, /Quarantine: 1 new message held for you/)
  t.same(await d.run(store, { ...opts, now: t0 + 2 * HOUR }), { sent: 0, entries: 0 }, 'daily: not due two hours later')

  await quarantine('next day spam', 'spam', t0 + 20 * HOUR)
  await quarantine('next day sure', 'surespam', t0 + 21 * HOUR)
  d.setPreferences(alice.id, { enabled: true, frequency: 'daily', includeSurespam: true })
  t.same(await d.run(store, { ...opts, now: t0 + 24 * HOUR }), { sent: 1, entries: 2 }, 'only what is new since the last digest, surespam included now')

  const tokens = db.prepare(`SELECT token_hash FROM release_tokens`).all()
  t.equal(tokens.length, 3)
  t.throws(() => d.setPreferences(alice.id, { enabled: true, frequency: 'weekly' as never, includeSurespam: false }), /digest frequency/)
  // A link from the digest itself: valid now, expired after its lifetime, single use.
  const raw0 = (db.prepare(`SELECT r.data FROM raw_messages r JOIN messages m ON m.raw_id = r.id WHERE m.queue_id LIKE 'digest-%' ORDER BY m.id LIMIT 1`).get() as { data: Buffer }).data.toString()
  const text = raw0.match(/^[A-Za-z0-9+/=]{20,}$/gm)!.map((b) => Buffer.from(b, 'base64').toString('utf8')).join('')
  const token = /\/r\/([\w-]{20,})/.exec(text)![1]
  t.match(d.check(token, t0 + HOUR), { ok: true })
  t.same(d.check(token, t0 + (RELEASE_LINK_DAYS + 1) * 86_400_000), { ok: false, reason: 'expired' })
  t.match(d.redeem(token, "deliver", t0 + HOUR), { ok: true })
  t.same(d.redeem(token, "deliver", t0 + HOUR), { ok: false, reason: 'used' })
  t.equal(d.check('made-up').ok, false)
  const raw = db.prepare(`SELECT expires_at, created_at FROM release_tokens LIMIT 1`).get() as { expires_at: number; created_at: number }
  t.equal(raw.expires_at - raw.created_at, RELEASE_LINK_DAYS * 86_400_000)
})
