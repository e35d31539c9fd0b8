/* Provisioning commands: organisations, domains, users, aliases. */
import fs from 'node:fs'
import { parseUserCsv } from '../../services/user-csv'
import { type Command, need, printTable, UsageError, isoTime } from '../command'
import { appliance } from '../context'
import { removeOrganisation } from '../../tenancy/removal'
import type { Domain, OrgPolicy, Tenants } from '../../services/tenants'

const json = { type: 'boolean', description: 'print JSON' } as const

function onOff(value: string | undefined, what: string): boolean {
  if (value === 'on') return true
  if (value === 'off') return false
  throw new UsageError(`${what} wants "on" or "off"`)
}

function numberOpt(v: unknown, name: string): number | undefined {
  if (v === undefined) return undefined
  const n = Number(v)
  if (!Number.isFinite(n)) throw new UsageError(`--${name} wants a number`)
  return n
}

const DOMAIN_SWITCHES: { name: string; label: string; column: 'catch_all' | 'verify_recipients' | 'tag_mode'; summary: string; set: (t: Tenants, domain: string, on: boolean) => Domain }[] = [
  {
    name: 'catch-all', label: 'catch-all', column: 'catch_all', set: (t, d, on) => t.setCatchAll(d, on),
    summary: 'Accept mail for every local part of DOMAIN (on) or only for provisioned users and aliases (off).',
  },
  {
    name: 'verify-recipients', label: 'recipient verification', column: 'verify_recipients', set: (t, d, on) => t.setVerifyRecipients(d, on),
    summary: "Ask the domain's own mail server, at RCPT, about recipients Moat has no user or alias for (on): accept what it accepts, refuse what it refuses, 451 while it cannot be asked.",
  },
  {
    name: 'tag-mode', label: 'tag mode', column: 'tag_mode', set: (t, d, on) => t.setTagMode(d, on),
    summary: 'Deliver spam for DOMAIN with X-Moat-* headers (on) or quarantine it (off).',
  },
]

export const tenantCommands: Command[] = [
  {
    path: ['msp', 'add'],
    usage: 'NAME',
    summary: 'Add an MSP to the appliance: its admins (moat admin create --msp NAME) see and manage only its organisations.',
    run({ args, out }) {
      need(args, 1, 'MSP name')
      const m = appliance().tenants.addMsp(args[0])
      out(`MSP ${m.name} created (id ${m.id})`)
    },
  },
  {
    path: ['msp', 'list'],
    usage: '[--json]',
    summary: 'List the MSPs with how many organisations each has and its admins.',
    options: { json },
    run({ opts, out }) {
      const rows = appliance().tenants.listMsps()
      if (opts.json) return out(JSON.stringify(rows))
      printTable(out, rows.map((m) => ({ ...m, created_at: isoTime(m.created_at) })), ['id', 'name', 'organisations', 'admins', 'created_at'])
    },
  },
  {
    path: ['org', 'add'],
    usage: 'NAME [--msp NAME]',
    summary: 'Create an organisation (a customer of an MSP; the first MSP, "local", unless --msp says another).',
    options: { msp: { type: 'string', description: 'the MSP whose customer it is' } },
    run({ args, opts, out }) {
      need(args, 1, 'organisation name')
      const { tenants } = appliance()
      const org = tenants.addOrg(args[0], typeof opts.msp === 'string' ? tenants.msp(opts.msp).id : undefined)
      out(`organisation ${org.name} created (id ${org.id})`)
    },
  },
  {
    path: ['org', 'move'],
    usage: 'ORG --msp NAME',
    summary: "Hand an organisation to another MSP: that MSP's admins manage it from now on.",
    options: { msp: { type: 'string', description: 'the MSP that takes it' } },
    run({ args, opts, out }) {
      need(args, 1, 'organisation name')
      if (typeof opts.msp !== 'string') throw new UsageError('--msp is required')
      const org = appliance().tenants.moveOrg(args[0], opts.msp)
      out(`organisation ${org.name} now belongs to MSP ${opts.msp.toLowerCase()}`)
    },
  },
  {
    path: ['org', 'list'],
    usage: '[--json]',
    summary: 'List organisations with their policy.',
    options: { json },
    run({ opts, out }) {
      const rows = appliance().tenants.listOrgs()
      if (opts.json) return out(JSON.stringify(rows))
      printTable(out, rows.map((o) => ({ ...o, created_at: isoTime(o.created_at) })), [
        'id', 'name', 'spam_threshold', 'surespam_threshold', 'max_message_bytes', 'archive_retention_days', 'quarantine_retention_days',
      ])
    },
  },
  {
    path: ['org', 'suspend'],
    usage: 'NAME on|off',
    summary: 'Suspend an organisation (its mail refused at RCPT, no relaying, no sign-in) or resume it.',
    run({ args, out }) {
      need(args, 2, 'organisation name and on|off')
      const org = appliance().tenants.setSuspended(args[0], onOff(args[1], 'suspend'))
      out(`organisation ${org.name} ${org.suspended_at ? 'suspended' : 'resumed'}`)
    },
  },
  {
    path: ['org', 'remove'],
    usage: 'NAME',
    summary: 'Delete an organisation with all its domains, users, quarantine and archive (suspended first; mail not yet delivered is dropped).',
    async run({ args, out }) {
      need(args, 1, 'organisation name')
      const { db, archive } = appliance()
      const dropped = await removeOrganisation(db, archive, args[0])
      out(`organisation ${args[0]} removed with ${dropped} archived messages`)
    },
  },
  {
    path: ['org', 'policy'],
    usage: 'NAME [--spam N] [--surespam N] [--max-size BYTES] [--archive-days N] [--quarantine-days N] [--backscatter ACTION] [--outbound-hourly N] [--outbound-spam N] [--allowlist-skips-rbl-delay on|off] [--learn-outbound on|off] [--share-learning on|off] [--virus reject|quarantine] [--attachments strip|quarantine|reject] [--dmarc honour|score] [--json]',
    summary: "Show or change an organisation's thresholds, size limit, retention, backscatter, virus, attachment and DMARC policy and outbound sender limits.",
    options: {
      spam: { type: 'string', description: 'score at which mail is spam' },
      surespam: { type: 'string', description: 'score at which mail is surespam' },
      'max-size': { type: 'string', description: 'largest message accepted, in bytes' },
      'archive-days': { type: 'string', description: 'LiveArchive retention in days' },
      'quarantine-days': { type: 'string', description: 'quarantine retention in days' },
      backscatter: { type: 'string', description: 'unstamped bounces: quarantine (as surespam), reject, tag or off' },
      'outbound-hourly': { type: 'string', description: 'messages a sender may send per hour before being held' },
      'outbound-spam': { type: 'string', description: 'outbound spam or viruses per hour before the sender is held' },
      'allowlist-skips-rbl-delay': { type: 'string', description: 'on: an allow-listed sender is not delayed for a blocklist listing (default off)' },
      'learn-outbound': { type: 'string', description: "on (the default): the users' outbound mail teaches which campaigns are not spam" },
      'share-learning': { type: 'string', description: "on (the default): fingerprints of what the users reported are shared with the MSP's other customers" },
      virus: { type: 'string', description: 'infected mail: reject (554, the default) or quarantine' },
      attachments: { type: 'string', description: 'dangerous attachments: strip (deliver the rest with a warning), quarantine (the default) or reject' },
      dmarc: { type: 'string', description: "a failing sender's DMARC policy: honour (the default) or score only" },
      json,
    },
    run({ args, opts, out }) {
      need(args, 1, 'organisation name')
      const t = appliance().tenants
      const policy = {
        spam_threshold: numberOpt(opts.spam, 'spam'),
        surespam_threshold: numberOpt(opts.surespam, 'surespam'),
        max_message_bytes: numberOpt(opts['max-size'], 'max-size'),
        archive_retention_days: numberOpt(opts['archive-days'], 'archive-days'),
        quarantine_retention_days: numberOpt(opts['quarantine-days'], 'quarantine-days'),
        backscatter_action: opts.backscatter as OrgPolicy['backscatter_action'],
        outbound_hourly_limit: numberOpt(opts['outbound-hourly'], 'outbound-hourly'),
        outbound_spam_limit: numberOpt(opts['outbound-spam'], 'outbound-spam'),
        virus_action: opts.virus as OrgPolicy['virus_action'],
        attachment_action: opts.attachments as OrgPolicy['attachment_action'],
        dmarc_action: opts.dmarc as OrgPolicy['dmarc_action'],
        allowlist_skips_rbl_delay: opts['allowlist-skips-rbl-delay'] === undefined ? undefined : onOff(String(opts['allowlist-skips-rbl-delay']), 'allowlist-skips-rbl-delay') ? 1 : 0,
        learn_outbound: opts['learn-outbound'] === undefined ? undefined : onOff(String(opts['learn-outbound']), 'learn-outbound') ? 1 : 0,
        share_learning: opts['share-learning'] === undefined ? undefined : onOff(String(opts['share-learning']), 'share-learning') ? 1 : 0,
      }
      const changes = Object.fromEntries(Object.entries(policy).filter(([, v]) => v !== undefined))
      const org = Object.keys(changes).length ? t.setPolicy(args[0], changes) : t.requireOrg(args[0])
      if (opts.json) return out(JSON.stringify(org))
      for (const [k, v] of Object.entries(org)) out(`${k}: ${v ?? ''}`)
    },
  },
  {
    path: ['domain', 'add'],
    usage: 'DOMAIN --org ORG --deliver-to HOST[:PORT] [--tag-mode] [--catch-all]',
    summary: "Accept mail for DOMAIN and deliver clean mail to the customer's server.",
    options: {
      org: { type: 'string', description: 'organisation the domain belongs to' },
      'deliver-to': { type: 'string', description: "customer's mail server, host[:port] (port 25 by default)" },
      'tag-mode': { type: 'boolean', description: 'deliver spam with X-Moat-* headers instead of quarantining' },
      'catch-all': { type: 'boolean', description: 'accept every local part, not only provisioned users' },
    },
    run({ args, opts, out }) {
      need(args, 1, 'domain')
      if (!opts.org) throw new UsageError('--org is required')
      if (!opts['deliver-to']) throw new UsageError('--deliver-to is required')
      const d = appliance().tenants.addDomain(args[0], {
        org: String(opts.org), deliverTo: String(opts['deliver-to']), tagMode: !!opts['tag-mode'], catchAll: !!opts['catch-all'],
      })
      out(`domain ${d.name} added to ${opts.org}, delivering to ${d.deliver_host}:${d.deliver_port}`)
    },
  },
  {
    path: ['domain', 'list'],
    usage: '[--json]',
    summary: 'List domains.',
    options: { json },
    run({ opts, out }) {
      const rows = appliance().tenants.listDomains()
      if (opts.json) return out(JSON.stringify(rows))
      printTable(out, rows.map((d) => ({ ...d, deliver_to: `${d.deliver_host}:${d.deliver_port}`, tag_mode: d.tag_mode ? 'on' : 'off', catch_all: d.catch_all ? 'on' : 'off', verify_recipients: d.verify_recipients ? 'on' : 'off' })), [
        'name', 'org', 'deliver_to', 'tag_mode', 'catch_all', 'verify_recipients',
      ])
    },
  },
  {
    path: ['domain', 'remove'],
    usage: 'DOMAIN',
    summary: 'Stop accepting mail for DOMAIN (its users and aliases go too).',
    run({ args, out }) {
      need(args, 1, 'domain')
      appliance().tenants.removeDomain(args[0])
      out(`domain ${args[0]} removed`)
    },
  },
  // A domain's switches: one command each, made alike.
  ...DOMAIN_SWITCHES.map(
    (w): Command => ({
      path: ['domain', w.name],
      usage: 'DOMAIN on|off',
      summary: w.summary,
      run({ args, out }) {
        need(args, 2, 'domain and on|off')
        const d = w.set(appliance().tenants, args[0], onOff(args[1], w.name))
        out(`${w.label} for ${d.name} is ${d[w.column] ? 'on' : 'off'}`)
      },
    }),
  ),
  {
    path: ['user', 'add'],
    usage: 'EMAIL [--name "Display Name"] [--role user|org_admin]',
    summary: "Provision a mailbox; the organisation follows from the address' domain.",
    options: {
      name: { type: 'string', description: 'display name' },
      role: { type: 'string', description: 'user (default) or org_admin' },
    },
    run({ args, opts, out }) {
      need(args, 1, 'e-mail address')
      const role = (opts.role as string | undefined) ?? 'user'
      if (role !== 'user' && role !== 'org_admin') throw new UsageError('--role is user or org_admin')
      const u = appliance().tenants.addUser(args[0], { displayName: opts.name as string | undefined, role })
      out(`user ${u.email} added`)
    },
  },
  {
    path: ['user', 'list'],
    usage: '[--org ORG] [--json]',
    summary: 'List users.',
    options: { org: { type: 'string', description: 'only this organisation' }, json },
    run({ opts, out }) {
      const rows = appliance().tenants.listUsers(opts.org as string | undefined)
      if (opts.json) return out(JSON.stringify(rows))
      printTable(out, rows as unknown as Record<string, unknown>[], ['email', 'display_name', 'role', 'org'])
    },
  },
  {
    path: ['user', 'remove'],
    usage: 'EMAIL',
    summary: 'Remove a mailbox (mail to it is then rejected, unless the domain is catch-all).',
    run({ args, out }) {
      need(args, 1, 'e-mail address')
      appliance().tenants.removeUser(args[0])
      out(`user ${args[0]} removed`)
    },
  },
  {
    path: ['user', 'import'],
    usage: 'FILE.csv [--json]',
    summary:
      'Bulk-provision users from CSV: a header row with "email" (and optionally "display_name", "role"), or one address per line. Existing users are skipped; rows with errors are reported and the rest imported.',
    options: { json },
    run({ args, opts, out, err }) {
      need(args, 1, 'CSV file')
      const rows = parseUserCsv(fs.readFileSync(args[0], 'utf8'))
      const tty = process.stderr.isTTY && !opts.json
      const started = Date.now()
      const progress = (done: number) => {
        if (!tty) return
        const width = 30
        const filled = Math.round((done / Math.max(1, rows.length)) * width)
        process.stderr.write(`\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${rows.length}`)
      }
      const result = appliance().tenants.importUsers(rows, progress)
      if (tty) process.stderr.write('\n')
      const seconds = (Date.now() - started) / 1000
      if (opts.json) out(JSON.stringify({ ...result, seconds }))
      else out(`${result.created} users created, ${result.skipped} existed already, ${result.errors.length} rows with errors (${seconds.toFixed(2)} s)`)
      if (!opts.json) {
        for (const e of result.errors.slice(0, 50)) err(`line ${e.line}: ${e.message}`)
        if (result.errors.length > 50) err(`... and ${result.errors.length - 50} more`)
      }
      return result.errors.length ? 1 : 0
    },
  },
  {
    path: ['alias', 'add'],
    usage: 'ALIAS TARGET_USER',
    summary: "Accept mail for ALIAS and treat it as the user's (same organisation only).",
    run({ args, out }) {
      need(args, 2, 'alias and target user')
      const a = appliance().tenants.addAlias(args[0], args[1])
      out(`alias ${a.address} -> ${a.target} added`)
    },
  },
  {
    path: ['alias', 'list'],
    usage: '[--json]',
    summary: 'List aliases.',
    options: { json },
    run({ opts, out }) {
      const rows = appliance().tenants.listAliases()
      if (opts.json) return out(JSON.stringify(rows))
      printTable(out, rows as unknown as Record<string, unknown>[], ['address', 'target'])
    },
  },
  {
    path: ['alias', 'remove'],
    usage: 'ALIAS',
    summary: 'Remove an alias.',
    run({ args, out }) {
      need(args, 1, 'alias')
      appliance().tenants.removeAlias(args[0])
      out(`alias ${args[0]} removed`)
    },
  },
]
