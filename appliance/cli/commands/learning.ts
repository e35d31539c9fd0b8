/* Campaign fingerprints (learning/): what is known, and taking a reporter's or a fingerprint's word back. */
import { revokeFingerprints } from '../../learning/fingerprint-store'
import type { FingerprintKind } from '../../learning/fingerprint-index'
import { type Command, UsageError } from '../command'
import { appliance } from '../context'

export const learningCommands: Command[] = [
  {
    path: ['fingerprints'],
    usage: '[--json]',
    summary: 'How many campaign fingerprints moat-fuzzy knows, by kind, word (spam / ham) and origin (this appliance / the fleet), and who taught the most.',
    options: { json: { type: 'boolean', description: 'print JSON' } },
    run({ opts, out }) {
      const { db } = appliance()
      const counts = db
        .prepare(`SELECT kind, label, origin, count(*) AS n FROM fuzzy_hashes WHERE revoked_at IS NULL GROUP BY kind, label, origin ORDER BY kind, label, origin`)
        .all() as { kind: string; label: string; origin: string; n: number }[]
      const reporters = db
        .prepare(`SELECT reporter, label, count(*) AS n FROM fuzzy_hashes WHERE revoked_at IS NULL GROUP BY reporter, label ORDER BY n DESC LIMIT 10`)
        .all() as { reporter: string; label: string; n: number }[]
      if (opts.json) return out(JSON.stringify({ counts, reporters }))
      if (!counts.length) return out('no fingerprints yet: they come from reports, auto-learned surespam, outbound mail and the fleet')
      for (const c of counts) out(`${c.kind.padEnd(10)} ${c.label.padEnd(4)} ${c.origin.padEnd(5)} ${c.n}`)
      out('')
      for (const r of reporters) out(`${r.reporter}: ${r.n} ${r.label}`)
    },
  },
  {
    path: ['fingerprints', 'revoke'],
    usage: '--reporter WHO | --kind text|url|attachment --key KEY',
    summary: "Withdraw every fingerprint a reporter taught (user:EMAIL, admin:EMAIL, auto, outbound:ORG_ID, fleet:…) or one fingerprint; the mail path drops them within seconds.",
    options: {
      reporter: { type: 'string', description: 'whose word to withdraw' },
      kind: { type: 'string', description: 'the kind of one fingerprint' },
      key: { type: 'string', description: 'the key of one fingerprint (from --json listings or the message symbols)' },
    },
    run({ opts, out }) {
      const reporter = opts.reporter === undefined ? undefined : String(opts.reporter)
      const kind = opts.kind === undefined ? undefined : (String(opts.kind) as FingerprintKind)
      if (kind && !['text', 'url', 'attachment'].includes(kind)) throw new UsageError('--kind is text, url or attachment')
      if (!reporter && !(kind && opts.key)) throw new UsageError('name --reporter, or --kind and --key')
      const n = revokeFingerprints(appliance().db, { reporter, kind, key: opts.key === undefined ? undefined : String(opts.key) })
      out(`${n} fingerprint${n === 1 ? '' : 's'} withdrawn`)
    },
  },
]
