/*
 * The agent as a service: schedules (node-cron expressions) take inventory and metrics into
 * the buffer; a loop sends the buffer, backing off with jitter while the console is away.
 * Used by `moat agent run` on an appliance and by the stand-alone agent on customers' servers.
 */
import cron from 'node-cron'
import { backoffMs, flush, type FlushResult } from './agent'
import { inventory, metrics } from './collect'
import { mailHealth } from './health'
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
  log: (line: string) => void
}

export const DEFAULT_RUN: Omit<RunOptions, 'version' | 'log'> = {
  metricsCron: '* * * * *',
  inventoryCron: '17 3 * * *',
  flushMs: 15_000,
}

export function runAgent(state: AgentState, o: RunOptions): { stop(): void } {
  for (const expr of [o.metricsCron, o.inventoryCron]) if (!cron.validate(expr)) throw new Error(`not a cron expression: "${expr}"`)
  const collectors = {
    inventory: () => inventory(o.version),
    metrics: () => metrics(),
    health: async () => mailHealth(o.applianceDataDir!, o.version),
  }
  const take = (what: keyof typeof collectors) => {
    collectors[what]()
      .then((data) => state.enqueue(what, data))
      .catch((err) => o.log(`moat agent: could not take ${what}: ${err}`))
  }
  const runCommand = async (c: Command): Promise<string> => {
    switch (c.kind) {
      case 'refresh-inventory':
        state.enqueue('inventory', await collectors.inventory())
        return 'inventory taken'
      default:
        throw new Error(`this agent does not know the command "${c.kind}"`)
    }
  }
  const everyMinute = () => {
    take('metrics')
    if (o.applianceDataDir) take('health')
  }
  const tasks = [cron.schedule(o.metricsCron, everyMinute), cron.schedule(o.inventoryCron, () => take('inventory'))]
  take('inventory')
  everyMinute()
  let failures = 0
  let timer: NodeJS.Timeout | null = null
  let stopped = false
  const loop = async () => {
    const r: FlushResult = await flush(state).catch((err) => ({ sent: 0, pending: state.pending(), error: String(err) }))
    if (stopped) return
    // Commands the console has waiting for this host: each id runs once (the console
    // repeats a command until its result arrives, so a lost answer is no lost command).
    for (const c of r.commands ?? []) {
      if (state.get(`command:${c.id}`)) continue
      state.set(`command:${c.id}`, String(Date.now()))
      runCommand(c)
        .then((output) => state.enqueue('command', { id: c.id, ok: true, output }))
        .catch((err) => state.enqueue('command', { id: c.id, ok: false, output: String(err) }))
    }
    if (r.error) {
      failures++
      const wait = backoffMs(failures, Math.random, o.backoffMaxMs)
      o.log(`moat agent: ${r.error}; ${r.pending} reports kept, next try in ${Math.round(wait / 1000)} s`)
      timer = setTimeout(loop, wait)
    } else {
      if (failures) o.log(`moat agent: the console is back; ${r.sent} reports sent`)
      failures = 0
      timer = setTimeout(loop, o.flushMs)
    }
  }
  timer = setTimeout(loop, 1000)
  return {
    stop() {
      stopped = true
      if (timer) clearTimeout(timer)
      for (const t of tasks) t.stop()
    },
  }
}
