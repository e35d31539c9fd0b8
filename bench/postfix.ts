/*
 * Debian's Postfix as its own instance on loopback, for the SMTP bench's anchor row: what a
 * mature MTA does on the same disk when it relays (queue on disk, fsync before 250, its own
 * queue manager delivering over pooled connections). Its own config and queue folders under
 * `dir`; the system's Postfix, if any, is not touched. Needs root (master starts as root and
 * drops to the postfix user) and the postfix package; without them the row is left out.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'

export function postfixMissing(): string | null {
  if (process.getuid?.() !== 0) return 'not root (Postfix starts as root)'
  try {
    execFileSync('postconf', ['-d', 'mail_version'], { stdio: 'ignore' })
    return null
  } catch {
    return 'postfix is not installed (apt-get install postfix)'
  }
}

/**
 * Starts Postfix listening on 127.0.0.1:`port`, relaying `domain` to 127.0.0.1:`sinkPort` and
 * nothing else (no DNS: the relay transport names the next hop). Returns the master process.
 */
export async function startPostfix(dir: string, port: number, domain: string, sinkPort: number): Promise<ChildProcess> {
  const etc = path.join(dir, 'etc')
  fs.mkdirSync(etc, { recursive: true })
  // Every service unchrooted: the chroot would need copies of /etc files in the queue folder.
  const master = fs
    .readFileSync('/etc/postfix/master.cf', 'utf8')
    .split('\n')
    .map((line) => {
      if (/^#|^\s|^$/.test(line)) return line
      const f = line.split(/\s+/)
      if (f[0] === 'smtp' && f[1] === 'inet') f[0] = `127.0.0.1:${port}`
      if (f.length >= 8) f[4] = 'n'
      return f.join(' ')
    })
    .join('\n')
  fs.writeFileSync(path.join(etc, 'master.cf'), master)
  fs.writeFileSync(
    path.join(etc, 'main.cf'),
    [
      'compatibility_level = 3.6',
      `queue_directory = ${path.join(dir, 'queue')}`,
      `data_directory = ${path.join(dir, 'data')}`,
      'mail_owner = postfix',
      'setgid_group = postdrop',
      'inet_interfaces = 127.0.0.1',
      'inet_protocols = ipv4',
      'myhostname = postfix.bench.test',
      'mydestination =',
      'local_transport = error:no local delivery',
      `relay_domains = ${domain}`,
      `relay_transport = relay:[127.0.0.1]:${sinkPort}`,
      'mynetworks = 127.0.0.0/8',
      'smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination',
      'smtp_dns_support_level = disabled',
      'disable_dns_lookups = yes',
      'smtpd_peername_lookup = no',
      // As many parallel deliveries as the other rows may use; the sink is as fast as it gets.
      'default_destination_concurrency_limit = 20',
      'smtp_connection_cache_on_demand = yes',
      // Postfix writes its log only under maillog_file_prefixes (/var, /dev/stdout): stdout,
      // which start-fg hands to the file below.
      'maillog_file = /dev/stdout',
      'message_size_limit = 52428800',
      '',
    ].join('\n'),
  )
  fs.mkdirSync(path.join(dir, 'queue'), { recursive: true })
  fs.mkdirSync(path.join(dir, 'data'), { recursive: true })
  execFileSync('chown', ['postfix', path.join(dir, 'data')])
  // Creates the queue folders with Postfix's owners and modes.
  execFileSync('postfix', ['-c', etc, 'set-permissions'], { stdio: 'ignore' })
  execFileSync('postfix', ['-c', etc, 'check'], { stdio: 'ignore' })
  const log = fs.openSync(path.join(dir, 'maillog'), 'a')
  // Its own process group: `postfix abort` signals master's group, which must not be ours.
  const proc = spawn('postfix', ['-c', etc, 'start-fg'], { stdio: ['ignore', log, log], detached: true })
  fs.closeSync(log)
  return proc
}

/** Stops the instance (master and every child), waiting for master to go. */
export async function stopPostfix(dir: string, proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null) return
  const gone = new Promise<void>((resolve) => proc.once('exit', () => resolve()))
  try {
    execFileSync('postfix', ['-c', path.join(dir, 'etc'), 'abort'], { stdio: 'ignore' })
  } catch {
    proc.kill('SIGKILL')
  }
  await Promise.race([gone, new Promise((r) => setTimeout(r, 5000))])
}
