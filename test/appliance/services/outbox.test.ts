/*
 * The outbox when a result cannot be recorded (a full disk): a group the MTA has queued is not
 * handed a second time, and the result is recorded once the database can write again.
 */
import t from 'tap'
import { openDatabase } from '../../../appliance/db/database'
import { GroupCommitter } from '../../../appliance/db/group-commit'
import { type HandOffGroup, Outbox } from '../../../appliance/services/outbox'

/** A real group committer whose commits fail while `full` is set, as SQLite does on ENOSPC. */
class FillableCommitter extends GroupCommitter {
  full = false
  override submit<T>(fn: () => T): Promise<T> {
    if (this.full) return Promise.reject(Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' }))
    return super.submit(fn)
  }
}

function seed(db: ReturnType<typeof openDatabase>): number {
  const now = Date.now()
  const org = db.prepare(`INSERT INTO organisations (msp_id, name, created_at) VALUES (1, 'acme', ?)`).run(now).lastInsertRowid
  const raw = db.prepare(`INSERT INTO raw_messages (size, sha256, data) VALUES (5, 'x', ?)`).run(Buffer.from('hello')).lastInsertRowid
  const msg = db.prepare(
    `INSERT INTO messages (org_id, raw_id, direction, received_at, queue_id, mail_from, rcpt_to, size, verdict, score, symbols)
     VALUES (?, ?, 'in', ?, 'Q1', 'a@outside.test', 'alice@example.com', 5, 'clean', 0, '[]')`,
  ).run(org, raw, now).lastInsertRowid
  return Number(db.prepare(`INSERT INTO deliveries (org_id, message_id, rcpt, reason, created_at, updated_at) VALUES (?, ?, 'alice@example.com', 'clean', ?, ?)`)
    .run(org, msg, now, now).lastInsertRowid)
}

async function settle(outbox: Outbox): Promise<void> {
  outbox.kick()
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r))
}

t.test('a queued mark that fails is kept and retried; the group is not handed twice', async (t) => {
  const db = openDatabase(`${t.testdir()}/moat.db`)
  t.teardown(() => db.close())
  const id = seed(db)
  const committer = new FillableCommitter(db)
  const handed: HandOffGroup[] = []
  const errors: unknown[] = []
  const outbox = new Outbox(db, committer, async (g) => {
    handed.push(g)
    committer.full = true // the disk fills between the queue file and our record of it
  }, (e) => errors.push(e))
  const state = () => (db.prepare(`SELECT state FROM deliveries WHERE id = ?`).get(id) as { state: string }).state

  await settle(outbox)
  t.equal(handed.length, 1, 'handed to the MTA once')
  t.equal(state(), 'pending', 'the queued mark could not be written')
  t.equal(outbox.unrecordedCount, 1, 'and is kept to be recorded again')
  await settle(outbox)
  await settle(outbox)
  t.equal(handed.length, 1, 'still once while the disk is full: the MTA holds it already')
  t.ok(errors.length >= 2, 'each failed attempt is reported')

  // The MTA delivers while the disk is still full: that result must not be lost either.
  await outbox.mark([id], 'delivered', '250 ok', true).catch(() => {})
  t.equal(outbox.unrecordedCount, 2)

  committer.full = false
  await settle(outbox)
  t.equal(state(), 'delivered', 'recorded in order once space returns: delivered, not queued')
  t.equal(outbox.unrecordedCount, 0)
  await settle(outbox)
  t.equal(handed.length, 1, 'never handed again')
})

t.test('a hand-off that fails leaves the delivery pending, to be handed on the next run', async (t) => {
  const db = openDatabase(`${t.testdir()}/moat.db`)
  t.teardown(() => db.close())
  seed(db)
  let fail = true
  let handed = 0
  const outbox = new Outbox(db, new GroupCommitter(db), async () => {
    handed++
    if (fail) throw new Error('queue write failed')
  })
  await settle(outbox)
  t.equal(handed, 1)
  fail = false
  await settle(outbox)
  t.equal(handed, 2, 'handed again: the MTA never had it')
  t.equal((db.prepare(`SELECT state FROM deliveries`).get() as { state: string }).state, 'queued')
})
