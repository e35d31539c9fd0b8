/* Outbreak rules: moat rule add/list/remove/enable/disable/export/import. */
import fs from 'node:fs'
import { type Command, printTable, UsageError, isoTime } from '../command'
import { appliance } from '../context'
import { RULE_ACTIONS, type RuleAction, Rules } from '../../services/rules'

const rules = () => new Rules(appliance().db)

export const ruleCommands: Command[] = [
  {
    path: ['rule', 'add'],
    usage: "NAME --what JSON --action score|spam|surespam|reject|tag|strip [--score N] [--org ORG] [--direction in|out|both] [--description TEXT]",
    summary:
      'Add an outbreak rule. --what is a condition in JSON: {"all":[…]}, {"any":[…]}, {"not":…}, {"subject":RE}, {"body":RE}, {"fromName":RE}, {"fromAddress":RE}, {"fromDomain":RE}, {"header":NAME,"matches":RE}, {"url":RE}, {"attachment":RE}, {"sender":RE} (envelope), {"recipient":RE} (any envelope recipient), {"symbol":NAME}, {"authenticatedAs":DOMAIN}, {"extract":RE,"notMatching":RE}. strip removes the attachments its {"attachment":RE} conditions match.',
    options: {
      what: { type: 'string', description: 'the condition, JSON' },
      action: { type: 'string', description: RULE_ACTIONS.join(' | ') },
      score: { type: 'string', description: 'points for action=score' },
      org: { type: 'string', description: 'only this organisation (default: all)' },
      direction: { type: 'string', description: 'in (default), out or both' },
      description: { type: 'string', description: 'why the rule exists (shown with its symbol)' },
    },
    run({ args, opts, out }) {
      if (!args[0]) throw new UsageError('name the rule')
      if (!opts.what || !opts.action) throw new UsageError('--what and --action are required')
      let what: unknown
      try {
        what = JSON.parse(String(opts.what))
      } catch (err) {
        throw new UsageError(`--what is not JSON: ${(err as Error).message}`)
      }
      const r = rules().add({
        name: args[0], what, action: String(opts.action) as RuleAction, score: opts.score === undefined ? 0 : Number(opts.score),
        org: (opts.org as string) ?? null, direction: (opts.direction as 'in') ?? 'in', description: (opts.description as string) ?? '',
      })
      out(`rule ${r.name} added (${r.action}${r.action === 'score' ? ` ${r.score}` : ''})`)
    },
  },
  {
    path: ['rule', 'list'],
    usage: '[--json]',
    summary: 'List outbreak rules with their match counts.',
    options: { json: { type: 'boolean', description: 'print JSON' } },
    run({ opts, out }) {
      const list = rules().list()
      if (opts.json) return out(JSON.stringify(list))
      printTable(out, list.map((r) => ({ ...r, scope: r.org ?? 'all', on: r.enabled ? 'yes' : 'no', last_match: isoTime(r.last_match_at) })), [
        'name', 'scope', 'direction', 'action', 'score', 'on', 'matches', 'last_match',
      ])
    },
  },
  { path: ['rule', 'remove'], usage: 'NAME', summary: 'Delete a rule.', run: ({ args, out }) => (rules().remove(args[0] ?? ''), out(`rule ${args[0]} removed`)) },
  { path: ['rule', 'enable'], usage: 'NAME', summary: 'Turn a rule on.', run: ({ args, out }) => (rules().setEnabled(args[0] ?? '', true), out(`rule ${args[0]} on`)) },
  { path: ['rule', 'disable'], usage: 'NAME', summary: 'Turn a rule off (kept, with its counts).', run: ({ args, out }) => (rules().setEnabled(args[0] ?? '', false), out(`rule ${args[0]} off`)) },
  {
    path: ['rule', 'export'],
    usage: '',
    summary: 'Print every rule as a JSON list (for moat rule import elsewhere).',
    run: ({ out }) => out(JSON.stringify(rules().export(), null, 2)),
  },
  {
    path: ['rule', 'import'],
    usage: 'FILE.json',
    summary: 'Add or replace the rules of a JSON list made by moat rule export; all or none.',
    run({ args, out }) {
      if (!args[0]) throw new UsageError('name a JSON file')
      out(`${rules().import(JSON.parse(fs.readFileSync(args[0], 'utf8')))} rules imported`)
    },
  },
]
