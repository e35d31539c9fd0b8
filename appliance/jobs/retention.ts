/*
 * Daily retention: quarantine entries past their organisation's quarantine retention
 * (default 30 days), then archived messages past the archive retention that nothing
 * references any more, and their spool files.
 */
import type { Db } from '../db/database'
import { Archive } from '../services/archive'
import { Quarantine } from '../services/quarantine'
import { RawStore } from '../services/raw-store'
import type { Spool } from '../services/spool'

export interface RetentionResult {
  quarantinePurged: number
  archivePurged: number
}

export async function run(deps: { db: Db; spool: Spool; now?: number }): Promise<RetentionResult> {
  const now = deps.now ?? Date.now()
  const quarantinePurged = new Quarantine(deps.db).purge(now)
  const archive = new Archive(deps.db, new RawStore(deps.db, deps.spool))
  let archivePurged = 0
  for (;;) {
    const n = await archive.purge(now)
    archivePurged += n
    if (n === 0) break
  }
  return { quarantinePurged, archivePurged }
}
