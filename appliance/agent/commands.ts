/*
 * This machine's agent: `moat agent enroll | status | flush | run` on an appliance, and the
 * same verbs as `moat-agent …` on customers' servers. Imports nothing of the mail side.
 */
import path from 'node:path'
import { type Command, need, UsageError } from '../cli/command'
import { loadSettings } from '../config'
import type { HostKind } from '../fleet/protocol'
import { enroll, flush } from './agent'
import { CONSOLE_CONFIG_KEY, DEFAULT_RUN, runAgent } from './run'
import { AgentState } from './state'

const VERSION: string = require('../../../package.json').version

/**
 * The agent's state folder: MOAT_AGENT_DIR (the .deb's wrapper and unit set it), on Windows
 * %ProgramData%\Moat Agent (where the .msi's service keeps it), or DATA_DIR/agent on an appliance.
 */
export function agentDir(dataDir?: string): string {
  if (process.env.MOAT_AGENT_DIR) return process.env.MOAT_AGENT_DIR
  if (process.platform === 'win32' && dataDir === undefined) return path.join(process.env.ProgramData || 'C:\\ProgramData', 'Moat Agent')
  return path.join(dataDir ?? loadSettings().dataDir, 'agent')
}

/** Opens the agent's state for one command and closes it whatever happens. */
async function withState<T>(fn: (state: AgentState) => T | Promise<T>): Promise<T> {
  const state = new AgentState(agentDir())
  try {
    return await fn(state)
  } finally {
    state.close()
  }
}

export function agentCommands(kind: HostKind): Command[] {
  return [
    {
      path: ['agent', 'enroll'],
      usage: 'URL --token TOKEN [--name NAME] [--pin sha256/…]',
      summary: "Enroll this machine into a fleet console (https://). The console's key is pinned: the one given, or the one it shows now.",
      options: {
        token: { type: 'string', description: 'the enrollment token from the console' },
        name: { type: 'string', description: 'the name the console shows (default: the host name)' },
        pin: { type: 'string', description: "the console's key pin from its install line" },
      },
      async run({ args, opts, out }) {
        need(args, 1, 'the console URL')
        if (!opts.token) throw new UsageError('--token is required')
        const r = await withState((state) =>
          enroll(state, args[0], { token: String(opts.token), kind, version: VERSION, name: opts.name ? String(opts.name) : undefined, pin: opts.pin ? String(opts.pin) : undefined }),
        )
        out(`enrolled as host ${r.hostId}; console key pinned: ${r.pin}`)
      },
    },
    {
      path: ['agent', 'status'],
      usage: '[--json]',
      summary: 'Show whether this machine is enrolled, where, and how many reports wait to be sent.',
      options: { json: { type: 'boolean', description: 'print JSON' } },
      async run({ opts, out }) {
        const s = await withState((state) => {
          const id = state.identity()
          const fromConsole = state.get(CONSOLE_CONFIG_KEY)
          return { enrolled: !!id, console: id?.consoleUrl ?? null, hostId: id?.hostId ?? null, pin: id?.pin ?? null, pending: state.pending(), settings: fromConsole ? JSON.parse(fromConsole) : null }
        })
        out(opts.json ? JSON.stringify(s) : s.enrolled ? `enrolled as host ${s.hostId} at ${s.console}; ${s.pending} reports waiting` : 'not enrolled')
      },
    },
    {
      path: ['agent', 'flush'],
      usage: '',
      summary: 'Send what is buffered now, once (the running agent does this by itself).',
      async run({ out }) {
        const r = await withState((state) => flush(state))
        out(`${r.sent} reports sent, ${r.pending} waiting${r.error ? `: ${r.error}` : ''}`)
        return r.error ? 1 : 0
      },
    },
    {
      path: ['agent', 'run'],
      usage: '',
      summary: 'Run the agent: inventory, metrics and log lines on their schedules (MOAT_AGENT_METRICS_CRON, MOAT_AGENT_INVENTORY_CRON, MOAT_AGENT_LOGS_CRON; MOAT_AGENT_LOG_PRIORITY, 0-7, default 4: warning and worse), sent to the console; the console may set them per organisation.',
      async run({ err }) {
        const state = new AgentState(agentDir())
        let stopping = false
        const stopped = new Promise<void>((resolve) => {
          const stop = () => ((stopping = true), resolve())
          process.once('SIGTERM', stop)
          process.once('SIGINT', stop)
        })
        // Installed before it is enrolled (the package, the image): the service waits for
        // "enroll" rather than failing and being restarted, and starts reporting once it is.
        if (!state.identity()) {
          err(`not enrolled yet: waiting for "${kind === 'appliance' ? 'moat agent' : 'moat-agent'} enroll URL --token T"`)
          const pollMs = Number(process.env.MOAT_AGENT_ENROLL_POLL_MS) || 30_000
          while (!stopping && !state.identity()) await Promise.race([stopped, new Promise((r) => setTimeout(r, pollMs).unref())])
          if (stopping) return state.close()
          err('enrolled: reporting')
        }
        const agent = runAgent(state, {
          version: VERSION,
          metricsCron: process.env.MOAT_AGENT_METRICS_CRON || DEFAULT_RUN.metricsCron,
          inventoryCron: process.env.MOAT_AGENT_INVENTORY_CRON || DEFAULT_RUN.inventoryCron,
          logsCron: process.env.MOAT_AGENT_LOGS_CRON || DEFAULT_RUN.logsCron,
          logPriority: process.env.MOAT_AGENT_LOG_PRIORITY ? Number(process.env.MOAT_AGENT_LOG_PRIORITY) : DEFAULT_RUN.logPriority,
          journalDir: process.env.MOAT_AGENT_JOURNAL_DIR || undefined,
          flushMs: Number(process.env.MOAT_AGENT_FLUSH_MS) || DEFAULT_RUN.flushMs,
          backoffMaxMs: Number(process.env.MOAT_AGENT_BACKOFF_MAX_MS) || undefined,
          // Inside an appliance: its mail health too.
          applianceDataDir: kind === 'appliance' ? loadSettings().dataDir : undefined,
          log: err,
        })
        await stopped
        await agent.stop()
        state.close()
      },
    },
  ]
}
