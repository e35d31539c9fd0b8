/*
 * A lock file for work that the appliance's services must not do twice at once when they
 * start together (making the TLS certificate, applying a staged restore): one process does
 * it while the others wait. A lock left behind by a crash is taken over once it is old.
 */
import fs from 'node:fs'
import path from 'node:path'

export function withLock<T>(dir: string, fn: () => T, name = '.lock'): T {
  fs.mkdirSync(dir, { recursive: true })
  const lock = path.join(dir, name)
  const deadline = Date.now() + 120_000
  for (;;) {
    try {
      fs.closeSync(fs.openSync(lock, 'wx'))
      break
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      const age = Date.now() - (fs.statSync(lock, { throwIfNoEntry: false })?.mtimeMs ?? Date.now())
      if (age > 300_000 || Date.now() > deadline) fs.rmSync(lock, { force: true })
      else Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 200)
    }
  }
  try {
    return fn()
  } finally {
    fs.rmSync(lock, { force: true })
  }
}
