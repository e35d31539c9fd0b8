/*
 * The agent's Debian package on a clean Debian 12 root, as a customer's server gets it: the
 * package built by `npm run package:deb`, a fresh root from Debian's mirror (mmdebstrap
 * minbase with systemd, the way the image build makes its root), `dpkg -i` inside it, then
 * `moat-agent enroll` as root against a real console over HTTPS on loopback, and the
 * service's own command line run as its unit says (user, group, environment). The console
 * must see the host, its inventory and the package itself among its software. Then purge.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import t from 'tap'
import { moatOk, ROOT, startWeb, until, workDir } from '../helpers/appliance'

const haveTools = ['mmdebstrap', 'dpkg-deb', 'chroot'].every((c) => spawnSync('sh', ['-c', `command -v ${c}`]).status === 0)

function run(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    p.stdout.on('data', (d) => (out += d))
    p.stderr.on('data', (d) => (out += d))
    const timer = setTimeout(() => p.kill('SIGKILL'), opts.timeoutMs ?? 600_000)
    p.on('exit', (code) => (clearTimeout(timer), resolve({ code, out })))
  })
}

t.test('the .deb on a clean Debian root: installs, enrolls as root, runs as its own user, reports, purges', { skip: (process.getuid?.() !== 0 && 'needs root (chroot, mounts)') || (!haveTools && 'needs mmdebstrap, dpkg-deb') }, async (t) => {
  const dir = workDir(t)
  // Outside tap's fixture folder: it is removed before teardowns could unmount.
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'moat-deb-'))
  const root = path.join(tmp, 'root')
  const out = path.join(tmp, 'out')
  const mounts: string[] = []
  t.teardown(() => {
    for (const m of mounts.reverse()) spawnSync('umount', ['-l', m])
    fs.rmSync(tmp, { recursive: true, force: true })
  })
  const [built, rooted] = await Promise.all([
    run('bash', [path.join(ROOT, 'agent-packages/deb/build.sh'), out], { env: { ...process.env, MOAT_SKIP_BUILD: '1' } }),
    run('mmdebstrap', ['--variant=minbase', '--include=systemd,adduser', 'bookworm', root, 'deb http://deb.debian.org/debian bookworm main']),
  ])
  t.equal(built.code, 0, `package built: ${built.out.slice(-500)}`)
  t.equal(rooted.code, 0, `clean root made: ${rooted.out.slice(-500)}`)
  const deb = fs.readdirSync(out).find((f) => f.endsWith('_amd64.deb'))!
  t.ok(deb, deb)
  for (const [src, dst, type] of [['proc', 'proc', 'proc'], ['/dev', 'dev', 'bind']] as const) {
    const target = path.join(root, dst)
    const m = type === 'bind' ? spawnSync('mount', ['--bind', src, target]) : spawnSync('mount', ['-t', 'proc', 'proc', target])
    t.equal(m.status, 0, `mounted ${dst}`)
    mounts.push(target)
  }
  fs.copyFileSync(path.join(out, deb), path.join(root, 'tmp', deb))
  // env -i: the test runner's own NODE_OPTIONS (its loader, a path outside this root) stays out.
  const chroot = (args: string[]) => spawnSync('chroot', [root, 'env', '-i', 'PATH=/usr/sbin:/usr/bin:/sbin:/bin', ...args], { encoding: 'utf8' })

  const installed = chroot(['dpkg', '-i', `/tmp/${deb}`])
  t.equal(installed.status, 0, `dpkg -i: ${installed.stderr}`)
  t.match(chroot(['id', 'moat-agent']).stdout, /uid=\d+\(moat-agent\).*systemd-journal/, 'its own system user, in systemd-journal')
  t.equal(fs.readlinkSync(path.join(root, 'etc/systemd/system/multi-user.target.wants/moat-agent.service')), '/lib/systemd/system/moat-agent.service', 'the unit enabled')
  const state = fs.statSync(path.join(root, 'var/lib/moat-agent'))
  t.equal(state.mode & 0o777, 0o700, 'its state folder is its own')

  moatOk(dir, ['org', 'add', 'acme'])
  const web = await startWeb(dir, { MOAT_WEB_TLS: '1' })
  t.teardown(() => web.stop())
  const token = moatOk(dir, ['fleet', 'token', 'create', '--org', 'acme']).trim().split('\n').at(-1)!
  // As an admin does it: as root, with the install line from the console.
  const enrolled = chroot(['moat-agent', 'enroll', web.url, '--token', token, '--name', 'deb01'])
  t.equal(enrolled.status, 0, enrolled.stderr)
  t.match(enrolled.stdout, /enrolled as host \d+/)
  t.equal(fs.statSync(path.join(root, 'var/lib/moat-agent/agent.db')).uid, Number(chroot(['id', '-u', 'moat-agent']).stdout.trim()), "what enroll wrote belongs to the service's user")

  // The service, as its unit runs it (systemd is not PID 1 in a chroot): its user, groups,
  // environment and command line, read from the installed unit file.
  const unit = fs.readFileSync(path.join(root, 'lib/systemd/system/moat-agent.service'), 'utf8')
  const execStart = /^ExecStart=(.+)$/m.exec(unit)![1].split(' ')
  const unitEnv = Object.fromEntries([...unit.matchAll(/^Environment=(\w+)=(.*)$/gm)].map((m) => [m[1], m[2]]))
  t.match(unit, /^User=moat-agent$/m)
  const envArgs = Object.entries({ PATH: '/usr/bin:/bin', ...unitEnv, MOAT_AGENT_FLUSH_MS: '500' }).map(([k, v]) => `${k}=${v}`)
  const service: ChildProcess = spawn('chroot', [root, 'env', '-i', ...envArgs, 'setpriv', '--reuid=moat-agent', '--regid=moat-agent', '--init-groups', '--', ...execStart], { stdio: 'ignore' })
  t.teardown(() => service.kill('SIGKILL'))
  const hosts = () => JSON.parse(moatOk(dir, ['fleet', 'hosts', '--json'])) as { id: number; name: string; last_seq: number }[]
  const host = await until(() => hosts().find((h) => h.name === 'deb01' && h.last_seq >= 2), 60_000, 'deb01 reporting')
  // The inventory is taken in a worker thread and comes after the first metrics.
  const detail = await until(() => {
    const d = JSON.parse(moatOk(dir, ['fleet', 'host', String(host.id), '--json']))
    return d.inventory ? d : null
  }, 90_000, 'the first inventory')
  t.match(detail, { kind: 'linux', status: 'online' })
  t.match(detail.inventory.os, { distro: /Debian/, release: /^12/ }, "the clean root's own system")
  t.ok(detail.inventory.software.some((p: { name: string }) => p.name === 'moat-agent'), 'the package itself among its software')
  service.kill('SIGTERM')
  await new Promise((r) => (service.exitCode !== null ? r(null) : service.once('exit', r)))

  const purged = chroot(['dpkg', '--purge', 'moat-agent'])
  t.equal(purged.status, 0, purged.stderr)
  t.notOk(fs.existsSync(path.join(root, 'opt/moat-agent')), 'its files gone')
  t.notOk(fs.existsSync(path.join(root, 'var/lib/moat-agent')), 'its key and buffer gone')
  t.not(chroot(['id', 'moat-agent']).status, 0, 'its user gone')
})
