/*
 * The fleet-learning simulation (npm run bench -- fleet-learning) at a small size: it runs on
 * the shipped engine, and sharing never misses more spam than isolated appliances, nor flags
 * ham they did not. The figures that count come from the full bench.
 */
import t from 'tap'
import { benchFleetLearning } from '../../../bench/fleet-learning'

t.test('a small fleet: sharing catches more, flags no more ham, and the oracle bounds it', async (t) => {
  const tables: Record<string, string | number>[][] = []
  const log = console.log
  console.log = () => {}
  try {
    await benchFleetLearning((_title, rows) => tables.push(rows), {
      sites: 6, campaigns: 25, days: 2, reportShare: 0.3, misreportShare: 0.02, notSpamShare: 0.5, jobSeconds: 15, relaySeconds: 40, tempos: [240],
    })
  } finally {
    console.log = log
  }
  const [isolated, fleet, oracle] = tables[0]
  const pctOf = (v: string | number) => Number(String(v).replace(' %', ''))
  t.comment(JSON.stringify({ isolated: isolated['spam missed'], fleet: fleet['spam missed'], oracle: oracle['spam missed'] }))
  t.ok(pctOf(isolated['spam missed']) > 0, 'the shipped engine misses some of the campaigns at first')
  t.ok(pctOf(fleet['spam missed']) < pctOf(isolated['spam missed']), 'sharing misses less')
  t.ok(pctOf(oracle['spam missed']) <= pctOf(fleet['spam missed']), 'and no less than the oracle')
  t.ok(pctOf(fleet['ham flagged']) <= pctOf(isolated['ham flagged']) + 0.1, `ham flagged: ${fleet['ham flagged']} (isolated ${isolated['ham flagged']})`)
})
