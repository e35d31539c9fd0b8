/* Quarantine and LiveArchive commands. */
import { type Command, printTable, UsageError, isoTime } from '../command'
import { appliance } from '../context'

const json = { type: 'boolean', description: 'print JSON' } as const

function idArg(args: string[]): number {
  const id = Number(args[0])
  if (!Number.isInteger(id) || id <= 0) throw new UsageError('wants a numeric ID')
  return id
}

function orgId(name: unknown): number | undefined {
  return name ? appliance().tenants.requireOrg(String(name)).id : undefined
}

export const mailCommands: Command[] = [
  {
    path: ['quarantine', 'list'],
    usage: '[--org ORG] [--rcpt EMAIL] [--verdict spam|surespam] [--all] [--limit N] [--json]',
    summary: 'List quarantined messages, newest first (released ones only with --all).',
    options: {
      org: { type: 'string', description: 'only this organisation' },
      rcpt: { type: 'string', description: 'only this recipient' },
      verdict: { type: 'string', description: 'spam or surespam' },
      all: { type: 'boolean', description: 'include released entries' },
      limit: { type: 'string', description: 'at most N entries (default 100)' },
      json,
    },
    run({ opts, out }) {
      const verdict = opts.verdict as 'spam' | 'surespam' | undefined
      if (verdict && verdict !== 'spam' && verdict !== 'surespam') throw new UsageError('--verdict is spam or surespam')
      const rows = appliance().quarantine.list({
        orgId: orgId(opts.org), rcpt: opts.rcpt as string | undefined, verdict, includeReleased: !!opts.all, limit: Number(opts.limit ?? 100),
      })
      if (opts.json) return out(JSON.stringify(rows.map(({ raw_id, ...r }) => ({ ...r, symbols: JSON.parse(r.symbols) }))))
      printTable(out, rows.map((r) => ({ ...r, created: isoTime(r.created_at), released: isoTime(r.released_at) })), [
        'id', 'created', 'org', 'rcpt', 'verdict', 'reason', 'score', 'mail_from', 'subject', 'released',
      ])
    },
  },
  {
    path: ['quarantine', 'show'],
    usage: 'ID [--json]',
    summary: 'Show a quarantined message: envelope, verdict and the symbols that explain it.',
    options: { json },
    run({ args, opts, out }) {
      const e = appliance().quarantine.get(idArg(args))
      const symbols = JSON.parse(e.symbols) as { name: string; weight: number; detail?: string }[]
      if (opts.json) {
        const { raw_id, ...rest } = e
        return out(JSON.stringify({ ...rest, symbols }))
      }
      out(`id:        ${e.id}`)
      out(`org:       ${e.org}`)
      out(`received:  ${isoTime(e.created_at)}`)
      out(`rcpt:      ${e.rcpt}`)
      out(`mail from: ${e.mail_from || '<>'}`)
      out(`from:      ${e.from_header ?? ''}`)
      out(`subject:   ${e.subject ?? ''}`)
      out(`verdict:   ${e.verdict} (score ${e.score})${e.reason !== 'score' ? `, reason ${e.reason}` : ''}`)
      out(`released:  ${isoTime(e.released_at) || 'no'}`)
      out(`archive:   message ${e.message_id} (moat archive export ${e.message_id})`)
      out('symbols:')
      for (const s of symbols) out(`  ${String(s.weight).padStart(6)}  ${s.name}${s.detail ? `  ${s.detail}` : ''}`)
    },
  },
  {
    path: ['quarantine', 'release'],
    usage: 'ID',
    summary: "Deliver a quarantined message to the recipient's server, marked released.",
    run({ args, out }) {
      const id = idArg(args)
      appliance().quarantine.release(id)
      out(`quarantine entry ${id} released; the running appliance delivers it within seconds`)
    },
  },
  {
    path: ['quarantine', 'delete'],
    usage: 'ID',
    summary: 'Delete a quarantine entry (the message stays in the archive until its retention ends).',
    run({ args, out }) {
      const id = idArg(args)
      appliance().quarantine.remove(id)
      out(`quarantine entry ${id} deleted`)
    },
  },
  {
    path: ['archive', 'search'],
    usage: 'QUERY [--org ORG] [--limit N] [--json]',
    summary:
      'Search the LiveArchive. QUERY has words, "phrases", from:, to:, subject:, date:YYYY-MM-DD, after:, before:; a word ending in * matches as a prefix.',
    options: {
      org: { type: 'string', description: 'only this organisation' },
      limit: { type: 'string', description: 'at most N results (default 50)' },
      json,
    },
    run({ args, opts, out }) {
      const hits = appliance().archive.search(args.join(' '), { orgId: orgId(opts.org), limit: Number(opts.limit ?? 50) })
      if (opts.json) return out(JSON.stringify(hits))
      printTable(out, hits.map((h) => ({ ...h, received: isoTime(h.received_at) })), [
        'id', 'received', 'org', 'direction', 'verdict', 'mail_from', 'rcpt_to', 'subject',
      ])
    },
  },
  {
    path: ['archive', 'export'],
    usage: 'ID',
    summary: 'Write the archived message to standard output, byte for byte as it was received.',
    run({ args }) {
      process.stdout.write(appliance().archive.export(idArg(args)))
    },
  },
]
