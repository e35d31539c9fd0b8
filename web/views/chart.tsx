/*
 * Charts, drawn twice: as SVG on the server, so a page reads without JavaScript and on any
 * phone, and from the same numbers (the figure's data-plot attribute) by uPlot in the browser
 * (web/static/plots.js), with the values under the cursor and drag-to-zoom. Colours come
 * from classes in moat.css, for both.
 */

import type { Child } from 'hono/jsx'

export interface Series {
  name: string
  /** class in moat.css: s-ok, s-defer, s-fail, s-ours, s-line */
  cls: string
  /** null: no data for that bucket (a line breaks there) */
  values: (number | null)[]
}

/** The colour class of a verdict, the same in every plot. */
export function verdictClass(verdict: string): string {
  return verdict === 'clean' ? 's-ok' : verdict === 'spam' ? 's-defer' : 's-fail'
}

const W = 640
const H = 180
const PAD = { l: 40, r: 10, t: 10, b: 24 }

function niceMax(v: number): number {
  if (v <= 0) return 1
  const p = 10 ** Math.floor(Math.log10(v))
  return [1, 2, 5, 10].map((m) => m * p).find((m) => m >= v)!
}

/** The frame both charts share: axis, scale ticks, first and last label, legend. */
function Frame(props: { title: string; caption: string; labels: string[]; series: Series[]; max: number; y: (v: number) => number; kind: 'bars' | 'lines'; unit?: string; children: Child }) {
  const n = props.labels.length
  const plot = JSON.stringify({ title: props.caption, kind: props.kind, unit: props.unit ?? '', labels: props.labels, series: props.series })
  return (
    <figure class="chart" data-plot={plot}>
      <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-label={props.title}>
        <line class="axis" x1={PAD.l} y1={props.y(0)} x2={W - PAD.r} y2={props.y(0)} />
        <text class="tick" x={PAD.l - 4} y={props.y(props.max) + 4} text-anchor="end">{props.max}</text>
        <text class="tick" x={PAD.l - 4} y={props.y(0)} text-anchor="end">0</text>
        {props.children}
        {n > 0 && <text class="tick" x={PAD.l} y={H - 6}>{props.labels[0]}</text>}
        {n > 1 && <text class="tick" x={W - PAD.r} y={H - 6} text-anchor="end">{props.labels[n - 1]}</text>}
      </svg>
      <figcaption>
        {props.caption}:{' '}
        {props.series.map((s) => (
          <span class={`key ${s.cls}`}>{s.name} </span>
        ))}
      </figcaption>
    </figure>
  )
}

/** Stacked bars, one per bucket (hour), with a legend. */
export function StackedBars(props: { title: string; labels: string[]; series: Series[]; unit?: string }) {
  const n = props.labels.length
  const totals = props.labels.map((_, i) => props.series.reduce((s, x) => s + (x.values[i] ?? 0), 0))
  const max = niceMax(Math.max(0, ...totals))
  const bw = (W - PAD.l - PAD.r) / Math.max(1, n)
  const y = (v: number) => PAD.t + (H - PAD.t - PAD.b) * (1 - v / max)
  const bars: { x: number; y: number; h: number; cls: string; tip: string }[] = []
  props.labels.forEach((label, i) => {
    let acc = 0
    for (const s of props.series) {
      const v = s.values[i] ?? 0
      if (!v) continue
      bars.push({ x: PAD.l + i * bw + 1, y: y(acc + v), h: y(acc) - y(acc + v), cls: s.cls, tip: `${label}: ${v} ${s.name}` })
      acc += v
    }
  })
  return (
    <Frame title={props.title} caption={props.title} labels={props.labels} series={props.series} max={max} y={y} kind="bars" unit={props.unit}>
      {bars.map((b) => (
        <rect class={b.cls} x={b.x.toFixed(1)} y={b.y.toFixed(1)} width={Math.max(1, bw - 2).toFixed(1)} height={b.h.toFixed(1)}><title>{b.tip}</title></rect>
      ))}
    </Frame>
  )
}

/** Runs of buckets that have data: a line is not drawn across a time with none. */
function runs(values: (number | null)[]): [number, number][][] {
  const out: [number, number][][] = []
  let cur: [number, number][] = []
  values.forEach((v, i) => {
    if (v === null || !Number.isFinite(v)) {
      if (cur.length) out.push(cur)
      cur = []
    } else cur.push([i, v])
  })
  if (cur.length) out.push(cur)
  return out
}

/** One or more lines over the same buckets (latency, a host's load). */
export function Lines(props: { title: string; labels: string[]; series: Series[]; unit: string; max?: number }) {
  const n = props.labels.length
  const max = props.max ?? niceMax(Math.max(0, ...props.series.flatMap((s) => s.values.filter((v): v is number => v !== null))))
  const x = (i: number) => PAD.l + ((W - PAD.l - PAD.r) * (n <= 1 ? 0.5 : i / (n - 1)))
  const y = (v: number) => PAD.t + (H - PAD.t - PAD.b) * (1 - v / max)
  return (
    <Frame title={props.title} caption={`${props.title} (${props.unit})`} labels={props.labels} series={props.series} max={max} y={y} kind="lines" unit={props.unit}>
      {props.series.flatMap((s) =>
        runs(s.values).map((run) =>
          run.length === 1 ? (
            <circle class={`dot ${s.cls}`} cx={x(run[0][0]).toFixed(1)} cy={y(run[0][1]).toFixed(1)} r="2" />
          ) : (
            <polyline class={`line ${s.cls}`} points={run.map(([i, v]) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(' ')} />
          ),
        ),
      )}
    </Frame>
  )
}
