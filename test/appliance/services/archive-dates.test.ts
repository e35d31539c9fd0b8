/*
 * Archive searches with dates (after:, before:, date:) give exactly the messages in the range,
 * newest first, now that a date also bounds the id walked. The truth is counted from the rows
 * themselves. The mail is stamped a few hours apart over two months, some of it committed out
 * of step with its stamp (by up to half an hour, inside ID_CLOCK_SLACK_MS), in two
 * organisations, through the real accept path into a real SQLite file.
 */
import path from 'node:path'
import t from 'tap'
import { openDatabase } from '../../../appliance/db/database'
import { GroupCommitter } from '../../../appliance/db/group-commit'
import { Archive, ID_CLOCK_SLACK_MS } from '../../../appliance/services/archive'
import { MailStore } from '../../../appliance/services/mail-store'
import { RawStore } from '../../../appliance/services/raw-store'
import { Spool } from '../../../appliance/services/spool'
import { Tenants } from '../../../appliance/services/tenants'

t.test('date searches: exactly the range, newest first, whatever order the stamps were committed in', async (t) => {
  const dir = t.testdir()
  const db = openDatabase(path.join(dir, 'moat.db'))
  t.teardown(() => db.close())
  const raws = new RawStore(db, new Spool(path.join(dir, 'spool')))
  const store = new MailStore(db, raws, new GroupCommitter(db))
  const tenants = new Tenants(db)
  const orgs = [tenants.addOrg('alpha'), tenants.addOrg('beta')]
  t.ok(ID_CLOCK_SLACK_MS >= 30 * 60_000, 'the slack covers what this test commits out of step')
  const start = Date.UTC(2026, 2, 1)
  const stamps: number[] = []
  for (let i = 0; i < 400; i++) {
    // Every 7th message was stamped up to half an hour before the one committed ahead of it.
    const at = start + i * 4 * 3_600_000 - (i % 7 === 0 && i > 0 ? 4 * 3_600_000 + (((i * 7919) % 30) + 1) * 60_000 : 0)
    stamps.push(at)
    const word = i % 3 === 0 ? 'invoice' : 'minutes'
    await store.accept({
      queueId: `d${i}`, direction: 'in', raw: Buffer.from(`From: a@outside.test\r\nTo: u@alpha.test\r\nSubject: ${word} ${i}\r\n\r\nthe ${word} of ${i}\r\n`),
      receivedAt: at, clientIp: '192.0.2.9', helo: 'x.test', mailFrom: 'a@outside.test', fromHeader: 'a@outside.test', subject: `${word} ${i}`,
      messageIdHeader: null, bodyText: `the ${word} of ${i}`,
      parts: [{ orgId: orgs[i % 2].id, verdict: 'clean', score: 0, symbols: [], rcpts: [{ address: 'u@alpha.test', userId: null, action: 'deliver' }] }],
    })
  }
  const archive = new Archive(db, raws)
  const all = db.prepare(`SELECT id, org_id, received_at, subject FROM messages ORDER BY id DESC`).all() as { id: number; org_id: number; received_at: number; subject: string }[]
  const day = (ms: number) => new Date(ms).toISOString().slice(0, 10)
  let checked = 0
  for (let d = -2; d < 72; d += 3) {
    const a = start + d * 86_400_000
    const b = a + 9 * 86_400_000
    for (const [q, inRange] of [
      [`after:${day(a)}`, (r: number) => r >= a],
      [`before:${day(a)}`, (r: number) => r < a],
      [`after:${day(a)} before:${day(b)}`, (r: number) => r >= a && r < b],
      [`date:${day(a)}`, (r: number) => r >= a && r < a + 86_400_000],
    ] as const) {
      for (const words of ['', 'invoice ']) {
        for (const scope of [{ orgIds: null }, { orgId: orgs[1].id }, { orgIds: [orgs[0].id] }]) {
          const want = all
            .filter((m) => inRange(m.received_at) && (!words || m.subject.startsWith('invoice')))
            .filter((m) => ('orgId' in scope ? m.org_id === scope.orgId : scope.orgIds === null || scope.orgIds.includes(m.org_id)))
            .map((m) => m.id)
          const got = archive.search(`${words}${q}`, { ...scope, limit: 1000 }).map((m) => m.id)
          if (JSON.stringify(got) !== JSON.stringify(want)) t.fail(`"${words}${q}" ${JSON.stringify(scope)}: ${got.length} found, ${want.length} in range`)
          else checked++
        }
      }
    }
  }
  t.equal(checked, 25 * 4 * 2 * 3, `all ${checked} date searches found exactly their range`)
  t.ok(stamps.some((s, i) => i > 0 && s < stamps[i - 1]), 'some stamps were committed out of order')

  // A page's next page, with a date: the cursor and the date bound together.
  const first = archive.search(`minutes before:${day(start + 40 * 86_400_000)}`, { orgIds: null, limit: 20 })
  const next = archive.search(`minutes before:${day(start + 40 * 86_400_000)}`, { orgIds: null, limit: 20, before: first.at(-1)!.id })
  t.equal(first.length, 20)
  t.ok(next.length > 0 && next[0].id < first.at(-1)!.id, 'the next page goes on below the last id')
})
