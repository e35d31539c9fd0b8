/*
 * Turns each server-drawn chart (web/views/chart.tsx) into an interactive uPlot plot: the
 * values under the cursor in the legend, drag to zoom in on a time, double-click to zoom back
 * out. The data comes from the figure's data-plot attribute; without this script (or uPlot)
 * the SVG stays, so every page still reads without JavaScript. A file of its own because the
 * CSP allows no inline script.
 */
;(function () {
  'use strict'
  function colour(cls) {
    var probe = document.createElement('span')
    probe.className = 'key ' + cls
    probe.hidden = true
    document.body.appendChild(probe)
    var c = getComputedStyle(probe).getPropertyValue('--plot-colour').trim() || getComputedStyle(probe).color
    probe.remove()
    return c || '#555'
  }
  function plot(fig) {
    var spec
    try {
      spec = JSON.parse(fig.getAttribute('data-plot'))
    } catch (e) {
      return
    }
    var xs = spec.labels.map(function (_, i) { return i })
    var stacked = spec.kind === 'bars'
    // Stacked bars: each series drawn as the running total, the biggest first; the legend still shows each one's own value.
    var raw = spec.series.map(function (s) { return s.values })
    var data = [xs]
    var series = [{ label: spec.xLabel || 'time', value: function (u, v) { return v == null ? '' : spec.labels[v] } }]
    var acc = xs.map(function () { return 0 })
    var drawn = spec.series.map(function (s, si) {
      var vals = s.values.map(function (v, i) {
        if (!stacked) return v
        acc[i] += v || 0
        return acc[i]
      })
      return { s: s, si: si, vals: vals }
    })
    if (stacked) drawn.reverse()
    drawn.forEach(function (d) {
      var c = colour(d.s.cls)
      data.push(d.vals)
      series.push({
        label: d.s.name,
        stroke: c,
        fill: stacked ? c : undefined,
        width: stacked ? 0 : 2,
        spanGaps: false,
        paths: stacked ? uPlot.paths.bars({ size: [0.8, 40] }) : undefined,
        points: { show: !stacked },
        value: function (u, v, sidx, i) {
          var r = i == null ? null : raw[d.si][i]
          return r == null ? '–' : String(r) + (spec.unit ? ' ' + spec.unit : '')
        },
      })
    })
    var width = Math.max(280, fig.clientWidth || 640)
    var opts = {
      title: spec.title,
      width: width,
      height: 200,
      series: series,
      // Half a bucket each side, so the first and last bars are whole.
      scales: { x: { time: false, range: function (u, min, max) { return [min - 0.5, max + 0.5] } } },
      axes: [
        { values: function (u, splits) { return splits.map(function (v) { return spec.labels[Math.round(v)] || '' }) } },
        // Stacked bars count messages: whole numbers on the scale, not 0.25 of a message.
        stacked ? { incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1e3, 2e3, 5e3, 1e4, 2e4, 5e4, 1e5, 2e5, 5e5, 1e6] } : {},
      ],
      cursor: { drag: { x: true, y: false } },
      legend: { live: true },
    }
    var holder = document.createElement('div')
    holder.className = 'uplot-holder'
    var svg = fig.querySelector('svg')
    if (svg) svg.replaceWith(holder)
    else fig.prepend(holder)
    new uPlot(opts, data, holder)
    fig.classList.add('interactive')
  }
  function all() {
    if (typeof uPlot === 'undefined') return
    document.querySelectorAll('figure.chart[data-plot]:not(.interactive)').forEach(plot)
  }
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', all)
  else all()
})()
