/*
 * The home page per role, over the real app: today's numbers are the viewer's own (an end
 * user's mail, an organisation's, every organisation for the appliance admin), each tile
 * links to the page that explains it, and the plots carry the same hourly numbers.
 */
import t from 'tap'
import { GroupCommitter } from '../../appliance/db/group-commit'
import { MailStore } from '../../appliance/services/mail-store'
import { RawStore } from '../../appliance/services/raw-store'
import { Spool } from '../../appliance/services/spool'
import { Tenants } from '../../appliance/services/tenants'
import { HOUR, MailStats, startOfToday } from '../../appliance/stats/mail-stats'
import { signIn, setup } from '../helpers/web'

const tiles = (html: string): Record<string, number> =>
  Object.fromEntries([...html.matchAll(/data-tile="([a-z]+)"><a href="[^"]*"><strong>([\d,]+)<\/strong>/g)].map((m) => [m[1], Number(m[2].replace(/,/g, ''))]))

t.test('the home page: today for each role, and nothing of another tenant', async (t) => {
  const { app, db, dataDir } = await setup(t)
  const tenants = new Tenants(db)
  const alice = tenants.userByEmail('alice@example.com')!
  const hank = tenants.userByEmail('hank@globex.test')!
  const store = new MailStore(db, new RawStore(db, new Spool(`${dataDir}/spool`)), new GroupCommitter(db))
  const now = Date.now()
  const send = (direction: 'in' | 'out', orgId: number, from: string, rcpt: string, userId: number | null, verdict: 'clean' | 'surespam', receivedAt = now) =>
    store.accept({
      queueId: `q${Math.random()}`, direction, raw: Buffer.from(`From: ${from}\r\nTo: ${rcpt}\r\nSubject: hello\r\n\r\nhello\r\n`), receivedAt, clientIp: '192.0.2.9', helo: 'x.test', mailFrom: from,
      fromHeader: from, subject: 'hello', messageIdHeader: null, bodyText: 'hello',
      parts: [{ orgId, verdict, score: verdict === 'clean' ? 0 : 20, symbols: [], rcpts: [{ address: rcpt, userId, action: verdict === 'clean' ? 'deliver' : 'quarantine' }] }],
    })
  await send('in', alice.org_id, 'friend@outside.test', 'alice@example.com', alice.id, 'clean')
  await send('in', alice.org_id, 'friend@outside.test', 'alice@example.com', alice.id, 'clean')
  await send('out', alice.org_id, 'bob@example.com', 'partner@outside.test', null, 'clean')
  await send('in', hank.org_id, 'bad@outside.test', 'hank@globex.test', hank.id, 'surespam')
  const yesterday = startOfToday(now) - 3_600_000
  await send('in', alice.org_id, 'old@outside.test', 'alice@example.com', alice.id, 'clean', yesterday)
  db.prepare(`UPDATE deliveries SET state = 'deferred', last_response = '451 try later' WHERE rcpt = 'partner@outside.test'`).run()

  const home = async (email: string) => {
    const who = await signIn(app, email)
    const res = await app.request('/', { headers: { Cookie: who.cookie } })
    t.equal(res.status, 200, `${email} has a home page`)
    return res.text()
  }
  // setup() quarantined one spam message for each of alice, bob and hank.
  const a = tiles(await home('alice@example.com'))
  t.same(a, { inbound: 3, spam: 1, viruses: 0, quarantine: 1, deferred: 0, bounced: 0 }, "alice: her own mail, her own quarantine, no outbound or alerts")
  const boss = tiles(await home('boss@example.com'))
  t.same(boss, { inbound: 4, outbound: 1, spam: 2, surespam: 0, viruses: 0, quarantine: 2, deferred: 1, bounced: 0, alerts: 0 }, "acme's admin: acme's mail, and bob's retrying delivery")
  const hankHome = await home('hank@globex.test')
  t.notMatch(hankHome, /partner@outside|acme/, 'nothing of acme on the page of globex')
  t.match(hankHome, /data-plot=/, 'the hourly plot is on the page')

  const stats = new MailStats(db)
  const all = stats.today({ orgIds: null, userId: null, addresses: [], surespam: true }, startOfToday(now))
  t.match(all, { inbound: 6, outbound: 1, spam: 3, surespam: 1, quarantineWaiting: 4, deferred: 1 }, 'the whole appliance: both organisations')
  const hourly = stats.hourly({ orgIds: null, userId: null, addresses: [] }, now)
  t.equal(hourly.in.clean.at(-1), 2, 'the current hour holds the two clean messages')
  const inWindow = Math.floor(yesterday / HOUR) >= Math.floor(now / HOUR) - 23
  t.equal(hourly.in.clean.reduce((s, n) => s + n, 0), inWindow ? 3 : 2, "yesterday's is in the last 24 hours if it was less than 24 hours ago")
  t.equal(hourly.out.clean.at(-1), 1)

  t.equal((await app.request('/')).headers.get('location'), '/login', 'signed out: to the login page')
})
