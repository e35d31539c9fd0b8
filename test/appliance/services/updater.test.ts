/*
 * moat update on an installed layout (INSTALL_ROOT/releases/<version>, current -> one of
 * them) with the appliance really running from `current` (moat start under a service
 * script), releases really signed, and the health check really asked: a good release is
 * switched to; a damaged, unsigned, older or self-check-failing one changes nothing; one
 * that does not come up healthy is rolled back, with the database it migrated put back.
 *
 * The install root lies inside the checkout (tap's fixtures), so releases find the
 * checkout's node_modules the way the image's find their own.
 */
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import t from 'tap'
import { makeReleaseKey } from '../../../appliance/services/release-package'
import { freePort, ROOT } from '../../helpers/appliance'

// What packer/scripts/stage.sh puts in a release (the web app reads its static files at start).
const COPY = ['bin', 'dist', 'plugins', 'appliance/haraka', 'appliance/models', 'appliance/rbl-watch-zones.txt', 'web/static', 'web/notifier', 'web/outlook', 'LICENSE']

function makeTree(dir: string, version: string, spoil?: (dir: string) => void): string {
  for (const p of COPY) fs.cpSync(path.join(ROOT, p), path.join(dir, p), { recursive: true, filter: (src) => !/dist\/(test|bench)(\/|$)/.test(src) })
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'))
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ ...pkg, version }))
  spoil?.(dir)
  return dir
}

t.test('moat update: switch, refuse, roll back', async (t) => {
  const dir = t.testdir({ inst: { releases: {} }, data: {}, keys: {}, other: {}, trees: {} })
  const inst = path.join(dir, 'inst')
  const data = path.join(dir, 'data')
  const key = makeReleaseKey(path.join(dir, 'keys'))
  const stranger = makeReleaseKey(path.join(dir, 'other'))
  const [smtpPort, subPort, webPort, noDns] = [await freePort(), await freePort(), await freePort(), await freePort()]
  const env = {
    ...process.env,
    MOAT_DATA_DIR: data, MOAT_INSTALL_ROOT: inst, MOAT_RELEASE_KEYS: path.join(dir, 'keys'),
    MOAT_SMTP_PORT: String(smtpPort), MOAT_SUBMISSION_PORT: String(subPort), MOAT_WEB_PORT: String(webPort),
    MOAT_DNS_SERVER: `127.0.0.1:${noDns}`, MOAT_UPDATE_HEALTH_TIMEOUT_S: '20',
    MOAT_SERVICE_CONTROL: path.join(os.tmpdir(), `moat-update-test-${process.pid}.sh`),
  }
  // Outside the test folder, like the control script itself: tap removes that folder before
  // the teardown below runs the script to stop the services.
  const pidFile = path.join(os.tmpdir(), `moat-update-test-${process.pid}.pid`)
  // The services as systemd would run them: from INSTALL_ROOT/current, stopped as a group.
  fs.writeFileSync(env.MOAT_SERVICE_CONTROL, `#!/bin/sh
pidfile=${pidFile}
echo "$1" >> ${dir}/services.log
case "$1" in
  start) setsid ${process.execPath} ${inst}/current/bin/moat start >> ${dir}/services.out 2>&1 < /dev/null & echo $! > $pidfile ;;
  stop) [ -s $pidfile ] || exit 0; pid=$(cat $pidfile); echo "stopping group $pid: $(ps -o pid= -g $pid | tr '\\n' ' ')" >> ${dir}/services.log; kill -INT -$pid 2>/dev/null
        i=0; while kill -0 -$pid 2>/dev/null && [ $i -lt 100 ]; do sleep 0.2; i=$((i+1)); done
        kill -KILL -$pid 2>/dev/null; rm -f $pidfile ;;
esac
`, { mode: 0o755 })
  const moat = (...args: string[]) => {
    const r = spawnSync(process.execPath, [path.join(inst, 'current/bin/moat'), ...args], { env, encoding: 'utf8', timeout: 240_000 })
    return { code: r.status, out: `${r.stdout}${r.stderr}` }
  }
  // A kept-alive connection to the web service a restart ended fails once: ask again.
  const health = async () => {
    for (let i = 0; i < 5; i++) {
      const v = await fetch(`http://127.0.0.1:${webPort}/healthz`).then(async (r) => ((await r.json()) as { version: string }).version, () => null)
      if (v) return v
      await new Promise((r) => setTimeout(r, 200))
    }
    return null
  }
  const current = () => path.basename(fs.realpathSync(path.join(inst, 'current')))
  const starts = () => fs.readFileSync(path.join(dir, 'services.log'), 'utf8').split('\n').filter(Boolean)
  const pack = (version: string, opts: { key?: string; spoil?: (d: string) => void } = {}) => {
    const tree = makeTree(path.join(dir, 'trees', `${version}-${Math.random().toString(36).slice(2)}`), version, opts.spoil)
    const out = path.join(dir, `moat-${version}-${Math.random().toString(36).slice(2)}.moat`)
    const r = moat('release', 'pack', tree, out, '--key', opts.key ?? key.key)
    if (r.code !== 0) throw new Error(r.out)
    return out
  }

  makeTree(path.join(inst, 'releases/0.1.0'), '0.1.0')
  fs.symlinkSync('releases/0.1.0', path.join(inst, 'current'))
  t.teardown(() => {
    const r = spawnSync(env.MOAT_SERVICE_CONTROL, ['stop'], { env })
    fs.rmSync(env.MOAT_SERVICE_CONTROL, { force: true })
    if (r.status !== 0) throw new Error(`the services were not stopped: ${r.error ?? r.stderr}`)
  })
  spawnSync(env.MOAT_SERVICE_CONTROL, ['start'], { env })
  for (let i = 0; i < 150 && (await health()) !== '0.1.0'; i++) await new Promise((r) => setTimeout(r, 200))
  t.equal(await health(), '0.1.0', 'the installed release runs')
  t.equal(moat('org', 'add', 'acme').code, 0)

  const good = pack('0.2.0')
  const up = moat('update', good)
  t.equal(up.code, 0, up.out)
  t.match(up.out, /update: applied: updated from 0\.1\.0 to 0\.2\.0/)
  t.match(current(), /^0\.2\.0-/)
  t.equal(await health(), '0.2.0', 'the new release serves')
  t.match(JSON.parse(fs.readFileSync(path.join(data, 'updates/status.json'), 'utf8')), { state: 'applied', from: '0.1.0', to: '0.2.0' })
  t.ok(fs.existsSync(path.join(inst, 'releases/0.1.0')), 'the previous release is kept to go back to')
  const running = current()
  const stops = starts().length

  // Refused before anything is touched: the services are never stopped.
  const damaged = pack('0.3.0')
  const bytes = fs.readFileSync(damaged)
  bytes[bytes.length - 2000] ^= 0x55
  fs.writeFileSync(damaged, bytes)
  const refusals: [string, RegExp][] = [
    [damaged, /damaged|not a Moat release/],
    [pack('0.3.0', { key: stranger.key }), /does not match any trusted release key/],
    [pack('0.1.5'), /0\.1\.5 is not newer than the running 0\.2\.0/],
    [pack('0.3.0', { spoil: (d) => fs.writeFileSync(path.join(d, 'dist/web/app.js'), 'throw new Error("half a release")') }), /failed its self-check, nothing was changed: .*half a release/],
  ]
  for (const [file, why] of refusals) {
    const r = moat('update', file)
    t.equal(r.code, 1, `refused: ${why}`)
    t.match(r.out, why)
  }
  t.equal(current(), running, 'still on 0.2.0')
  t.equal(starts().length, stops, 'the services were not restarted')
  t.equal(await health(), '0.2.0')
  t.match(JSON.parse(fs.readFileSync(path.join(data, 'updates/status.json'), 'utf8')), { state: 'refused' })

  // Passes its self-check, migrates the database, then the web service cannot start: rolled
  // back, and 0.2.0 gets the database it knows back (it would refuse the newer schema).
  const broken = pack('0.4.0', {
    spoil: (d) => {
      const m = path.join(d, 'dist/appliance/db/migrations.js')
      fs.writeFileSync(m, fs.readFileSync(m, 'utf8').replace(/`,\n\];/, '`,\n  `CREATE TABLE from_the_future (x INTEGER) STRICT;`,\n];'))
      fs.rmSync(path.join(d, 'web/static/moat.css'))
    },
  })
  const back = moat('update', broken)
  t.equal(back.code, 1, back.out)
  t.match(back.out, /rolled-back: 0\.4\.0 did not become healthy; 0\.2\.0 is running again with the database as it was before the update/)
  t.equal(current(), running)
  t.equal(await health(), '0.2.0', 'the old release serves again')
  t.notOk(fs.readdirSync(path.join(inst, 'releases')).some((n) => n.startsWith('0.4.0')), 'the failed release is removed')
  const orgs = moat('org', 'list')
  t.match(orgs.out, /acme/, 'the data is all there')
  t.equal(moat('selfcheck').code, 0, 'and its schema is one 0.2.0 knows')
})
