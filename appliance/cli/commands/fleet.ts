/*
 * The fleet console (`moat fleet …`: enrollment tokens, hosts) and this machine's agent
 * (`moat agent …`: enroll, status, run). The stand-alone agent on customers' servers
 * (`moat-agent`) has the same agent verbs.
 */
import path from 'node:path'
import { enroll, flush } from '../../agent/agent'
import { DEFAULT_RUN, runAgent } from '../../agent/run'
import { PRIORITY_NAMES } from '../../fleet/logs'
import { AgentState } from '../../agent/state'
import { Fleet, FleetError } from '../../fleet/console'
import type { CommandKind, HostKind } from '../../fleet/protocol'
import { loadSettings } from '../../config'
import { WEBHOOK_SETTING } from '../../fleet/watch'
import { StoredSettings } from '../../services/stored-settings'
import { type Command, isoTime, need, printTable, UsageError } from '../command'
import { appliance } from '../context'

const VERSION: string = require('../../../../package.json').version

export const fleetCommands: Command[] = [
  {
    path: ['fleet', 'token', 'create'],
    usage: '--org ORG [--uses N] [--expires DAYS]',
    summary: 'Make an enrollment token for one organisation (printed alone on the last line; only its hash is kept).',
    options: {
      org: { type: 'string', description: 'the organisation whose hosts enroll with it' },
      uses: { type: 'string', description: 'how many hosts may enroll with it (default: any number)' },
      expires: { type: 'string', description: 'days until it expires (default 7)' },
    },
    run({ opts, out }) {
      if (!opts.org) throw new UsageError('--org is required')
      const a = appliance()
      const org = a.tenants.requireOrg(String(opts.org))
      const { id, token } = new Fleet(a.db).createToken(org.id, {
        uses: opts.uses === undefined ? null : Number(opts.uses), expiresDays: opts.expires === undefined ? 7 : Number(opts.expires), by: 'cli',
      })
      out(`enrollment token ${id} for ${org.name}; on the host: moat agent enroll CONSOLE_URL --token TOKEN`)
      out(token)
    },
  },
  {
    path: ['fleet', 'hosts'],
    usage: '[--json]',
    summary: 'List the enrolled hosts with status (online, late, offline, revoked), version and last report.',
    options: { json: { type: 'boolean', description: 'print JSON' } },
    run({ opts, out }) {
      const hosts = new Fleet(appliance().db).hosts(null)
      if (opts.json) return out(JSON.stringify(hosts))
      printTable(out, hosts.map((h) => ({ ...h, last_seen_at: h.last_seen_at ? isoTime(h.last_seen_at) : 'never' })), ['id', 'org', 'name', 'kind', 'status', 'version', 'last_seen_at'])
    },
  },
  {
    path: ['fleet', 'host'],
    usage: 'ID [--json]',
    summary: 'Show one host with its latest inventory and metrics.',
    options: { json: { type: 'boolean', description: 'print JSON' } },
    run({ args, opts, out }) {
      need(args, 1, 'the host id')
      const fleet = new Fleet(appliance().db)
      const h = fleet.host(Number(args[0]), null)
      if (!h) throw new FleetError(`no host ${args[0]}`, 404)
      if (opts.json) return out(JSON.stringify({ ...h, commands: fleet.commands(h.id) }))
      out(`${h.name} (${h.kind}) of ${h.org}: ${h.status}, version ${h.version ?? '-'}, last report ${h.last_seen_at ? isoTime(h.last_seen_at) : 'never'}`)
      const p = (v: number | null) => (v === null ? '-' : `${v.toFixed(0)} %`)
      if (h.cpu !== null || h.disk_use !== null) out(`cpu ${p(h.cpu)}, memory ${p(h.mem_pct)}, fullest disk ${p(h.disk_use)}`)
    },
  },
  {
    path: ['fleet', 'logs'],
    usage: 'ID [--q WORDS] [--priority 0-7] [--json]',
    summary: "Search a host's log lines (journald, Windows event logs), newest first: words in the line or its source, at a syslog priority or worse (default 7: all).",
    options: {
      q: { type: 'string', description: 'words the line or its source must hold' },
      priority: { type: 'string', description: '0 emerg … 4 warning … 7 debug' },
      json: { type: 'boolean', description: 'print JSON' },
    },
    run({ args, opts, out }) {
      need(args, 1, 'the host id')
      const fleet = new Fleet(appliance().db)
      const h = fleet.host(Number(args[0]), null)
      if (!h) throw new FleetError(`no host ${args[0]}`, 404)
      const maxPriority = opts.priority === undefined ? 7 : Number(opts.priority)
      if (!(Number.isInteger(maxPriority) && maxPriority >= 0 && maxPriority <= 7)) throw new FleetError('--priority must be 0 to 7')
      const lines = fleet.logs.search(h.id, { q: opts.q as string | undefined, maxPriority, limit: 1000 })
      if (opts.json) return out(JSON.stringify(lines))
      for (const l of lines) out(`${isoTime(l.at)} ${PRIORITY_NAMES[l.priority]} ${l.source}: ${l.message}`)
    },
  },
  {
    path: ['fleet', 'revoke'],
    usage: 'ID',
    summary: 'Revoke a host: its agent is refused from now on (it can enroll again with a new token).',
    run({ args, out }) {
      need(args, 1, 'the host id')
      if (!new Fleet(appliance().db).revokeHost(Number(args[0]), null)) throw new FleetError(`no host ${args[0]} to revoke`, 404)
      out(`host ${args[0]} revoked`)
    },
  },
  {
    path: ['fleet', 'command'],
    usage: 'ID refresh-inventory',
    summary: 'Queue a command for a host; it runs when the host next reports (an offline host: when it is back).',
    run({ args, out }) {
      need(args, 2, 'the host id and the command')
      const id = new Fleet(appliance().db).queueCommand(Number(args[0]), args[1] as CommandKind, null, 'cli')
      if (id === null) throw new FleetError(`no host ${args[0]} to send a command to`, 404)
      out(`command ${id} (${args[1]}) queued for host ${args[0]}`)
    },
  },
  {
    path: ['fleet', 'webhook'],
    usage: '[URL | --off]',
    summary: "Where fleet incidents are POSTed as JSON (the MSP's ticketing system): show, set or turn off.",
    options: { off: { type: 'boolean', description: 'send no webhook' } },
    run({ args, opts, out }) {
      const settings = new StoredSettings(appliance().db)
      if (opts.off) settings.remove(WEBHOOK_SETTING)
      else if (args[0]) {
        if (!/^https?:\/\/\S+$/.test(args[0])) throw new UsageError('the webhook must be an http(s):// URL')
        settings.set(WEBHOOK_SETTING, args[0])
      }
      out(`fleet webhook: ${settings.get<string | null>(WEBHOOK_SETTING, null) ?? 'off'}`)
    },
  },
  ...agentCommands('appliance'),
]

/** The agent's state folder: MOAT_AGENT_DIR, or DATA_DIR/agent on an appliance. */
function agentDir(): string {
  return process.env.MOAT_AGENT_DIR || path.join(loadSettings().dataDir, 'agent')
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
          return { enrolled: !!id, console: id?.consoleUrl ?? null, hostId: id?.hostId ?? null, pin: id?.pin ?? null, pending: state.pending() }
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
        if (!state.identity()) throw new UsageError('not enrolled: run "agent enroll URL --token T" first')
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
        await new Promise<void>((resolve) => {
          process.once('SIGTERM', resolve)
          process.once('SIGINT', resolve)
        })
        agent.stop()
        state.close()
      },
    },
  ]
}
