import path from 'node:path'
import Database from 'better-sqlite3'
import t from 'tap'
import { migrate, openDatabase, SCHEMA_VERSION, schemaVersion } from '../../../appliance/db/database'
import { migrations } from '../../../appliance/db/migrations'

function schemaOf(db: Database.Database): string[] {
  return (db.prepare(`SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name`).all() as { type: string; name: string; sql: string | null }[])
    .map((r) => `${r.type} ${r.name}: ${(r.sql ?? '').replace(/\s+/g, ' ')}`)
}

t.test('a fresh database is at the newest version with WAL, FULL sync and foreign keys', async (t) => {
  const db = openDatabase(path.join(t.testdir(), 'moat.db'))
  t.equal(schemaVersion(db), SCHEMA_VERSION)
  t.equal(db.pragma('journal_mode', { simple: true }), 'wal')
  t.equal(db.pragma('synchronous', { simple: true }), 2, 'synchronous=FULL')
  t.equal(db.pragma('foreign_keys', { simple: true }), 1)
  db.close()
})

t.test('migrating from every past version gives the same schema as a fresh database', async (t) => {
  const fresh = new Database(':memory:')
  migrate(fresh)
  const want = schemaOf(fresh)
  for (let from = 0; from < migrations.length; from++) {
    const db = new Database(':memory:')
    migrate(db, from)
    t.equal(schemaVersion(db), from)
    migrate(db)
    t.same(schemaOf(db), want, `from version ${from}`)
  }
})

t.test('a database newer than the code is refused', async (t) => {
  const file = path.join(t.testdir(), 'moat.db')
  openDatabase(file).close()
  const raw = new Database(file)
  raw.pragma(`user_version = ${SCHEMA_VERSION + 1}`)
  raw.close()
  t.throws(() => openDatabase(file), /newer than this Moat/)
})

t.test('constraints hold: enum checks and tenant foreign keys', async (t) => {
  const db = openDatabase(':memory:')
  t.throws(() => db.prepare(`INSERT INTO organisations (msp_id, name, created_at, spam_threshold, surespam_threshold) VALUES (1, 'x', 0, 9, 3)`).run(), /CHECK/)
  t.throws(() => db.prepare(`INSERT INTO domains (org_id, name, deliver_host, created_at) VALUES (99, 'x.test', 'h', 0)`).run(), /FOREIGN KEY/)
})
