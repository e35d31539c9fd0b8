/*
 * Where the bytes of accepted messages live. Messages up to INLINE_MAX_BYTES are stored in
 * the database, so the group commit's single fsync makes them durable together with their
 * rows (a file per message cost four thread-pool round trips and a directory fsync before
 * every 250). Larger ones go to the spool, fsynced before the commit that refers to them.
 */
import crypto from 'node:crypto'
import type { Db } from '../db/database'
import type { Spool } from './spool'

export const INLINE_MAX_BYTES = 1024 * 1024

export interface PreparedRaw {
  size: number
  sha256: string
  data: Buffer | null
  spoolPath: string | null
}

export class RawStore {
  private readonly q

  constructor(db: Db, private readonly spool: Spool) {
    this.q = {
      insert: db.prepare(`INSERT INTO raw_messages (size, sha256, data, spool_path) VALUES (?, ?, ?, ?)`),
      get: db.prepare(`SELECT data, spool_path FROM raw_messages WHERE id = ?`),
      unreferenced: db.prepare(
        `SELECT id, spool_path FROM raw_messages r WHERE id = ?
           AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.raw_id = r.id)
           AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.delivered_raw_id = r.id)`,
      ),
      remove: db.prepare(`DELETE FROM raw_messages WHERE id = ?`),
    }
  }

  /** Durable part outside the transaction: writes (and fsyncs) a spool file for large mail. */
  async prepare(raw: Buffer, id: string, at: Date): Promise<PreparedRaw> {
    const sha256 = crypto.createHash('sha256').update(raw).digest('hex')
    if (raw.length <= INLINE_MAX_BYTES) return { size: raw.length, sha256, data: raw, spoolPath: null }
    return { size: raw.length, sha256, data: null, spoolPath: await this.spool.write(id, raw, at) }
  }

  /** Inside the accepting transaction. */
  insert(p: PreparedRaw): number {
    return Number(this.q.insert.run(p.size, p.sha256, p.data, p.spoolPath).lastInsertRowid)
  }

  /** Undo prepare() when the transaction failed. */
  async discard(p: PreparedRaw): Promise<void> {
    if (p.spoolPath) await this.spool.remove(p.spoolPath).catch(() => {})
  }

  read(id: number): Buffer {
    const row = this.q.get.get(id) as { data: Buffer | null; spool_path: string | null } | undefined
    if (!row) throw new Error(`raw message ${id} is gone`)
    return row.data ?? this.spool.read(row.spool_path!)
  }

  /**
   * Deletes the raw rows no message refers to any more (call inside the transaction that
   * deleted the messages); returns spool files to remove after it commits.
   */
  dropUnreferenced(ids: Iterable<number>): string[] {
    const files: string[] = []
    for (const id of new Set(ids)) {
      const row = this.q.unreferenced.get(id) as { id: number; spool_path: string | null } | undefined
      if (!row) continue
      this.q.remove.run(id)
      if (row.spool_path) files.push(row.spool_path)
    }
    return files
  }

  async removeFiles(paths: string[]): Promise<void> {
    for (const p of paths) await this.spool.remove(p)
  }
}
