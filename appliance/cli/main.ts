/*
 * `moat`: the appliance's command line. Finds the longest command path that matches the
 * words given, parses the rest with that command's option table, and turns the errors an
 * operator can fix into one clear line and exit code 2 (usage) or 1 (refused).
 */
import { type Command, helpText, parseCommandArgs, UsageError } from './command'
import { engineCommands } from './commands/engine'
import { ruleCommands } from './commands/rules'
import { mailCommands } from './commands/mail'
import { serviceCommands } from './commands/service'
import { tenantCommands } from './commands/tenants'
import { outboundCommands } from './commands/outbound'
import { accountCommands } from './commands/accounts'
import { listCommands } from './commands/lists'
import { systemCommands } from './commands/system'
import { fleetCommands } from './commands/fleet'
import { FleetError } from '../fleet/console'
import { AgentError } from '../agent/agent'
import { TenantError } from '../services/tenants'
import { QuarantineError } from '../services/quarantine'
import { ArchiveQueryError } from '../services/archive'
import { RuleError } from '../services/rules'
import { BackupError } from '../services/backup'
import { ReleaseError } from '../services/release-package'
import { HostSettingsError } from '../services/host-settings'

export const COMMANDS: Command[] = [...serviceCommands, ...tenantCommands, ...accountCommands, ...listCommands, ...outboundCommands, ...mailCommands, ...ruleCommands, ...engineCommands, ...systemCommands, ...fleetCommands]

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

/** Runs one command of `commands` (the appliance's by default; the stand-alone agent has its own). */
export async function main(argv: string[], commands: Command[] = COMMANDS, prog = 'moat'): Promise<number> {
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
    if (e instanceof TenantError || e instanceof QuarantineError || e instanceof ArchiveQueryError || e instanceof RuleError || e instanceof BackupError || e instanceof ReleaseError || e instanceof HostSettingsError || e instanceof FleetError || e instanceof AgentError) {
      err(`${prog} ${cmd.path.join(' ')}: ${e.message}`)
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

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code
    },
    (e) => {
      process.stderr.write(`moat: ${(e as Error).stack || e}\n`)
      process.exitCode = 1
    },
  )
}
