// Charts drawn by uPlot (vendored: ../vendor/uPlot.esm.js, MIT, its licence beside it). Each chart keeps
// its uPlot instance on its container (``el.chart``) and follows the container's width.

import uPlot from "../vendor/uPlot.esm.js";

const COLORS = ["#0f766e", "#b42318", "#1d4ed8", "#b54708", "#7c3aed", "#047857"];
const HEIGHT = 220;

function follow(el, plot) {
  let width = el.clientWidth;
  el.chartObserver = new ResizeObserver(() => {
    if (el.clientWidth === width) return; // only the width follows the page; the height is the chart's own
    width = el.clientWidth;
    plot.setSize({ width: Math.max(200, width), height: HEIGHT });
  });
  el.chartObserver.observe(el);
}

function mount(el, options, data) {
  if (el.chart) {
    el.chartObserver.disconnect();
    el.chart.destroy();
  }
  el.replaceChildren();
  const plot = new uPlot({ width: Math.max(200, el.clientWidth), height: HEIGHT, ...options }, data, el);
  el.chart = plot;
  follow(el, plot);
  return plot;
}

// A time series: ``times`` (Unix seconds) against ``series`` ([{label, values, unit, axis: 0|1}]); a
// second y axis (on the right) for series with ``axis: 1``.
export function timeChart(el, times, series) {
  const right = series.some((s) => s.axis === 1);
  const options = {
    series: [{}, ...series.map((s, i) => ({
      label: s.label, stroke: COLORS[i % COLORS.length], width: 2, scale: s.axis === 1 ? "right" : "y",
      fill: i === 0 ? "rgba(15,118,110,0.08)" : undefined, value: (u, v) => (v === null ? "—" : `${+v.toFixed(3)}${s.unit || ""}`),
    }))],
    scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(1, max)] }, right: { range: (u, min, max) => [0, Math.max(1, max)] } },
    axes: [{}, { scale: "y", size: 50 }, ...(right ? [{ scale: "right", side: 1, grid: { show: false }, size: 50 }] : [])],
  };
  return mount(el, options, [times, ...series.map((s) => s.values)]);
}

// Bars, one per category (``labels``, called ``name`` in the legend), of one or more ``series`` ([{label, values}]).
export function barChart(el, labels, series, name) {
  const xs = labels.map((_, i) => i);
  const bars = uPlot.paths.bars({ size: [0.6, 60] });
  const options = {
    series: [{ label: name, value: (u, v) => (v === null ? "—" : labels[v] ?? "") }, ...series.map((s, i) => ({
      label: s.label, stroke: COLORS[i % COLORS.length], fill: COLORS[i % COLORS.length] + "cc", paths: bars, points: { show: false },
    }))],
    scales: { x: { time: false, range: () => [-0.5, Math.max(0.5, labels.length - 0.5)] }, y: { range: (u, min, max) => [0, Math.max(1, max)] } },
    axes: [
      { splits: () => xs, values: (u, splits) => splits.map((i) => shorten(labels[i] ?? "")), gap: 4 },
      { size: 60 },
    ],
  };
  return mount(el, options, [xs, ...series.map((s) => s.values)]);
}

function shorten(label) {
  return label.length > 22 ? `${label.slice(0, 20)}…` : label;
}
