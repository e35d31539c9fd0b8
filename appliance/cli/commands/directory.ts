/* Users from LDAP / Active Directory: the source of each organisation, a sync now, its last outcome. */
import fs from 'node:fs'
import { AD_FILTER, directorySourceSchema, DirectorySync, type SyncResult } from '../../directory/sync'
import { type Command, isoTime, need, UsageError } from '../command'
import { appliance } from '../context'

const json = { type: 'boolean' as const, description: 'print JSON' }

function summary(r: SyncResult): string[] {
  const lines = [`${r.found} found in the directory (${r.disabled} disabled): ${r.added.length} users added, ${r.removed.length} removed, ${r.aliasesAdded.length} aliases added, ${r.aliasesRemoved.length} removed`]
  for (const s of r.skipped) lines.push(`  skipped ${s.address}: ${s.why}`)
  return lines
}

export const directoryCommands: Command[] = [
  {
    path: ['directory', 'set'],
    usage: 'ORG --url ldap[s]://HOST[:PORT] --bind-dn DN --password-file FILE --base DN [--filter FILTER] [--every MINUTES]',
    summary: `Take an organisation's users from LDAP or Active Directory, synced every MINUTES (default 60). The default filter is Active Directory's mail users: ${AD_FILTER}.`,
    options: {
      url: { type: 'string', description: 'the directory server' },
      'bind-dn': { type: 'string', description: 'the account to read with' },
      'password-file': { type: 'string', description: "file holding that account's password (- for standard input)" },
      base: { type: 'string', description: 'where the users are' },
      filter: { type: 'string', description: 'which entries are users' },
      every: { type: 'string', description: 'minutes between syncs (5 to 10080)' },
    },
    run({ args, opts, out }) {
      need(args, 1, 'organisation')
      const { db, tenants } = appliance()
      const org = tenants.requireOrg(args[0])
      if (typeof opts['password-file'] !== 'string') throw new UsageError('--password-file is required')
      const file = opts['password-file']
      const bindPassword = fs.readFileSync(file === '-' ? 0 : file, 'utf8').split(/\r?\n/)[0]
      const checked = directorySourceSchema.safeParse({
        url: opts.url, bindDn: opts['bind-dn'], bindPassword, baseDn: opts.base, filter: opts.filter ?? AD_FILTER, everyMinutes: Number(opts.every ?? 60),
      })
      if (!checked.success) throw new UsageError(checked.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '))
      new DirectorySync(db).setSource(org.id, checked.data)
      out(`${org.name} takes its users from ${checked.data.url} (${checked.data.baseDn}) every ${checked.data.everyMinutes} minutes; try it with moat directory sync ${org.name} --dry-run`)
    },
  },
  {
    path: ['directory', 'sync'],
    usage: 'ORG [--dry-run] [--json]',
    summary: "Sync an organisation's users from its directory now (--dry-run: only say what would change).",
    options: { 'dry-run': { type: 'boolean', description: 'change nothing' }, json },
    async run({ args, opts, out }) {
      need(args, 1, 'organisation')
      const { db, tenants } = appliance()
      const r = await new DirectorySync(db).sync(tenants.requireOrg(args[0]).id, { apply: !opts['dry-run'] })
      if (opts.json) return out(JSON.stringify(r))
      for (const line of summary(r)) out(line)
      if (opts['dry-run']) out('(dry run: nothing was changed)')
    },
  },
  {
    path: ['directory', 'show'],
    usage: 'ORG [--json]',
    summary: "An organisation's directory source (without its password) and the last sync's outcome.",
    options: { json },
    run({ args, opts, out }) {
      need(args, 1, 'organisation')
      const { db, tenants } = appliance()
      const s = new DirectorySync(db).source(tenants.requireOrg(args[0]).id)
      if (!s) return out('no directory: users come from the CLI, CSV and the web UI')
      const { bindPassword: _, ...shown } = s
      if (opts.json) return out(JSON.stringify(shown))
      out(`${s.url} as ${s.bindDn}, under ${s.baseDn}, filter ${s.filter}, every ${s.everyMinutes} minutes`)
      out(`last good sync: ${s.lastOkAt ? isoTime(s.lastOkAt) : 'never'}${s.lastError ? `; last attempt ${isoTime(s.lastAttemptAt)} FAILED: ${s.lastError}` : ''}`)
      if (s.lastResult) for (const line of summary(s.lastResult)) out(line)
    },
  },
  {
    path: ['directory', 'remove'],
    usage: 'ORG',
    summary: 'Stop syncing an organisation from its directory; its users stay as they are.',
    run({ args, out }) {
      need(args, 1, 'organisation')
      const { db, tenants } = appliance()
      const org = tenants.requireOrg(args[0])
      if (!new DirectorySync(db).removeSource(org.id)) throw new UsageError(`${org.name} has no directory`)
      out(`${org.name} no longer syncs from a directory`)
    },
  },
]
