/*
 * Raw message files in a dated spool directory (spool/YYYY/MM/DD/<id>.eml).
 *
 * Durability: a file is fsynced, and so is every directory entry that leads to it, before
 * write() resolves; only then may the message be acknowledged. Directory fsyncs are
 * coalesced, so a burst of messages into one day's folder costs one fsync, not one each.
 * Failure: errors (ENOSPC, EIO) reject; the caller answers 4xx and the client retries.
 */
import fs from 'node:fs'
import fsp from 'node:fs/promises'
import path from 'node:path'

async function syncDirNow(dir: string): Promise<void> {
  const fh = await fsp.open(dir, 'r')
  try {
    await fh.sync()
  } finally {
    await fh.close()
  }
}

const dirSyncs = new Map<string, { running: Promise<void> | null; next: Promise<void> | null }>()

/**
 * Resolves after an fsync of `dir` that started after this call. A sync already in flight
 * may predate the caller's rename, so callers arriving during one share the next one.
 */
export function syncDir(dir: string): Promise<void> {
  let s = dirSyncs.get(dir)
  if (!s) dirSyncs.set(dir, (s = { running: null, next: null }))
  const state = s
  const start = (): Promise<void> => {
    const p = syncDirNow(dir).finally(() => {
      if (state.running === p) state.running = null
    })
    state.running = p
    return p
  }
  if (!state.running) return start()
  if (!state.next) {
    state.next = state.running
      .catch(() => {})
      .then(() => {
        state.next = null
        return start()
      })
  }
  return state.next
}

const knownDirs = new Set<string>()

async function ensureDir(root: string, rel: string): Promise<string> {
  const dir = path.join(root, rel)
  if (knownDirs.has(dir)) return dir
  const parts = rel.split(path.sep)
  let cur = root
  for (const part of parts) {
    const parent = cur
    cur = path.join(cur, part)
    try {
      await fsp.mkdir(cur)
      await syncDir(parent) // the new directory's entry must survive a crash too
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
    }
  }
  knownDirs.add(dir)
  return dir
}

export class Spool {
  constructor(readonly root: string) {
    fs.mkdirSync(root, { recursive: true })
  }

  /** Writes `data` durably; returns the path relative to the spool root. */
  async write(id: string, data: Buffer, at: Date = new Date()): Promise<string> {
    const rel = path.join(
      String(at.getUTCFullYear()),
      String(at.getUTCMonth() + 1).padStart(2, '0'),
      String(at.getUTCDate()).padStart(2, '0'),
    )
    const dir = await ensureDir(this.root, rel)
    const name = `${id.replace(/[^A-Za-z0-9._-]/g, '_')}.eml`
    const file = path.join(dir, name)
    const fh = await fsp.open(file, 'wx', 0o640)
    try {
      await fh.writeFile(data)
      await fh.sync()
    } catch (err) {
      await fh.close().catch(() => {})
      await fsp.unlink(file).catch(() => {})
      throw err
    }
    await fh.close()
    await syncDir(dir)
    return path.join(rel, name)
  }

  path(rel: string): string {
    const full = path.resolve(this.root, rel)
    // Paths come from our own database, but never let one escape the spool.
    if (!full.startsWith(path.resolve(this.root) + path.sep)) throw new Error(`spool path outside spool: ${rel}`)
    return full
  }

  read(rel: string): Buffer {
    return fs.readFileSync(this.path(rel))
  }

  async remove(rel: string): Promise<void> {
    await fsp.unlink(this.path(rel)).catch((err) => {
      if (err.code !== 'ENOENT') throw err
    })
  }
}
