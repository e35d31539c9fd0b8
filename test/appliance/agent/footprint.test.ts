/*
 * The stand-alone agent runs on customers' servers: it must load the agent and nothing of the
 * appliance's mail side (engine, SMTP, web, Haraka), which would cost memory on every host.
 */
import { spawnSync } from 'node:child_process'
import path from 'node:path'
import t from 'tap'

t.test('moat-agent loads only the agent', async (t) => {
  const cli = path.join(__dirname, '../../../appliance/agent/cli.js')
  const r = spawnSync(process.execPath, ['-e', `require(${JSON.stringify(cli)}); process.stdout.write(JSON.stringify(Object.keys(require.cache)))`], { encoding: 'utf8' })
  t.equal(r.status, 0, r.stderr)
  const loaded = JSON.parse(r.stdout) as string[]
  const ours = loaded.filter((f) => !f.includes('node_modules')).map((f) => path.relative(path.join(__dirname, '../../..'), f))
  t.same(ours.filter((f) => /(engine|smtp|web|services|jobs)\//.test(f)), [], 'no mail, web or service module')
  t.notOk(loaded.some((f) => /node_modules\/(haraka|hono|mailauth|postal-mime)/.test(f)), 'no mail or web library')
})
