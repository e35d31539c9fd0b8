/*
 * The CLI's command model: every command is a path of words, a usage line, its options (the
 * same table drives parsing and --help) and a handler. Listing commands take --json.
 */
import { parseArgs } from 'node:util'

export interface OptionSpec {
  type: 'string' | 'boolean'
  short?: string
  multiple?: boolean
  description: string
}

export interface CommandContext {
  args: string[]
  opts: Record<string, string | boolean | string[] | undefined>
  out: (line: string) => void
  err: (line: string) => void
}

export interface Command {
  path: string[]
  usage: string
  summary: string
  options?: Record<string, OptionSpec>
  run(ctx: CommandContext): Promise<number | void> | number | void
}

export class UsageError extends Error {}

/** Refuses a command given fewer than n positional arguments. */
export function need(args: string[], n: number, what: string): void {
  if (args.length < n) throw new UsageError(`missing ${what}`)
}

export function helpText(cmd: Command): string {
  const lines = [`usage: moat ${cmd.path.join(' ')} ${cmd.usage}`.trimEnd(), '', cmd.summary]
  const opts = Object.entries(cmd.options ?? {})
  if (opts.length) {
    lines.push('', 'options:')
    for (const [name, o] of opts) {
      const flag = `--${name}${o.type === 'string' ? ' VALUE' : ''}${o.short ? `, -${o.short}` : ''}`
      lines.push(`  ${flag.padEnd(24)} ${o.description}`)
    }
  }
  lines.push(`  ${'--help'.padEnd(24)} show this help`)
  return lines.join('\n')
}

export function parseCommandArgs(cmd: Command, argv: string[]): { args: string[]; opts: CommandContext['opts'] } {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }> = {
    help: { type: 'boolean' },
  }
  for (const [name, o] of Object.entries(cmd.options ?? {})) {
    options[name] = { type: o.type, ...(o.short ? { short: o.short } : {}), ...(o.multiple ? { multiple: true } : {}) }
  }
  try {
    const { values, positionals } = parseArgs({ args: argv, options, allowPositionals: true, strict: true })
    return { args: positionals, opts: values as CommandContext['opts'] }
  } catch (err) {
    throw new UsageError((err as Error).message)
  }
}

export function printTable(out: (l: string) => void, rows: Record<string, unknown>[], columns: string[]): void {
  if (!rows.length) {
    out('(none)')
    return
  }
  const cell = (v: unknown) => (v === null || v === undefined ? '' : String(v)).replace(/[\r\n\t]+/g, ' ')
  const widths = columns.map((c) => Math.min(60, Math.max(c.length, ...rows.map((r) => cell(r[c]).length))))
  out(columns.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd())
  for (const r of rows) out(columns.map((c, i) => cell(r[c]).slice(0, widths[i]).padEnd(widths[i])).join('  ').trimEnd())
}

export function isoTime(ms: number | null): string {
  return ms ? new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z') : ''
}
