/*
 * `moat-agent`: the stand-alone agent for customers' Linux and Windows servers, the appliance
 * CLI's agent verbs without the rest (`moat-agent enroll URL --token T`, `status`, `run`).
 * Its state folder is MOAT_AGENT_DIR (the package sets it: /var/lib/moat-agent).
 */
import { agentCommands } from '../cli/commands/fleet'
import { main } from '../cli/main'

export function standaloneMain(argv: string[]): Promise<number> {
  const kind = process.platform === 'win32' ? 'windows' : 'linux'
  return main(argv, agentCommands(kind).map((c) => ({ ...c, path: c.path.slice(1) })), 'moat-agent')
}
