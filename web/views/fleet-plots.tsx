/*
 * A host's metric plots on its Fleet page: CPU and memory, the fullest disk, load and network,
 * over a day (5-minute points), a week or a month (hourly roll-ups). Every bucket of the range
 * is on the axis, so a time the host was silent is a gap, not a line drawn across it.
 */
import { type MetricSeries, RANGES, type Range } from '../../appliance/fleet/metrics'
import { Lines } from './chart'

const STEP: Record<Range, number> = { '24h': 5 * 60_000, '7d': 3_600_000, '30d': 3_600_000 }

function label(ms: number, range: Range): string {
  const iso = new Date(ms).toISOString()
  return range === '24h' ? iso.slice(11, 16) : iso.slice(5, 10)
}

/** The series laid onto every bucket of the range; null where nothing arrived. */
export function onBuckets(s: MetricSeries, now: number): { labels: string[]; pick: (k: keyof Omit<MetricSeries, 'range' | 'at'>) => (number | null)[] } {
  const step = STEP[s.range]
  const first = Math.floor((now - RANGES[s.range]) / step) * step
  const n = Math.floor((now - first) / step) + 1
  const index = new Map(s.at.map((at, i) => [Math.floor(at / step) * step, i]))
  const starts = Array.from({ length: n }, (_, i) => first + i * step)
  return {
    labels: starts.map((t) => label(t, s.range)),
    pick: (k) => starts.map((t) => {
      const i = index.get(t)
      const v = i === undefined ? null : s[k][i]
      return v === null || v === undefined ? null : Math.round(v * 10) / 10
    }),
  }
}

export function MetricPlots(props: { hostId: number; series: MetricSeries; now: number }) {
  const { labels, pick } = onBuckets(props.series, props.now)
  const mib = (v: (number | null)[]) => v.map((x) => (x === null ? null : Math.round((x / 2 ** 20) * 100) / 100))
  return (
    <section id="plots">
      <h2>Load</h2>
      <p class="filters">
        {(Object.keys(RANGES) as Range[]).map((r) =>
          r === props.series.range ? <strong>{r}</strong> : <a href={`/fleet/hosts/${props.hostId}?range=${r}#plots`}>{r}</a>,
        )}
      </p>
      <Lines title="CPU and memory" unit="%" max={100} labels={labels} series={[
        { name: 'CPU', cls: 's-line', values: pick('cpu') },
        { name: 'memory', cls: 's-ok', values: pick('memPct') },
        { name: 'fullest disk', cls: 's-defer', values: pick('diskUse') },
      ]} />
      <Lines title="Network" unit="MiB/s" labels={labels} series={[
        { name: 'in', cls: 's-ok', values: mib(pick('netRx')) },
        { name: 'out', cls: 's-ours', values: mib(pick('netTx')) },
      ]} />
      <Lines title="Load average (1 minute)" unit="runnable tasks" labels={labels} series={[{ name: 'load', cls: 's-line', values: pick('load1') }]} />
    </section>
  )
}
