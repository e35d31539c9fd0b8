/*
 * `moat`: the appliance's command line (the dispatcher is cli/dispatch.ts), and which errors
 * of its services are an operator's to fix (one line, exit 1) rather than a bug.
 */
import type { Command } from './command'
import { dispatch } from './dispatch'
import { engineCommands } from './commands/engine'
import { learningCommands } from './commands/learning'
import { ruleCommands } from './commands/rules'
import { mailCommands } from './commands/mail'
import { serviceCommands } from './commands/service'
import { backupCommands } from './commands/backups'
import { directoryCommands } from './commands/directory'
import { trackingCommands } from './commands/tracking'
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
import { BackupError } from '../backups/backup'
import { SftpError } from '../backups/sftp'
import { DirectoryError } from '../directory/sync'
import { ReleaseError } from '../services/release-package'
import { RetentionError } from '../jobs/retention'
import { HostSettingsError } from '../services/host-settings'

export const COMMANDS: Command[] = [...serviceCommands, ...backupCommands, ...directoryCommands, ...trackingCommands, ...tenantCommands, ...accountCommands, ...listCommands, ...outboundCommands, ...mailCommands, ...ruleCommands, ...engineCommands, ...learningCommands, ...systemCommands, ...fleetCommands]

/** Runs one of the appliance's commands. */
export function main(argv: string[]): Promise<number> {
  return dispatch(argv, COMMANDS, 'moat', (e) =>
    e instanceof TenantError || e instanceof QuarantineError || e instanceof ArchiveQueryError || e instanceof RuleError || e instanceof BackupError || e instanceof SftpError || e instanceof DirectoryError ||
    e instanceof ReleaseError || e instanceof RetentionError || e instanceof HostSettingsError || e instanceof FleetError || e instanceof AgentError,
  )
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
