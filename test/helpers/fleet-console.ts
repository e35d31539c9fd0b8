/*
 * A real fleet console for the fleet tests: `moat web` over HTTPS with its own certificate on
 * a fixed loopback port (so it can be stopped and started again at the same address), with
 * organisations, and the real `moat-agent` to enroll and run against it.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import path from 'node:path'
import { freePort, moatOk, type RunningWeb, startWeb, workDir } from './appliance'

const AGENT = path.join(__dirname, '../../../bin/moat-agent')

export interface FleetConsole {
  dir: string
  url: string
  web(): RunningWeb
  /** Starts it again, at the same address, on the same data. */
  start(): Promise<void>
  stop(): Promise<void>
  /** Runs `moat-agent ARGS` to its end with the state in agentDir. */
  agent(agentDir: string, args: string[]): { code: number | null; out: string }
  /** Starts `moat-agent run`: metrics and logs every 2 seconds, flushes every 0.5 s, backs off at most 3 s. */
  runAgent(agentDir: string, env?: Record<string, string>): ChildProcess
  /** A new enrollment token for an organisation (printed alone on the last line). */
  token(org: string, extra?: string[]): string
  hosts(): { id: number; name: string; org: string; status: string; version: string; last_seq: number }[]
}

export async function fleetConsole(t: { teardown(fn: () => unknown): void; testdir(): string }, orgs: string[]): Promise<FleetConsole> {
  const dir = workDir(t as Parameters<typeof workDir>[0])
  for (const org of orgs) moatOk(dir, ['org', 'add', org])
  const port = await freePort()
  let web: RunningWeb | null = null
  const c: FleetConsole = {
    dir,
    url: `https://127.0.0.1:${port}`,
    web: () => web!,
    start: async () => {
      web = await startWeb(dir, { MOAT_WEB_TLS: '1', MOAT_WEB_PORT: String(port) })
    },
    stop: async () => {
      await web?.stop()
      web = null
    },
    agent(agentDir, args) {
      const r = spawnSync(process.execPath, [AGENT, ...args], { env: { ...process.env, MOAT_AGENT_DIR: agentDir }, encoding: 'utf8' })
      return { code: r.status, out: `${r.stdout}${r.stderr}` }
    },
    runAgent(agentDir, env = {}) {
      return spawn(process.execPath, [AGENT, 'run'], {
        env: { ...process.env, MOAT_AGENT_DIR: agentDir, MOAT_AGENT_METRICS_CRON: '*/2 * * * * *', MOAT_AGENT_LOGS_CRON: '*/2 * * * * *', MOAT_AGENT_FLUSH_MS: '500', MOAT_AGENT_BACKOFF_MAX_MS: '3000', ...env },
        stdio: 'ignore',
      })
    },
    token: (org, extra = []) => moatOk(dir, ['fleet', 'token', 'create', '--org', org, ...extra]).trim().split('\n').at(-1)!,
    hosts: () => JSON.parse(moatOk(dir, ['fleet', 'hosts', '--json'])),
  }
  await c.start()
  t.teardown(() => c.stop())
  return c
}

/**
 * One console for a whole test file: started in t.before, torn down with the file. Its
 * methods can be taken apart at the top of the file (`const { agent, token } = fc`); they
 * reach the console once it runs.
 */
export function fleetConsoleForFile(t: { before(fn: () => Promise<void>): void; teardown(fn: () => unknown): void; testdir(): string }, orgs: string[]): FleetConsole {
  let fc: FleetConsole | null = null
  t.before(async () => {
    fc = await fleetConsole(t, orgs)
  })
  const now = () => {
    if (!fc) throw new Error('the fleet console starts in t.before')
    return fc
  }
  return {
    get dir() {
      return now().dir
    },
    get url() {
      return now().url
    },
    web: () => now().web(),
    start: () => now().start(),
    stop: () => now().stop(),
    agent: (agentDir, args) => now().agent(agentDir, args),
    runAgent: (agentDir, env) => now().runAgent(agentDir, env),
    token: (org, extra) => now().token(org, extra),
    hosts: () => now().hosts(),
  }
}
