/* Allow and block lists of senders, per organisation or per user. */
import { SenderLists } from '../../services/sender-lists'
import { TenantError } from '../../services/tenants'
import { type Command, isoTime, printTable, UsageError } from '../command'
import { appliance } from '../context'

export const listCommands: Command[] = [
  {
    path: ['list', 'add'],
    usage: 'allow|block ADDRESS|@DOMAIN (--org ORG | --user EMAIL)',
    summary: "Allow or block a sender (an address, or a domain with its subdomains) for an organisation, or for one user only.",
    options: {
      org: { type: 'string', description: "the organisation's list" },
      user: { type: 'string', description: "this user's own list" },
    },
    run({ args, opts, out }) {
      if (args.length < 2) throw new UsageError('missing allow|block and the sender')
      const a = appliance()
      let orgId: number
      let userId: number | null = null
      if (opts.user) {
        const u = a.tenants.userByEmail(String(opts.user).toLowerCase())
        if (!u) throw new TenantError(`no user "${opts.user}"`)
        orgId = u.org_id
        userId = u.id
      } else if (opts.org) orgId = a.tenants.requireOrg(String(opts.org)).id
      else throw new UsageError('--org or --user is required')
      const e = new SenderLists(a.db).add(orgId, userId, args[0] as 'allow' | 'block', args[1])
      out(`${e.kind} ${e.pattern} for ${e.user ?? e.org} (entry ${e.id})`)
    },
  },
  {
    path: ['list', 'list'],
    usage: '[--org ORG] [--json]',
    summary: 'Show allow and block list entries.',
    options: { org: { type: 'string', description: 'one organisation only' }, json: { type: 'boolean', description: 'print JSON' } },
    run({ opts, out }) {
      const rows = new SenderLists(appliance().db).list().filter((e) => !opts.org || e.org === String(opts.org).toLowerCase())
      if (opts.json) return out(JSON.stringify(rows))
      printTable(out, rows.map((e) => ({ ...e, for: e.user ?? `(all of ${e.org})`, created_at: isoTime(e.created_at) })), ['id', 'kind', 'pattern', 'for', 'created_at'])
    },
  },
  {
    path: ['list', 'remove'],
    usage: 'ID',
    summary: 'Remove an allow or block list entry.',
    run({ args, out }) {
      if (!args[0]) throw new UsageError('missing the entry id')
      new SenderLists(appliance().db).remove(Number(args[0]))
      out(`entry ${args[0]} removed`)
    },
  },
]
