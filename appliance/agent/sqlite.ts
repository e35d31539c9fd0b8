/*
 * The agent's SQLite, through better-sqlite3 where it is installed (the appliance, the .deb)
 * and Node's own node:sqlite where it is not (the Windows .msi: no native module can be
 * compiled for Windows here, and Node 24 carries SQLite). One small interface over both.
 */

export interface AgentDb {
  exec(sql: string): void
  get<T>(sql: string, ...args: unknown[]): T | undefined
  all<T>(sql: string, ...args: unknown[]): T[]
  run(sql: string, ...args: unknown[]): { changes: number; lastInsertRowid: number }
  /** fn inside BEGIN IMMEDIATE … COMMIT (ROLLBACK if it throws); not nested */
  transaction<T>(fn: () => T): T
  close(): void
  readonly driver: 'better-sqlite3' | 'node:sqlite'
}

interface Statement {
  get(...args: unknown[]): unknown
  all(...args: unknown[]): unknown[]
  run(...args: unknown[]): { changes: number | bigint; lastInsertRowid: number | bigint }
}

function wrap(db: { prepare(sql: string): Statement; exec(sql: string): unknown; close(): unknown }, driver: AgentDb['driver']): AgentDb {
  const cache = new Map<string, Statement>()
  const stmt = (sql: string) => {
    let s = cache.get(sql)
    if (!s) cache.set(sql, (s = db.prepare(sql)))
    return s
  }
  return {
    driver,
    exec: (sql) => void db.exec(sql),
    get: <T>(sql: string, ...args: unknown[]) => (stmt(sql).get(...args) as T | undefined) ?? undefined,
    all: <T>(sql: string, ...args: unknown[]) => stmt(sql).all(...args) as T[],
    run: (sql, ...args) => {
      const r = stmt(sql).run(...args)
      return { changes: Number(r.changes), lastInsertRowid: Number(r.lastInsertRowid) }
    },
    transaction<T>(fn: () => T): T {
      db.exec('BEGIN IMMEDIATE')
      try {
        const v = fn()
        db.exec('COMMIT')
        return v
      } catch (err) {
        db.exec('ROLLBACK')
        throw err
      }
    },
    close: () => void db.close(),
  }
}

export function openAgentDb(file: string): AgentDb {
  let Better: (new (file: string) => { prepare(sql: string): Statement; exec(sql: string): unknown; close(): unknown }) | null = null
  try {
    Better = require('better-sqlite3')
    return wrap(new Better!(file), 'better-sqlite3')
  } catch (err) {
    // Not installed, or its native part not built for this platform: Node's own SQLite.
    if (Better && !/Could not locate the bindings file|ERR_DLOPEN_FAILED|was compiled against a different Node/.test(String((err as Error).message) + (err as NodeJS.ErrnoException).code)) throw err
    if (!Better && (err as NodeJS.ErrnoException).code !== 'MODULE_NOT_FOUND') throw err
  }
  // node:sqlite says it is experimental on every load; the agent's log is no place for that.
  const emit = process.emitWarning
  process.emitWarning = ((w: string | Error, ...rest: unknown[]) => (/SQLite is an experimental/.test(String(w)) ? undefined : (emit as (...a: unknown[]) => void).call(process, w, ...rest))) as typeof process.emitWarning
  try {
    const { DatabaseSync } = require('node:sqlite') as { DatabaseSync: new (file: string) => { prepare(sql: string): Statement; exec(sql: string): unknown; close(): unknown } }
    return wrap(new DatabaseSync(file), 'node:sqlite')
  } finally {
    process.emitWarning = emit
  }
}
