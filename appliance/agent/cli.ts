/*
 * `moat-agent`: the stand-alone agent for customers' Linux and Windows servers, the appliance
 * CLI's agent verbs without the rest (`moat-agent enroll URL --token T`, `status`, `run`).
 * Its state folder is MOAT_AGENT_DIR (the package sets it: /var/lib/moat-agent). It loads the
 * dispatcher and the agent only, none of the appliance's mail code (a small process on a
 * customer's server).
 */
import { dispatch } from '../cli/dispatch'
import { FleetError } from '../fleet/errors'
import { AgentError } from './agent'
import { agentCommands } from './commands'

export function standaloneMain(argv: string[]): Promise<number> {
  const kind = process.platform === 'win32' ? 'windows' : 'linux'
  const commands = agentCommands(kind).map((c) => ({ ...c, path: c.path.slice(1) }))
  return dispatch(argv, commands, 'moat-agent', (e) => e instanceof AgentError || e instanceof FleetError)
}
