/*
 * The command line's dispatcher, shared by `moat` and the stand-alone `moat-agent`: finds the
 * longest command path that matches the words given, parses the rest with that command's
 * option table, and turns the errors an operator can fix into one clear line and exit code
 * 2 (usage) or 1 (refused). It imports no command, so the agent loads only its own.
 */
import { type Command, helpText, parseCommandArgs, UsageError } from './command'

function overview(commands: Command[], prog: string): string {
  const lines = [`usage: ${prog} COMMAND [ARGS] [--help]`, '', 'commands:']
  for (const c of commands) lines.push(`  ${c.path.join(' ').padEnd(20)} ${c.summary.split('. ')[0].replace(/\.$/, '')}`)
  return lines.join('\n')
}

function find(commands: Command[], argv: string[]): { cmd: Command; rest: string[] } | null {
  let best: Command | null = null
  for (const c of commands) {
    if (c.path.every((w, i) => argv[i] === w) && (!best || c.path.length > best.path.length)) best = c
  }
  return best ? { cmd: best, rest: argv.slice(best.path.length) } : null
}

/**
 * Runs one command of `commands`. `refused(e)`: an error the operator can act on (one line,
 * exit 1) rather than a bug (a stack trace).
 */
export async function dispatch(argv: string[], commands: Command[], prog: string, refused: (e: unknown) => boolean): Promise<number> {
  const out = (l: string) => process.stdout.write(`${l}\n`)
  const err = (l: string) => process.stderr.write(`${l}\n`)
  if (!argv.length || argv[0] === '--help' || argv[0] === 'help' || argv[0] === '-h') {
    out(overview(commands, prog))
    return argv.length ? 0 : 2
  }
  const found = find(commands, argv)
  if (!found) {
    const group = commands.filter((c) => c.path[0] === argv[0])
    if (group.length) {
      const lines = [`${prog} ${argv[0]}: choose one of:`, ...group.map((c) => `  ${prog} ${c.path.join(' ')} ${c.usage}`.trimEnd())]
      ;(argv.includes('--help') ? out : err)(lines.join('\n'))
      return argv.includes('--help') ? 0 : 2
    }
    err(`${prog}: unknown command "${argv[0]}"; see ${prog} --help`)
    return 2
  }
  const { cmd, rest } = found
  try {
    const { args, opts } = parseCommandArgs(cmd, rest)
    if (opts.help) {
      out(helpText(cmd).replace(/^usage: moat /, `usage: ${prog} `))
      return 0
    }
    const code = await cmd.run({ args, opts, out, err })
    return typeof code === 'number' ? code : 0
  } catch (e) {
    if (e instanceof UsageError) {
      err(`${prog} ${cmd.path.join(' ')}: ${e.message}`)
      err(`usage: ${prog} ${cmd.path.join(' ')} ${cmd.usage}`)
      return 2
    }
    if (refused(e)) {
      err(`${prog} ${cmd.path.join(' ')}: ${(e as Error).message}`)
      return 1
    }
    const code = (e as NodeJS.ErrnoException).code
    if (code === 'ENOENT' || code === 'EACCES') {
      err(`${prog} ${cmd.path.join(' ')}: ${(e as Error).message}`)
      return 1
    }
    throw e
  }
}
