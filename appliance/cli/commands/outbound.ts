/* The outbound smarthost: relay networks, routes, DKIM, held senders, bounce keys, delivery and blocklist monitoring. */
import { Alerts } from '../../services/alerts'
import { BounceKeys } from '../../services/bounce-keys'
import { StoredSettings } from '../../services/stored-settings'
import { DELIVERY_ATTEMPT_DAYS, DELIVERY_ATTEMPT_DAYS_SETTING, setRetentionDays } from '../../jobs/retention'
import { DeliveryMonitor } from '../../services/delivery-monitor'
import { Dkim, zoneLine } from '../../services/dkim'
import { OutboundSenders } from '../../services/outbound-senders'
import { RelayControl } from '../../services/relay'
import { RblWatch, readZoneFile } from '../../services/rbl-watch'
import { Transport } from '../../services/transport'
import { TenantError } from '../../services/tenants'
import { type Command, need, isoTime, printTable, UsageError } from '../command'
import { appliance } from '../context'

const json = { type: 'boolean', description: 'print JSON' } as const

export const outboundCommands: Command[] = [
  {
    path: ['relay', 'add'],
    usage: 'ORG CIDR [--description TEXT]',
    summary: "Let the customer mail server(s) at CIDR relay outbound mail for ORG (its own domains as sender only).",
    options: { description: { type: 'string', description: 'what this network is' } },
    run({ args, opts, out }) {
      need(args, 2, 'organisation and network')
      const r = new RelayControl(appliance().db).addNetwork(args[0], args[1], String(opts.description ?? ''))
      out(`${r.cidr} may relay for ${r.org}`)
    },
  },
  {
    path: ['relay', 'list'],
    usage: '[--json]',
    summary: 'List the networks allowed to relay, per organisation.',
    options: { json },
    run({ opts, out }) {
      const rows = new RelayControl(appliance().db).listNetworks()
      if (opts.json) return out(JSON.stringify(rows))
      printTable(out, rows.map((r) => ({ ...r, created_at: isoTime(r.created_at) })), ['org', 'cidr', 'description', 'created_at'])
    },
  },
  {
    path: ['relay', 'remove'],
    usage: 'CIDR',
    summary: 'Stop relaying for a network.',
    run({ args, out }) {
      need(args, 1, 'network')
      new RelayControl(appliance().db).removeNetwork(args[0])
      out(`${args[0]} may no longer relay`)
    },
  },
  {
    path: ['route', 'add'],
    usage: 'DOMAIN|* HOST[:PORT]',
    summary: "Send outbound mail for DOMAIN (or for every domain: *) to HOST instead of the domain's MX.",
    run({ args, out }) {
      need(args, 2, 'domain and host')
      const r = new Transport(appliance().db).add(args[0], args[1])
      out(`mail for ${r.domain} goes to ${r.host}:${r.port}`)
    },
  },
  {
    path: ['route', 'list'],
    usage: '[--json]',
    summary: 'List transport routes for outbound mail.',
    options: { json },
    run({ opts, out }) {
      const rows = new Transport(appliance().db).list()
      if (opts.json) return out(JSON.stringify(rows))
      printTable(out, rows.map((r) => ({ ...r })), ['domain', 'host', 'port'])
    },
  },
  {
    path: ['route', 'remove'],
    usage: 'DOMAIN|*',
    summary: 'Remove a transport route (mail for the domain goes by DNS MX again).',
    run({ args, out }) {
      need(args, 1, 'domain')
      new Transport(appliance().db).remove(args[0])
      out(`route for ${args[0]} removed`)
    },
  },
  {
    path: ['domain', 'dkim'],
    usage: 'DOMAIN [--enable|--disable|--rotate] [--json]',
    summary: 'Show the DKIM record to publish for DOMAIN (making its key on first use); sign outbound mail once it is published (--enable).',
    options: {
      enable: { type: 'boolean', description: 'start signing (publish the record first)' },
      disable: { type: 'boolean', description: 'stop signing' },
      rotate: { type: 'boolean', description: 'make a new key and selector (signing stops until --enable)' },
      json,
    },
    run({ args, opts, out }) {
      need(args, 1, 'domain')
      if (opts.enable && opts.disable) throw new UsageError('--enable or --disable, not both')
      const info = new Dkim(appliance().db).info(args[0], { enable: opts.enable ? true : opts.disable ? false : undefined, rotate: !!opts.rotate })
      if (opts.json) return out(JSON.stringify({ ...info, name: `${info.selector}._domainkey.${info.domain}` }))
      out(`Publish this TXT record, then run: moat domain dkim ${info.domain} --enable`)
      out(zoneLine(info))
      out(`signing: ${info.enabled ? 'on' : 'off'}`)
    },
  },
  {
    path: ['sender', 'list'],
    usage: '[--all] [--json]',
    summary: 'List held outbound senders (--all: with released ones).',
    options: { all: { type: 'boolean', description: 'include released senders' }, json },
    run({ opts, out }) {
      const rows = new OutboundSenders(appliance().db).list(!!opts.all)
      if (opts.json) return out(JSON.stringify(rows))
      printTable(out, rows.map((h) => ({ ...h, held_at: isoTime(h.held_at), released_at: isoTime(h.released_at) })), ['org', 'address', 'reason', 'held_at', 'released_at'])
    },
  },
  {
    path: ['sender', 'hold'],
    usage: 'ADDRESS --org ORG [--reason TEXT]',
    summary: "Hold a sender's outbound mail (queued, not sent) until released.",
    options: { org: { type: 'string', description: 'organisation of the sender' }, reason: { type: 'string', description: 'why' } },
    run({ args, opts, out }) {
      need(args, 1, 'address')
      if (!opts.org) throw new UsageError('--org is required')
      const org = appliance().tenants.requireOrg(String(opts.org))
      const held = new OutboundSenders(appliance().db).hold(org.id, args[0], String(opts.reason ?? 'held by an administrator'))
      out(held ? `${args[0]} is held` : `${args[0]} was held already`)
    },
  },
  {
    path: ['sender', 'release'],
    usage: 'ADDRESS [--org ORG]',
    summary: 'Release a held sender: its held mail goes out.',
    options: { org: { type: 'string', description: 'organisation of the sender' } },
    run({ args, opts, out }) {
      need(args, 1, 'address')
      const freed = new OutboundSenders(appliance().db).release(args[0], opts.org ? String(opts.org) : undefined)
      out(`${args[0]} released; ${freed} held deliveries go out`)
    },
  },
  {
    path: ['bounce-keys', 'list'],
    usage: '[--json]',
    summary: 'List the keys that stamp outbound mail against backscatter.',
    options: { json },
    run({ opts, out }) {
      const rows = new BounceKeys(appliance().db).list()
      if (opts.json) return out(JSON.stringify(rows))
      printTable(out, rows.map((k) => ({ id: k.id, created_at: isoTime(k.created_at), retired_at: isoTime(k.retired_at) })), ['id', 'created_at', 'retired_at'])
    },
  },
  {
    path: ['bounce-keys', 'rotate'],
    usage: '',
    summary: 'Make a new stamping key; older keys keep checking bounces until their stamps expire.',
    run({ out }) {
      const id = new BounceKeys(appliance().db).rotate()
      out(`bounce key ${id} is now used for stamping`)
    },
  },
  {
    path: ['delivery', 'stats'],
    usage: '[--ip IP] [--hours N] [--json]',
    summary: 'Delivery to other servers per destination IP: attempts, deferrals, failures, latency, and whose side the trouble is on.',
    options: {
      ip: { type: 'string', description: 'one destination IP only' },
      hours: { type: 'string', description: 'how far back (default 24)' },
      json,
    },
    run({ opts, out }) {
      const hours = opts.hours === undefined ? 24 : Number(opts.hours)
      if (!Number.isInteger(hours) || hours < 1) throw new UsageError('--hours wants a whole number of hours')
      const rows = new DeliveryMonitor(appliance().db).stats({ hours, ip: opts.ip ? String(opts.ip) : undefined })
      if (opts.json) return out(JSON.stringify(rows))
      printTable(
        out,
        rows.map((r) => ({ ...r, avg_connect_ms: r.avg_connect_ms ?? '' })),
        ['ip', 'domain', 'attempts', 'delivered', 'deferred', 'bounced', 'failed', 'avg_connect_ms', 'avg_total_ms', 'max_total_ms'],
      )
      const troubled = rows.filter((r) => r.diagnosis.length)
      if (troubled.length) out('')
      for (const r of troubled) {
        out(`${r.ip}:`)
        const side = { ours: 'OUR side', theirs: 'their side', network: 'network', none: '' } as Record<string, string>
        for (const d of r.diagnosis) out(`  ${d.count} x ${side[d.side]}: ${d.reason}`)
      }
    },
  },
  {
    path: ['delivery', 'attempts'],
    usage: '[--ip IP] [--limit N] [--json]',
    summary: 'The latest delivery attempts, with the SMTP answer and timings of each.',
    options: { ip: { type: 'string', description: 'one destination IP only' }, limit: { type: 'string', description: 'how many (default 50)' }, json },
    run({ opts, out }) {
      const limit = opts.limit === undefined ? 50 : Number(opts.limit)
      if (!Number.isInteger(limit) || limit < 1) throw new UsageError('--limit wants a whole number')
      const rows = new DeliveryMonitor(appliance().db).recent({ ip: opts.ip ? String(opts.ip) : undefined, limit })
      if (opts.json) return out(JSON.stringify(rows))
      printTable(out, rows.map((r) => ({ ...r, at: isoTime(r.at as number) })), ['at', 'domain', 'ip', 'port', 'outcome', 'class', 'code', 'connect_ms', 'total_ms', 'attempt', 'response'])
    },
  },
  {
    path: ['rbl', 'status'],
    usage: '[--json]',
    summary: "The appliance's own outbound addresses on public blocklists: current listings and history.",
    options: { json },
    run({ opts, out }) {
      const a = appliance()
      const s = new RblWatch(a.db, a.settings.dnsServer).status()
      if (opts.json) return out(JSON.stringify(s))
      out(`watching: ${s.ips.join(', ') || '(no public address found; set one with moat rbl watch IP)'} on ${s.zones} lists`)
      out(`last check: ${s.last_check ? `${isoTime(s.last_check.at as number)}, ${s.last_check.listed} listed, ${s.last_check.errors} lists unreachable` : 'never'}`)
      out('')
      printTable(out, s.history.map((r) => ({ ...r, listed_at: isoTime(r.listed_at as number), delisted_at: isoTime(r.delisted_at as number) || 'LISTED' })), ['ip', 'zone', 'codes', 'listed_at', 'delisted_at'])
    },
  },
  {
    path: ['rbl', 'check'],
    usage: '[--json]',
    summary: 'Check the outbound addresses against every watched list now (the job runs every 30 minutes).',
    options: { json },
    async run({ opts, out }) {
      const a = appliance()
      const r = await new RblWatch(a.db, a.settings.dnsServer).run()
      if (opts.json) return out(JSON.stringify(r))
      out(`${r.ips.length} addresses x ${r.zones} lists: ${r.listed.length} listed (${r.listed.filter((l) => l.isNew).length} new), ${r.delisted.length} delisted, ${r.errors} unreachable`)
      for (const l of r.listed) out(`  ${l.ip} listed on ${l.zone} (${l.codes.join(',')})${l.isNew ? ' NEW' : ''}`)
      if (r.held) out(`held sender ${r.held.address}`)
    },
  },
  {
    path: ['rbl', 'watch'],
    usage: 'IP... | --auto',
    summary: "Set the outbound addresses to watch (--auto: this machine's public addresses).",
    options: { auto: { type: 'boolean', description: "watch this machine's public addresses" } },
    run({ args, opts, out }) {
      const a = appliance()
      if (!opts.auto && !args.length) throw new UsageError('name the addresses, or --auto')
      const w = new RblWatch(a.db, a.settings.dnsServer)
      w.setIps(opts.auto ? null : args)
      out(`watching ${w.ips().join(', ') || 'nothing'}`)
    },
  },
  {
    path: ['rbl', 'zones'],
    usage: '[--file FILE | --shipped] [--json]',
    summary: 'Show the watched blocklists, or replace them with the zones in FILE (--shipped: back to the shipped list).',
    options: { file: { type: 'string', description: 'one zone per line' }, shipped: { type: 'boolean', description: 'use the shipped list' }, json },
    run({ opts, out }) {
      const a = appliance()
      const w = new RblWatch(a.db, a.settings.dnsServer)
      if (opts.file) w.setZones(readZoneFile(String(opts.file)))
      else if (opts.shipped) w.setZones(null)
      const zones = w.zones()
      if (opts.json) return out(JSON.stringify(zones))
      for (const z of zones) out(z)
    },
  },
  {
    path: ['delivery', 'retention'],
    usage: '[DAYS]',
    summary: 'Show or set how many days raw delivery attempts are kept (default 14; the hourly roll-up is kept 400 days).',
    run({ args, out }) {
      const settings = new StoredSettings(appliance().db)
      if (args[0] !== undefined) setRetentionDays(appliance().db, 'delivery-attempts', args[0])
      out(`raw delivery attempts are kept ${settings.get(DELIVERY_ATTEMPT_DAYS_SETTING, DELIVERY_ATTEMPT_DAYS)} days`)
    },
  },
  {
    path: ['alerts', 'list'],
    usage: '[--all] [--json]',
    summary: 'Alerts for admins (held senders, the appliance on a blocklist); --all includes acknowledged ones.',
    options: { all: { type: 'boolean', description: 'include acknowledged alerts' }, json },
    run({ opts, out }) {
      const rows = new Alerts(appliance().db).list(null, { all: !!opts.all })
      if (opts.json) return out(JSON.stringify(rows))
      printTable(out, rows.map((a) => ({ ...a, org: a.org ?? 'appliance', created_at: isoTime(a.created_at), acknowledged_at: isoTime(a.acknowledged_at) })), ['id', 'created_at', 'org', 'kind', 'message', 'acknowledged_at'])
    },
  },
  {
    path: ['alerts', 'ack'],
    usage: 'ID',
    summary: 'Acknowledge an alert (it leaves the web banner).',
    run({ args, out }) {
      need(args, 1, 'alert id')
      if (!new Alerts(appliance().db).acknowledge(Number(args[0]), null)) throw new TenantError(`no open alert ${args[0]}`)
      out(`alert ${args[0]} acknowledged`)
    },
  },
]
