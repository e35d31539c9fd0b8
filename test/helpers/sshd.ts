/*
 * Debian's OpenSSH server on a free loopback port, for what the appliance sends over SFTP:
 * its own host key, one account (the user the tests run as) that accepts only the keys given,
 * and the in-process SFTP server.
 */
import { tcpAnswers } from '../../appliance/net/tcp-answers'
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { freePort } from './appliance'

export interface Sshd {
  port: number
  user: string
  /** the host key's fingerprint as `ssh-keygen -lf` prints it */
  fingerprint: string
  stop(): Promise<void>
  start(): Promise<void>
}

export async function startSshd(dir: string, authorizedKeys: string[]): Promise<Sshd> {
  fs.mkdirSync(dir, { recursive: true })
  // The privilege-separation folder sshd insists on; made by the package's unit, which does not run here.
  fs.mkdirSync('/run/sshd', { recursive: true, mode: 0o755 })
  const hostKey = path.join(dir, 'host_ed25519')
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', hostKey])
  const fingerprint = execFileSync('ssh-keygen', ['-lf', `${hostKey}.pub`], { encoding: 'utf8' }).split(' ')[1]
  fs.writeFileSync(path.join(dir, 'authorized_keys'), `${authorizedKeys.join('\n')}\n`, { mode: 0o600 })
  const port = await freePort()
  const config = path.join(dir, 'sshd_config')
  fs.writeFileSync(
    config,
    [
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${hostKey}`,
      `AuthorizedKeysFile ${path.join(dir, 'authorized_keys')}`,
      'StrictModes no',
      'UsePAM no',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'PermitRootLogin prohibit-password',
      'PidFile none',
      'Subsystem sftp internal-sftp',
      '',
    ].join('\n'),
  )
  let proc: ChildProcess | null = null
  const server: Sshd = {
    port,
    user: os.userInfo().username,
    fingerprint,
    async start() {
      proc = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', config], { stdio: ['ignore', 'ignore', 'pipe'] })
      let said = ''
      proc.stderr?.on('data', (d) => (said += d))
      for (let i = 0; i < 100 && !(await tcpAnswers('127.0.0.1', port)); i++) {
        if (proc.exitCode !== null) throw new Error(`sshd did not start: ${said}`)
        await new Promise((r) => setTimeout(r, 50))
      }
    },
    async stop() {
      const p = proc
      if (!p || p.exitCode !== null) return
      await new Promise((r) => (p.once('exit', r), p.kill('SIGTERM')))
    },
  }
  await server.start()
  return server
}
