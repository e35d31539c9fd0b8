/*
 * The agent as a service: schedules (node-cron expressions) take inventory and metrics into
 * the buffer; a loop sends the buffer, backing off with jitter while the console is away.
 * Used by `moat agent run` on an appliance and by the stand-alone agent on customers' servers.
 */
import crypto from 'node:crypto'
import cron from 'node-cron'
import { backoffMs, flush, type FlushResult } from './agent'
import { inventoryInWorker, metrics } from './collect'
import { type CommandContext, runCommand } from './commands-run'
import { mailHealth } from './health'
import type * as Learning from './learning'
import { JOURNAL_CURSOR_KEY, LOG_BATCH, readJournal, readWindowsChannel, WINDOWS_CHANNELS } from './logs'
import type { AgentConfig } from '../fleet/agent-config'
import type { Command } from '../fleet/protocol'
import type { AgentState } from './state'

export interface RunOptions {
  version: string
  /** node-cron expressions (a sixth, leading field is seconds) */
  metricsCron: string
  inventoryCron: string
  /** how often the buffer is sent when all is well */
  flushMs: number
  /** the longest wait between tries while the console is away */
  backoffMaxMs?: number
  /** on a Moat appliance: its data folder, for the mail health report (with the metrics) */
  applianceDataDir?: string
  /** node-cron expression for reading new log lines */
  logsCron: string
  /** send log lines at this syslog priority or more urgent (4: warning) */
  logPriority: number
  /** a journal folder other than the system's (journalctl --directory) */
  journalDir?: string
  log: (line: string) => void
}

/** How often the agent looks for a changed inventory (a package installed, a disk added). */
export const INVENTORY_CHANGE_CRON = '41 * * * *'
const INVENTORY_HASH_KEY = 'inventory-hash'

/**
 * What identifies an inventory, without what moves all the time (space used, who is signed
 * in, which services happen to run, how many updates wait): a change here is news.
 */
export function inventoryHash(inv: Record<string, unknown>): string {
  const { users: _u, services: _s, updates: _p, fs, ...stable } = inv as { fs?: { mount: string; type: string; size: number }[] } & Record<string, unknown>
  const fsStable = (fs ?? []).map((f) => ({ mount: f.mount, type: f.type, size: f.size }))
  return crypto.createHash('sha256').update(JSON.stringify({ ...stable, fs: fsStable })).digest('hex')
}

/** Catching up: at most this many batches (200 reports each) a turn, turns about this far apart. */
export const CATCH_UP_BATCHES = 5
export const CATCH_UP_PAUSE_MS = 2000

/** The agent state's key for the console's settings for this host's organisation. */
export const CONSOLE_CONFIG_KEY = 'console-config'

/**
 * How often an appliance's new fingerprint words go into the buffer: with the flush every
 * 15 s and the pull after it, a campaign reported at one customer is known to the MSP's other
 * appliances in well under the two minutes the fleet promises.
 */
export const FINGERPRINTS_CRON = '*/10 * * * * *'

export const DEFAULT_RUN: Omit<RunOptions, 'version' | 'log'> = {
  metricsCron: '* * * * *',
  inventoryCron: '17 3 * * *',
  logsCron: '* * * * *',
  logPriority: 4,
  flushMs: 15_000,
}

/** Reads what the logs hold since the saved positions and buffers it with them. */
export async function takeLogs(state: AgentState, o: Pick<RunOptions, 'logPriority' | 'journalDir'>, platform = process.platform): Promise<number> {
  let taken = 0
  if (platform === 'win32') {
    for (const channel of WINDOWS_CHANNELS) {
      const saved = state.get(`eventlog:${channel}`)
      const r = await readWindowsChannel(channel, saved === null ? null : Number(saved), o.logPriority)
      if (r.entries.length) state.enqueue('logs', { entries: r.entries }, Date.now(), r.position)
      else if (r.position) state.set(r.position.key, r.position.value)
      taken += r.entries.length
    }
    return taken
  }
  // Batch by batch until caught up (at most 20 a run), each report at most LOG_BATCH lines.
  for (let i = 0; i < 20; i++) {
    const r = await readJournal(state.get(JOURNAL_CURSOR_KEY), o.logPriority, { directory: o.journalDir })
    if (r.entries.length) state.enqueue('logs', { entries: r.entries }, Date.now(), r.position)
    else if (r.position) state.set(r.position.key, r.position.value)
    taken += r.entries.length
    if (r.read < LOG_BATCH) break
  }
  return taken
}

export function runAgent(state: AgentState, o: RunOptions): { stop(): Promise<void> } {
  for (const expr of [o.metricsCron, o.inventoryCron, o.logsCron]) if (!cron.validate(expr)) throw new Error(`not a cron expression: "${expr}"`)
  const collectors = {
    inventory: () => inventoryInWorker(o.version),
    metrics: () => metrics(),
    health: async () => mailHealth(o.applianceDataDir!, o.version),
  }
  // Once stopped, nothing more goes into the state: it is about to be closed.
  let stopped = false
  const take = (what: keyof typeof collectors) => {
    collectors[what]()
      .then((data) => void (stopped || state.enqueue(what, data, Date.now(), what === 'inventory' ? { key: INVENTORY_HASH_KEY, value: inventoryHash(data) } : null)))
      .catch((err) => o.log(`moat agent: could not take ${what}: ${err}`))
  }
  const inventoryIfChanged = async () => {
    const data = await collectors.inventory()
    const hash = inventoryHash(data)
    if (!stopped && hash !== state.get(INVENTORY_HASH_KEY)) state.enqueue('inventory', data, Date.now(), { key: INVENTORY_HASH_KEY, value: hash })
  }
  const commandContext: CommandContext = {
    applianceDataDir: o.applianceDataDir,
    journalDir: o.journalDir,
    takeInventory: async () => void state.enqueue('inventory', await collectors.inventory()),
  }
  const everyMinute = () => {
    take('metrics')
    if (o.applianceDataDir) take('health')
  }
  // The console's settings for this host's organisation (kept from its last answer) over
  // this agent's own; schedules are rebuilt when the console changes them.
  const saved = state.get(CONSOLE_CONFIG_KEY)
  let consoleConfig: AgentConfig = saved ? (JSON.parse(saved) as AgentConfig) : {}
  const effective = () => ({ ...o, ...consoleConfig })
  let readingLogs: Promise<unknown> | null = null
  const logs = () => {
    if (readingLogs || stopped) return
    readingLogs = takeLogs(state, effective())
      .catch((err) => o.log(`moat agent: could not read the logs: ${err}`))
      .finally(() => (readingLogs = null))
  }
  // On an appliance: learning shared with the fleet, and pulled from it (agent/learning.ts).
  // Loaded there only: it reads message fingerprints, which the agent on a customer's server
  // (and its .deb and .msi) neither needs nor ships.
  const learning = o.applianceDataDir ? (require('./learning') as typeof Learning) : null
  const share = () => {
    const id = state.identity()
    if (stopped || !o.applianceDataDir || !learning || !id) return
    try {
      learning.shareFingerprints(state, o.applianceDataDir, id.hostId)
    } catch (err) {
      o.log(`moat agent: could not read the appliance's fingerprints: ${err}`)
    }
  }
  let pulling: Promise<unknown> | null = null
  const pull = () => {
    if (pulling || stopped || !o.applianceDataDir || !learning) return
    pulling = learning.pullFingerprints(state, o.applianceDataDir)
      .catch((err) => o.log(`moat agent: could not pull the fleet's fingerprints: ${err}`))
      .finally(() => (pulling = null))
  }
  let tasks: ReturnType<typeof cron.schedule>[] = []
  const schedule = () => {
    for (const t of tasks) t.stop()
    const e = effective()
    tasks = [
      cron.schedule(e.metricsCron, everyMinute), cron.schedule(e.inventoryCron, () => take('inventory')), cron.schedule(e.logsCron, logs),
      // Between the daily ones, an inventory is sent when something in it changed.
      cron.schedule(INVENTORY_CHANGE_CRON, () => void inventoryIfChanged().catch((err) => o.log(`moat agent: could not take inventory: ${err}`))),
      ...(o.applianceDataDir ? [cron.schedule(FINGERPRINTS_CRON, share)] : []),
    ]
  }
  const configure = (c: AgentConfig | null | undefined) => {
    if (c === undefined) return
    const next = c ?? {}
    if (JSON.stringify(next) === JSON.stringify(consoleConfig)) return
    for (const expr of [next.metricsCron, next.inventoryCron, next.logsCron]) {
      if (expr !== undefined && !cron.validate(expr)) return o.log(`moat agent: the console sent a schedule that is not a cron expression: "${expr}"`)
    }
    consoleConfig = next
    state.set(CONSOLE_CONFIG_KEY, JSON.stringify(next))
    o.log(`moat agent: settings from the console: ${JSON.stringify(next)}`)
    schedule()
  }
  schedule()
  take('inventory')
  everyMinute()
  logs()
  share()
  let failures = 0
  let timer: NodeJS.Timeout | null = null
  let flushing: Promise<unknown> | null = null
  const loop = () => {
    flushing = turn().finally(() => (flushing = null))
  }
  const turn = async () => {
    // A bounded number of batches at a time: an agent back from a long outage catches up at
    // CATCH_UP_BATCHES × 200 reports every CATCH_UP_PAUSE_MS, not its whole backlog at once,
    // so a console that restarts is not flooded by every agent's week in one go.
    const r: FlushResult = await flush(state, { maxBatches: CATCH_UP_BATCHES }).catch((err) => ({ sent: 0, pending: state.pending(), error: String(err) }))
    if (stopped) return
    configure(r.config)
    // Commands the console has waiting for this host: each id runs once (the console
    // repeats a command until its result arrives, so a lost answer is no lost command).
    for (const c of r.commands ?? []) {
      if (state.get(`command:${c.id}`)) continue
      state.set(`command:${c.id}`, String(Date.now()))
      runCommand(c, commandContext)
        .then((output) => void (stopped || state.enqueue('command', { id: c.id, ok: true, output })))
        .catch((err) => void (stopped || state.enqueue('command', { id: c.id, ok: false, output: String(err) })))
    }
    if (!r.error) pull()
    if (r.error) {
      failures++
      const wait = backoffMs(failures, Math.random, o.backoffMaxMs)
      o.log(`moat agent: ${r.error}; ${r.pending} reports kept, next try in ${Math.round(wait / 1000)} s`)
      timer = setTimeout(loop, wait)
    } else {
      if (failures) o.log(`moat agent: the console is back; ${r.sent} reports sent`)
      failures = 0
      timer = setTimeout(loop, r.pending > 0 ? Math.min(o.flushMs, CATCH_UP_PAUSE_MS / 2 + Math.random() * CATCH_UP_PAUSE_MS) : o.flushMs)
    }
  }
  timer = setTimeout(loop, 1000)
  return {
    /** Stops the schedules and waits for a send or a log read under way (then the state may close). */
    async stop() {
      stopped = true
      if (timer) clearTimeout(timer)
      for (const t of tasks) t.stop()
      await Promise.allSettled([flushing, readingLogs, pulling])
    },
  }
}
