/*
 * After a crash, the database and Haraka's queue directory are put back in agreement before
 * Haraka loads its queue (init_master runs first), so that every accepted message is either
 * in a live queue file or handed to delivery again.
 *
 * Why each case happens (a SIGKILL or power loss can land between any two steps):
 * - a live queue file whose deliveries read 'pending': Haraka wrote it, our 'queued' mark was
 *   not committed. They are marked queued; handing them again would deliver twice.
 * - a delivery that reads 'queued' or 'deferred' with no live queue file: Haraka's write never
 *   finished (its half-written `__tmp__.` file is deleted by its loader) or the file is gone.
 *   It is handed back to delivery; otherwise it would read 'queued' forever.
 * - a live queue file whose every delivery reads 'delivered': the result was committed
 *   (moat-delivery lets Haraka remove the file only after that) but the process died before
 *   the unlink. The file is removed, or Haraka would deliver it a second time.
 * What is left is the one window no MTA closes: the customer's server said 250 and we died
 * before our commit. That message is delivered again (at-least-once, as SMTP is).
 */
import fs from 'node:fs'
import path from 'node:path'
import type { Db } from '../db/database'

export interface LiveQueueFile {
  name: string
  /** the deliveries this file carries: its recipients, not every recipient of the message */
  ids: number[]
}

export interface Reconciled {
  /** deliveries handed back because no live queue file carries them */
  handedBack: number
  /** pending deliveries a live queue file already carries */
  markedQueued: number
  /** queue files removed because every delivery in them is recorded as delivered */
  staleFiles: string[]
}

function readTodo(file: string): { rcpt_to?: unknown[]; notes?: { moat?: { deliveries?: Record<string, number> } } } | null {
  let fd: number | null = null
  try {
    fd = fs.openSync(file, 'r')
    const len = Buffer.alloc(4)
    if (fs.readSync(fd, len, 0, 4, 0) !== 4) return null
    const size = len.readUInt32BE(0)
    if (size > 10 * 1024 * 1024) return null
    const buf = Buffer.alloc(size)
    if (fs.readSync(fd, buf, 0, size, 4) !== size) return null
    return JSON.parse(buf.toString('utf8'))
  } catch {
    // Unreadable: Haraka will report it and rename it error.*; it carries nothing we can count on.
    return null
  } finally {
    if (fd !== null) fs.closeSync(fd)
  }
}

function rcptAddress(r: unknown): string {
  const a = r as { user?: string; host?: string; original?: string }
  const s = a.user && a.host ? `${a.user}@${a.host}` : String(a.original ?? r)
  return s.replace(/^<|>$/g, '').toLowerCase()
}

/**
 * The queue files Haraka will load (not its temporary files, not the error.* ones it gave up on),
 * with the delivery ids of their own recipients (a message split per domain or per retry shares
 * one map of every recipient in its notes).
 */
export function liveQueueFiles(queueDir: string, tmpPrefix: string): LiveQueueFile[] {
  let names: string[] = []
  try {
    names = fs.readdirSync(queueDir)
  } catch {
    return []
  }
  const out: LiveQueueFile[] = []
  for (const name of names) {
    if ((tmpPrefix && name.startsWith(tmpPrefix)) || name.startsWith('.') || name.startsWith('error.')) continue
    const todo = readTodo(path.join(queueDir, name))
    if (!todo) continue
    const map = todo.notes?.moat?.deliveries ?? {}
    const ids = (todo.rcpt_to ?? []).map(rcptAddress).filter((a) => map[a] !== undefined).map((a) => Number(map[a]))
    out.push({ name, ids })
  }
  return out
}

export function reconcileQueue(db: Db, queueDir: string, tmpPrefix: string): Reconciled {
  const files = liveQueueFiles(queueDir, tmpPrefix)
  const stateOf = db.prepare(`SELECT state FROM deliveries WHERE id = ?`).pluck()
  const staleFiles = files
    .filter((f) => f.ids.length > 0 && f.ids.every((id) => stateOf.get(id) === 'delivered'))
    .map((f) => f.name)
  for (const name of staleFiles) fs.rmSync(path.join(queueDir, name), { force: true })
  const stale = new Set(staleFiles)
  const live = [...new Set(files.filter((f) => !stale.has(f.name)).flatMap((f) => f.ids))]
  return db.transaction(() => {
    db.exec(`CREATE TEMP TABLE IF NOT EXISTS live_deliveries (id INTEGER PRIMARY KEY); DELETE FROM live_deliveries`)
    const add = db.prepare(`INSERT OR IGNORE INTO live_deliveries (id) VALUES (?)`)
    for (const id of live) add.run(id)
    const now = Date.now()
    const markedQueued = db
      .prepare(`UPDATE deliveries SET state = 'queued', updated_at = ? WHERE state = 'pending' AND id IN (SELECT id FROM live_deliveries)`)
      .run(now).changes
    const handedBack = db
      .prepare(
        `UPDATE deliveries SET state = 'pending', updated_at = ?
         WHERE state IN ('queued', 'deferred') AND id NOT IN (SELECT id FROM live_deliveries)`,
      )
      .run(now).changes
    db.exec(`DELETE FROM live_deliveries`)
    return { handedBack, markedQueued, staleFiles }
  }).immediate()
}
