/*
 * The fleet console (`moat fleet …`: enrollment tokens, hosts) and this machine's agent
 * (`moat agent …`: enroll, status, run). The stand-alone agent on customers' servers
 * (`moat-agent`) has the same agent verbs.
 */
import { agentCommands } from '../../agent/commands'
import { ALERT_MAIL_SETTING, type AlertMail, setAlertMail } from '../../fleet/alert-mail'
import { PRIORITY_NAMES } from '../../fleet/logs'
import { Fleet, FleetError } from '../../fleet/console'
import type { CommandKind } from '../../fleet/protocol'
import { DEFAULT_RULES, type Rules, rulesFor, setRules, WEBHOOK_SETTING } from '../../fleet/watch'
import { StoredSettings } from '../../services/stored-settings'
import { type Command, isoTime, need, printTable, UsageError } from '../command'
import { appliance } from '../context'


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
    path: ['fleet', 'settings'],
    usage: '--org ORG [--metrics-cron C] [--inventory-cron C] [--logs-cron C] [--log-priority 0-7] [--reset] [--json]',
    summary: "Show or change what an organisation's agents do: their schedules (node-cron) and which log lines they send; agents follow at their next report.",
    options: {
      org: { type: 'string', description: 'the organisation' },
      'metrics-cron': { type: 'string', description: 'metrics (default every minute: "* * * * *")' },
      'inventory-cron': { type: 'string', description: 'inventory (default daily: "17 3 * * *")' },
      'logs-cron': { type: 'string', description: 'log lines (default every minute)' },
      'log-priority': { type: 'string', description: 'send log lines this urgent or more: 0 emerg … 4 warning (default) … 7 debug' },
      reset: { type: 'boolean', description: "back to the agents' defaults" },
      json: { type: 'boolean', description: 'print JSON' },
    },
    run({ opts, out }) {
      if (!opts.org) throw new UsageError('--org is required')
      const a = appliance()
      const org = a.tenants.requireOrg(String(opts.org))
      const configs = new Fleet(a.db).agentConfigs
      const str = (k: string) => (opts[k] === undefined ? undefined : String(opts[k]))
      const change = opts.reset
        ? { metricsCron: null, inventoryCron: null, logsCron: null, logPriority: null }
        : { metricsCron: str('metrics-cron'), inventoryCron: str('inventory-cron'), logsCron: str('logs-cron'), logPriority: opts['log-priority'] === undefined ? undefined : Number(opts['log-priority']) }
      const changing = Object.values(change).some((v) => v !== undefined)
      const config = changing ? configs.set(org.id, change) : (configs.get(org.id) ?? {})
      if (opts.json) return out(JSON.stringify(config))
      out(Object.keys(config).length ? `${org.name}: ${Object.entries(config).map(([k, v]) => `${k} ${JSON.stringify(v)}`).join(', ')}` : `${org.name}: the agents' defaults`)
    },
  },
  {
    path: ['fleet', 'rules'],
    usage: '--org ORG [--offline-minutes N] [--disk-percent N] [--queue-over N] [--certificate-days N] [--backup-days N] [--reset] [--json]',
    summary: "Show or change an organisation's fleet alert thresholds (an incident opens when one is crossed, and resolves when it is not).",
    options: {
      org: { type: 'string', description: 'the organisation' },
      'offline-minutes': { type: 'string', description: `a host not heard from for this long (default ${DEFAULT_RULES.offlineMinutes})` },
      'disk-percent': { type: 'string', description: `the fullest file system over this (default ${DEFAULT_RULES.diskPercent})` },
      'queue-over': { type: 'string', description: `an appliance's mail waiting for delivery over this (default ${DEFAULT_RULES.queueOver})` },
      'certificate-days': { type: 'string', description: `an appliance's certificate expiring within this (default ${DEFAULT_RULES.certificateDays})` },
      'backup-days': { type: 'string', description: `an appliance's last backup older than this (default ${DEFAULT_RULES.backupDays})` },
      reset: { type: 'boolean', description: 'back to the defaults' },
      json: { type: 'boolean', description: 'print JSON' },
    },
    run({ opts, out }) {
      if (!opts.org) throw new UsageError('--org is required')
      const a = appliance()
      const org = a.tenants.requireOrg(String(opts.org))
      const settings = new StoredSettings(a.db)
      const names = { 'offline-minutes': 'offlineMinutes', 'disk-percent': 'diskPercent', 'queue-over': 'queueOver', 'certificate-days': 'certificateDays', 'backup-days': 'backupDays' } as const
      const change: { [K in keyof Rules]?: number | null } = {}
      for (const [opt, key] of Object.entries(names)) {
        if (opts.reset) change[key] = null
        else if (opts[opt] !== undefined) change[key] = Number(opts[opt])
      }
      const rules = Object.keys(change).length ? setRules(settings, org.id, change) : rulesFor(settings, org.id)
      if (opts.json) return out(JSON.stringify(rules))
      out(`${org.name}: ${Object.entries(rules).map(([k, v]) => `${k} ${v}`).join(', ')}`)
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
    path: ['fleet', 'learning'],
    usage: '[--json]',
    summary: "What each appliance shared with the fleet: campaign fingerprints it says are spam or ham, those withdrawn, words refused as a flood, and its standing (proven: its word counts alone, weakly).",
    options: { json: { type: 'boolean', description: 'print JSON' } },
    run({ opts, out }) {
      const rows = new Fleet(appliance().db).learning.status(null)
      if (opts.json) return out(JSON.stringify(rows))
      printTable(out, rows.map((r) => ({ ...r, proven: r.proven ? 'yes' : 'no' })), ['host_id', 'spam', 'ham', 'withdrawn', 'refused', 'corroborated', 'contradicted', 'proven'])
    },
  },
  {
    path: ['fleet', 'learning', 'withdraw'],
    usage: '--host ID [--reporter HASH] | --kind text|url|attachment --key KEY',
    summary: "Withdraw what a host shared (all of it, or one of its reporters'), or one fingerprint everywhere; the other appliances drop it at their next pull.",
    options: {
      host: { type: 'string', description: 'the host whose words to withdraw' },
      reporter: { type: 'string', description: "with --host: only this reporter's words (the hash the host sent)" },
      kind: { type: 'string', description: 'the kind of one fingerprint' },
      key: { type: 'string', description: 'its key' },
    },
    run({ opts, out }) {
      const kind = opts.kind === undefined ? undefined : String(opts.kind)
      if (kind && !['text', 'url', 'attachment'].includes(kind)) throw new UsageError('--kind is text, url or attachment')
      if (opts.reporter !== undefined && opts.host === undefined) throw new UsageError('--reporter needs --host')
      const n = new Fleet(appliance().db).learning.withdraw(
        { hostId: opts.host === undefined ? undefined : Number(opts.host), reporter: opts.reporter === undefined ? undefined : String(opts.reporter), kind: kind as 'text' | undefined, key: opts.key === undefined ? undefined : String(opts.key) },
        null,
        'cli',
      )
      out(`${n} word${n === 1 ? '' : 's'} withdrawn`)
    },
  },
  {
    path: ['fleet', 'command'],
    usage: 'ID refresh-inventory|collect-logs|restart-services|apply-update [RELEASE_URL]',
    summary: "Queue a command for a host; it runs when the host next reports (an offline host: when it is back). restart-services and apply-update (the https:// URL of a signed release) are for appliances.",
    run({ args, out }) {
      need(args, 2, 'the host id and the command')
      const id = new Fleet(appliance().db).queueCommand(Number(args[0]), args[1] as CommandKind, null, 'cli', Date.now(), args[2] ?? null)
      if (id === null) throw new FleetError(`no host ${args[0]} to send a command to`, 404)
      out(`command ${id} (${args[1]}) queued for host ${args[0]}`)
    },
  },
  {
    path: ['fleet', 'mail'],
    usage: '[ADDRESS[,ADDRESS…] | --off]',
    summary: 'Who gets fleet incidents by mail (one message when an incident opens, one when it resolves): show, set or turn off.',
    options: { off: { type: 'boolean', description: 'mail nobody' } },
    run({ args, opts, out }) {
      const db = appliance().db
      if (opts.off) setAlertMail(db, null)
      else if (args[0]) setAlertMail(db, args.join(',').split(',').map((a) => a.trim()).filter(Boolean))
      const cfg = new StoredSettings(db).get<AlertMail | null>(ALERT_MAIL_SETTING, null)
      out(`fleet incident mail: ${cfg ? cfg.to.join(', ') : 'off'}`)
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
