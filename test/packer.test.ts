/*
 * The cheap half of the image work, on every run: the Packer template validates (Debian's
 * packer, offline) and every script the image build runs passes shellcheck. The full build and
 * boot test (npm run image && npm run image:test) take 15-25 minutes under emulation.
 */
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { ROOT } from './helpers/appliance'

const PACKER = path.join(ROOT, 'packer')

t.test('packer validate accepts the template', async (t) => {
  const dir = t.testdir({ 'base.qcow2': '', 'release.tar.gz': '', 'next.moat': '' })
  spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', `${dir}/key`])
  const r = spawnSync('packer', ['validate', '-var', `base_image=${dir}/base.qcow2`, '-var', `release=${dir}/release.tar.gz`, '-var', `update_test=${dir}/next.moat`, '-var', `output_dir=${dir}/output`, '-var', `ssh_key=${dir}/key`, 'moat.pkr.hcl'], { cwd: PACKER, encoding: 'utf8' })
  t.equal(r.status, 0, `${r.stdout}${r.stderr}`)
  const bad = spawnSync('packer', ['validate', 'moat.pkr.hcl'], { cwd: PACKER, encoding: 'utf8' })
  t.not(bad.status, 0, 'and refuses to run without its inputs')
})

t.test('the image scripts pass shellcheck', async (t) => {
  const scripts = [
    ...fs.readdirSync(path.join(PACKER, 'scripts')).map((f) => path.join(PACKER, 'scripts', f)),
    path.join(PACKER, 'build.sh'),
    path.join(PACKER, 'ci.sh'),
    path.join(PACKER, 'files/moat-console-issue'),
    path.join(PACKER, 'files/moat-growfs'),
    // The agent's Debian package: its builder, its command wrapper, its maintainer scripts.
    ...['build.sh', 'moat-agent', 'postinst', 'prerm', 'postrm'].map((f) => path.join(PACKER, '../agent-packages/deb', f)),
    path.join(PACKER, '../agent-packages/msi/build.sh'),
  ]
  t.ok(scripts.length >= 5)
  const r = spawnSync('shellcheck', scripts, { encoding: 'utf8' })
  t.equal(r.status, 0, r.stdout)
})

t.test('the units and the firewall are what the image needs', async (t) => {
  const units = fs.readdirSync(path.join(PACKER, 'files/systemd'))
  for (const u of ['moat-smtp.service', 'moat-web.service', 'moat-jobs.service', 'moat-agent.service', 'moat-console.service', 'moat-system.path', 'moat-update.path', 'moat-growfs.service']) t.ok(units.includes(u), u)
  // Every service starts the release `moat update` switches, never a fixed one.
  for (const u of units.filter((f) => f.endsWith('.service'))) {
    const text = fs.readFileSync(path.join(PACKER, 'files/systemd', u), 'utf8')
    for (const exec of text.match(/^Exec\w+=.*moat.*$/gm) ?? []) t.notMatch(exec, /\/opt\/moat\/(?!current\/)/, `${u}: ${exec}`)
  }
  // The root units act on what the moat user may leave; each path unit names its service.
  for (const [p, svc] of [['moat-system.path', 'moat-system.service'], ['moat-update.path', 'moat-update.service'], ['moat-restart.path', 'moat-restart.service']]) {
    const text = fs.readFileSync(path.join(PACKER, 'files/systemd', p), 'utf8')
    t.match(text, /^PathExists=\/var\/lib\/moat\//m, p)
    t.match(text, new RegExp(`^Unit=${svc.replace('.', '\\.')}$`, 'm'), p)
    t.notMatch(fs.readFileSync(path.join(PACKER, 'files/systemd', svc), 'utf8'), /^User=/m, `${svc} runs as root`)
  }
  const nft = fs.readFileSync(path.join(PACKER, 'files/nftables.conf'), 'utf8')
  t.match(nft, /policy drop/)
  t.match(nft, /tcp dport \{ 25, 587, 443 \} accept/)
  t.match(nft, /ip saddr \$admin_networks tcp dport 22 accept/)
  const check = spawnSync('nft', ['-c', '-f', path.join(PACKER, 'files/nftables.conf')], { encoding: 'utf8' })
  if (check.error) t.comment('nft not installed here: syntax not checked')
  else t.equal(check.status, 0, check.stderr)
})

t.test('make-ova.sh: descriptor first, a manifest that matches, a streamOptimized disk of the right capacity', async (t) => {
  const dir = t.testdir()
  const disk = path.join(dir, 'disk.qcow2')
  t.equal(spawnSync('qemu-img', ['create', '-q', '-f', 'qcow2', disk, '16M']).status, 0)
  const made = spawnSync('bash', [path.join(PACKER, 'scripts/make-ova.sh'), disk, path.join(dir, 'moat.ova')], { encoding: 'utf8' })
  t.equal(made.status, 0, made.stderr)
  const list = spawnSync('tar', ['-tf', path.join(dir, 'moat.ova')], { encoding: 'utf8' }).stdout.trim().split('\n')
  t.same(list, ['moat.ovf', 'moat.mf', 'moat-disk1.vmdk'], 'the OVF specification wants the descriptor first')
  const x = path.join(dir, 'x')
  fs.mkdirSync(x)
  t.equal(spawnSync('tar', ['-xf', path.join(dir, 'moat.ova'), '-C', x]).status, 0)
  const sha = (f: string) => require('node:crypto').createHash('sha256').update(fs.readFileSync(path.join(x, f))).digest('hex')
  t.equal(fs.readFileSync(path.join(x, 'moat.mf'), 'utf8'), `SHA256(moat.ovf)= ${sha('moat.ovf')}\nSHA256(moat-disk1.vmdk)= ${sha('moat-disk1.vmdk')}\n`)
  const lint = spawnSync('xmllint', ['--noout', path.join(x, 'moat.ovf')], { encoding: 'utf8' })
  t.equal(lint.status, 0, `well-formed XML: ${lint.stderr}`)
  const ovf = fs.readFileSync(path.join(x, 'moat.ovf'), 'utf8')
  t.match(ovf, new RegExp(`ovf:href="moat-disk1.vmdk" ovf:size="${fs.statSync(path.join(x, 'moat-disk1.vmdk')).size}"`))
  t.match(ovf, /ovf:capacity="16777216"/)
  const info = JSON.parse(spawnSync('qemu-img', ['info', '--output=json', path.join(x, 'moat-disk1.vmdk')], { encoding: 'utf8' }).stdout)
  t.equal(info.format, 'vmdk')
  t.equal(info['format-specific']?.data?.['create-type'], 'streamOptimized')
  t.equal(info['virtual-size'], 16777216)
})
