/*
 * What the agent does for each command the console queued (fleet/protocol.ts): its answer
 * is the command's output at the console. Restart and update on an appliance are handed to
 * root through request files that systemd path units watch (the agent runs unprivileged):
 * DATA_DIR/system/restart-request (moat-restart.path) and DATA_DIR/updates/incoming.moat
 * (moat-update.path: 'moat update --pending' checks the release's signature, applies it and
 * rolls back one that does not come up healthy).
 */
import { execFile } from 'node:child_process'
import crypto from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import type { Command } from '../fleet/protocol'
import { MAX_COMMAND_OUTPUT } from '../fleet/protocol'

export interface CommandContext {
  /** on an appliance: its data folder */
  applianceDataDir?: string
  journalDir?: string
  platform?: NodeJS.Platform
  takeInventory(): Promise<void>
}

/** The appliance's request files, as the image's path units watch them (services/updater.ts uses this one). */
export const restartRequestFile = (dataDir: string) => path.join(dataDir, 'system', 'restart-request')
export const incomingReleaseFile = (dataDir: string) => path.join(dataDir, 'updates', 'incoming.moat')
const MAX_RELEASE_BYTES = 1024 ** 3

function output(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile(cmd, args, { maxBuffer: 64 * 1024 * 1024, timeout: 120_000, windowsHide: true }, (err, out, stderr) =>
      err ? reject(new Error(`${cmd} failed: ${String(stderr || err.message).split('\n')[0]}`)) : resolve(out),
    ),
  )
}

/** The newest end of a text, within what the console keeps. */
function newest(text: string, room: number): string {
  return Buffer.byteLength(text) <= room ? text : Buffer.from(text).subarray(-room).toString('utf8').replace(/^[^\n]*\n/, '')
}

/** A log bundle: the last 2,000 journal lines of every priority (Windows: the last 200 events of each channel). */
async function collectLogs(ctx: CommandContext): Promise<string> {
  if ((ctx.platform ?? process.platform) === 'win32') {
    const parts: string[] = []
    for (const channel of ['System', 'Application']) {
      parts.push(`== ${channel}`, await output('powershell.exe', ['-NoProfile', '-NonInteractive', '-Command', `Get-WinEvent -LogName '${channel}' -MaxEvents 200 -ErrorAction SilentlyContinue | Format-Table -AutoSize -Wrap TimeCreated, LevelDisplayName, ProviderName, Message | Out-String -Width 300`]))
    }
    return parts.join('\n')
  }
  const args = ['-n', '2000', '--no-pager', '-o', 'short-iso']
  if (ctx.journalDir) args.push(`--directory=${ctx.journalDir}`)
  const text = await output('journalctl', args)
  const lines = text.split('\n').filter(Boolean).length
  const head = `log bundle: the last ${lines} journal lines, every priority\n`
  return head + newest(text, MAX_COMMAND_OUTPUT - head.length - 64)
}

/** Downloads a release to where moat-update.path picks it up; whole or not at all. */
async function downloadRelease(url: string, dataDir: string): Promise<string> {
  if (!/^https:\/\//.test(url)) throw new Error('apply-update needs an https:// URL')
  const r = await fetch(url, { signal: AbortSignal.timeout(30 * 60_000) })
  if (!r.ok || !r.body) throw new Error(`the release URL answered ${r.status}`)
  const target = incomingReleaseFile(dataDir)
  const part = `${target}.part`
  fs.mkdirSync(path.dirname(target), { recursive: true })
  const hash = crypto.createHash('sha256')
  let bytes = 0
  const fd = fs.openSync(part, 'w', 0o640)
  try {
    for await (const chunk of r.body as unknown as AsyncIterable<Uint8Array>) {
      bytes += chunk.length
      if (bytes > MAX_RELEASE_BYTES) throw new Error('the release is over 1 GiB')
      hash.update(chunk)
      fs.writeSync(fd, chunk)
    }
    fs.fsyncSync(fd)
  } catch (err) {
    fs.closeSync(fd)
    fs.rmSync(part, { force: true })
    throw err
  }
  fs.closeSync(fd)
  fs.renameSync(part, target)
  return `release downloaded (${(bytes / 1048576).toFixed(1)} MiB, sha256 ${hash.digest('hex')}); the appliance checks its signature and applies it, and rolls back if it does not come up`
}

export async function runCommand(c: Command, ctx: CommandContext): Promise<string> {
  switch (c.kind) {
    case 'refresh-inventory':
      await ctx.takeInventory()
      return 'inventory taken'
    case 'collect-logs':
      return collectLogs(ctx)
    case 'restart-services': {
      if (!ctx.applianceDataDir) throw new Error('restart-services is for Moat appliances')
      const file = restartRequestFile(ctx.applianceDataDir)
      fs.mkdirSync(path.dirname(file), { recursive: true })
      fs.writeFileSync(file, `${JSON.stringify({ at: Date.now(), by: 'fleet', command: c.id })}\n`)
      return "restart of Moat's services requested (moat-restart.path)"
    }
    case 'apply-update':
      if (!ctx.applianceDataDir) throw new Error('apply-update is for Moat appliances')
      return downloadRelease(String(c.arg ?? ''), ctx.applianceDataDir)
    default:
      throw new Error(`this agent does not know the command "${(c as Command).kind}"`)
  }
}
