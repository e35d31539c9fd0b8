/* The tracking centre on the command line: "where is my mail?" */
import { parseTime, Tracking, trackingDays, type Transaction } from '../../tracking/search'
import { setRetentionDays } from '../../jobs/retention'
import { type Command, isoTime, UsageError } from '../command'
import { appliance } from '../context'

function lines(t: Transaction): string[] {
  const who = `${t.mailFrom || '<>'} from ${t.clientIp ?? '?'}${t.helo ? ` (${t.helo})` : ''}`
  if (t.refusal) {
    return [`${isoTime(t.at)}  REFUSED ${t.refusal.code} at ${t.refusal.stage} by ${t.refusal.by}: ${t.refusal.reason}  ${who}${t.recipients.length ? ` to ${t.recipients[0].address}` : ''}  [${t.id}]`]
  }
  const out = [`${isoTime(t.at)}  accepted ${t.id} (${t.direction}, ${t.org}) ${t.verdict} ${t.score?.toFixed(1)}  ${who}${t.subject ? `  "${t.subject}"` : ''}`]
  for (const r of t.recipients) {
    out.push(`    ${r.address}: ${r.state}${r.detail ? ` — ${r.detail}` : ''}`)
    for (const a of r.attempts) out.push(`      ${isoTime(a.at)} ${a.outcome}${a.mxHost ? ` via ${a.mxHost}` : ''}${a.response ? `: ${a.response}` : ''}`)
  }
  return out
}

export const trackingCommands: Command[] = [
  {
    path: ['track'],
    usage: '[--from A] [--to A] [--ip IP] [--since TIME] [--until TIME] [--queue-id ID] [--message-id ID] [--limit N] [--json]',
    summary:
      'Where is my mail? Every SMTP transaction, newest first: refused (when, at which stage, by which check, why) or accepted (queue id, verdict, and for each recipient the quarantine or every delivery attempt and the final state). TIME: 2026-12-01, 2026-12-01T10:00, or 2h / 3d ago (default: the last 7 days).',
    options: {
      from: { type: 'string', description: 'sender (envelope or From:) contains' },
      to: { type: 'string', description: 'a recipient contains' },
      ip: { type: 'string', description: "the client's address" },
      since: { type: 'string', description: 'from this time' },
      until: { type: 'string', description: 'up to this time' },
      'queue-id': { type: 'string', description: 'the queue id (or the session id of a refusal)' },
      'message-id': { type: 'string', description: 'the Message-ID header' },
      limit: { type: 'string', description: 'at most this many (default 100, at most 1000)' },
      json: { type: 'boolean', description: 'one JSON object a transaction, a line each' },
    },
    run({ opts, out }) {
      const str = (k: string) => (typeof opts[k] === 'string' ? (opts[k] as string) : undefined)
      let since: number | undefined
      let until: number | undefined
      try {
        since = str('since') ? parseTime(str('since')!) : undefined
        until = str('until') ? parseTime(str('until')!) : undefined
      } catch (err) {
        throw new UsageError((err as Error).message)
      }
      const found = new Tracking(appliance().db).search(
        { from: str('from'), to: str('to'), ip: str('ip'), since, until, queueId: str('queue-id'), messageId: str('message-id'), limit: str('limit') ? Number(str('limit')) : undefined },
        null,
      )
      if (opts.json) return found.forEach((t) => out(JSON.stringify(t)))
      if (!found.length) return out('nothing found')
      for (const t of found) for (const l of lines(t)) out(l)
    },
  },
  {
    path: ['track', 'days'],
    usage: '[DAYS]',
    summary: 'Show or set how many days refusals are kept for the tracking centre (default 30; 0 records none). Accepted mail stays as long as the archive keeps it.',
    run({ args, out }) {
      if (args[0] !== undefined) setRetentionDays(appliance().db, 'refusals', args[0])
      const days = trackingDays(appliance().db)
      out(days ? `refusals are kept ${days} days` : 'refusals are not recorded')
    },
  },
]
