/*
 * LiveArchive paging over the real app: newest first, page after page to the oldest with
 * nothing skipped or repeated, through the UI's "Older messages" link and the API's cursor,
 * with and without words; another tenant's mail never appears on any page.
 */
import t from 'tap'
import { GroupCommitter } from '../../appliance/db/group-commit'
import { Accounts, type Principal } from '../../appliance/services/accounts'
import { MailStore } from '../../appliance/services/mail-store'
import { RawStore } from '../../appliance/services/raw-store'
import { Spool } from '../../appliance/services/spool'
import { Tenants } from '../../appliance/services/tenants'
import { setup, signIn } from '../helpers/web'

t.test('archive pages: newest first, every message once, only the viewer\'s', async (t) => {
  const { app, db, dataDir } = await setup(t)
  const tenants = new Tenants(db)
  const alice = tenants.userByEmail('alice@example.com')!
  const hank = tenants.userByEmail('hank@globex.test')!
  const store = new MailStore(db, new RawStore(db, new Spool(`${dataDir}/spool`)), new GroupCommitter(db))
  const ours: number[] = []
  const theirs: number[] = []
  for (let i = 0; i < 230; i++) {
    const orgId = i % 10 === 9 ? hank.org_id : alice.org_id
    const rcpt = i % 10 === 9 ? 'hank@globex.test' : 'alice@example.com'
    const r = await store.accept({
      queueId: `p${i}`, direction: 'in', raw: Buffer.from(`From: a@outside.test\r\nTo: ${rcpt}\r\nSubject: report ${i}\r\n\r\nthe weekly report number ${i}\r\n`),
      receivedAt: Date.now() + i, clientIp: '192.0.2.9', helo: 'x.test', mailFrom: 'a@outside.test', fromHeader: 'a@outside.test', subject: `report ${i}`,
      messageIdHeader: null, bodyText: `the weekly report number ${i}`,
      parts: [{ orgId, verdict: 'clean', score: 0, symbols: [], rcpts: [{ address: rcpt, userId: orgId === alice.org_id ? alice.id : hank.id, action: 'deliver' }] }],
    })
    ;(orgId === alice.org_id ? ours : theirs).push(r.messageIds[0])
  }
  const newestFirst = [...ours].reverse()

  // The UI: follow "Older messages" to the end.
  const who = await signIn(app, 'boss@example.com')
  for (const q of ['weekly', '']) {
    const seen: number[] = []
    let url = `/archive?q=${q}`
    for (let pages = 0; url && pages < 10; pages++) {
      const html = await (await app.request(url, { headers: { Cookie: who.cookie } })).text()
      seen.push(...[...html.matchAll(/<tr data-id="(\d+)"/g)].map((m) => Number(m[1])))
      url = /id="older" href="([^"]+)"/.exec(html)?.[1].replace(/&amp;/g, '&') ?? ''
    }
    // Without words the page also lists setup()'s quarantined messages of acme.
    const mine = seen.filter((id) => ours.includes(id))
    t.same(mine, newestFirst, `"${q}": every message of acme once, newest first, over ${Math.ceil(seen.length / 100)} pages`)
    t.equal(new Set(seen).size, seen.length, 'none twice')
    t.notOk(seen.some((x) => theirs.includes(x)), "and none of globex's")
  }

  // The API: the cursor.
  const accounts = new Accounts(db)
  const id = db.prepare(`SELECT id FROM users WHERE email = 'boss@example.com'`).pluck().get() as number
  const token = accounts.createToken((accounts as unknown as { principalFor(k: string, id: number): Principal }).principalFor('user', id), 'client').token
  const seen: number[] = []
  let cursor: string | null = ''
  while (cursor !== null) {
    const res = (await (await app.request(`/api/v1/archive?q=weekly&limit=70${cursor ? `&cursor=${cursor}` : ''}`, { headers: { Authorization: `Bearer ${token}` } })).json()) as { items: { id: number }[]; next_cursor: string | null }
    seen.push(...res.items.map((x) => x.id))
    cursor = res.next_cursor
  }
  t.same(seen, newestFirst, 'the API pages the same way, to a null cursor')
})
