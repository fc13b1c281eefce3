// The dashboard's charts: inline SVG built from plain DOM calls (no library, nothing fetched). Each chart is an
// image with a title and a description for screen readers; the dashboard puts a table of the same numbers beside it.
"use strict";

const Charts = (() => {
  const NS = "http://www.w3.org/2000/svg";
  const WIDTH = 640;
  const LEFT = 180;  // room for the row labels (model slugs)
  const RIGHT = 24;
  const ROW = 30;
  let counter = 0;

  function svg(tag, attributes, ...children) {
    const node = document.createElementNS(NS, tag);
    for (const [name, value] of Object.entries(attributes || {})) node.setAttribute(name, value);
    for (const child of children) node.append(child);
    return node;
  }

  // The chart's root: role img, named by its <title>, described by its <desc>.
  function canvas(height, title, description) {
    counter += 1;
    const titleId = "chart-title-" + counter;
    const descId = "chart-desc-" + counter;
    return svg("svg", {
      viewBox: "0 0 " + WIDTH + " " + height, role: "img", "aria-labelledby": titleId + " " + descId,
      class: "chart",
    }, svg("title", { id: titleId }, title), svg("desc", { id: descId }, description));
  }

  // A round upper bound for an axis and its ticks (1, 2 or 5 times a power of ten).
  function axis(maximum, count) {
    const rough = Math.max(maximum, 1e-9) / count;
    const power = Math.pow(10, Math.floor(Math.log10(rough)));
    const step = [1, 2, 5, 10].map((m) => m * power).find((candidate) => candidate >= rough);
    const ticks = [];
    for (let tick = 0; tick <= maximum + step * 0.999; tick += step) ticks.push(+tick.toPrecision(12));
    return ticks;
  }

  // A chart of one row per entry along a shared x axis from 0 to `maximum` (rounded up): its root, the scale
  // (value -> x) and each row's top y.
  function rowsChart(rows, maximum, title, description, label) {
    const top = 8;
    const bottom = top + rows.length * ROW;
    const chart = canvas(bottom + 40, title, description);
    const ticks = axis(maximum, 5);
    const end = ticks[ticks.length - 1];
    const scale = (value) => LEFT + (value / end) * (WIDTH - LEFT - RIGHT);
    for (const tick of ticks) {
      const x = scale(tick);
      chart.append(svg("line", { x1: x, x2: x, y1: top, y2: bottom, stroke: "#ddd" }));
      chart.append(svg("text", { x, y: bottom + 14, "text-anchor": "middle" }, String(tick)));
    }
    chart.append(svg("text", { x: LEFT + (WIDTH - LEFT - RIGHT) / 2, y: bottom + 30, "text-anchor": "middle" },
      label));
    rows.forEach((row, index) => rowLabel(chart, top + index * ROW, row.label));
    return { chart, scale, rowTop: (index) => top + index * ROW };
  }

  function rowLabel(chart, y, text) {
    const shown = text.length > 26 ? text.slice(0, 25) + "…" : text;
    chart.append(svg("text", { x: LEFT - 8, y: y + ROW / 2 + 4, "text-anchor": "end" }, shown));
  }

  // Horizontal bars, each split into `keys` (stacked in that order): rows [{label, parts: {key: number}}].
  function stackedBars({ title, description, rows, keys, colors, axisLabel }) {
    const maximum = Math.max(1, ...rows.map((row) => keys.reduce((sum, key) => sum + (row.parts[key] || 0), 0)));
    const { chart, scale, rowTop } = rowsChart(rows, maximum, title, description, axisLabel);
    rows.forEach((row, index) => {
      const y = rowTop(index);
      let sum = 0;
      for (const key of keys) {
        const value = row.parts[key] || 0;
        if (value > 0) {
          chart.append(svg("rect", {
            x: scale(sum), y: y + 5, width: scale(sum + value) - scale(sum), height: ROW - 10,
            fill: colors[key], "data-key": key,
          }, svg("title", {}, row.label + ": " + value + " " + key)));
        }
        sum += value;
      }
      chart.append(svg("text", { x: scale(sum) + 4, y: y + ROW / 2 + 4 }, String(sum)));
    });
    return chart;
  }

  // A point and its interval per row: rows [{label, value, low, high, other, otherLow, otherHigh}] (low/high may
  // be null: no interval); `other`, when given, is a second figure on the same axis, drawn as a hollow square
  // with its own interval (otherLow/otherHigh) as a thin orange line just below the row's.
  function intervals({ title, description, rows, axisLabel, otherLabel }) {
    const maximum = Math.max(1e-9, ...rows.map((row) =>
      Math.max(row.high ?? 0, row.value ?? 0, row.other ?? 0, row.otherHigh ?? 0)));
    const { chart, scale, rowTop } = rowsChart(rows, maximum, title, description, axisLabel);
    rows.forEach((row, index) => {
      const middle = rowTop(index) + ROW / 2;
      if (row.value === null || row.value === undefined) return;
      if (row.low !== null && row.high !== null) {
        chart.append(svg("line", { x1: scale(row.low), x2: scale(row.high), y1: middle, y2: middle,
          stroke: "#1a5fb4", "stroke-width": 3, class: "interval" }));
        for (const end of [row.low, row.high]) {
          chart.append(svg("line", { x1: scale(end), x2: scale(end), y1: middle - 7, y2: middle + 7,
            stroke: "#1a5fb4", "stroke-width": 2 }));
        }
      }
      if (row.otherLow !== null && row.otherLow !== undefined) {
        chart.append(svg("line", { x1: scale(row.otherLow), x2: scale(row.otherHigh), y1: middle + 9,
          y2: middle + 9, stroke: "#a34800", "stroke-width": 2, class: "other-interval" }));
      }
      if (row.other !== null && row.other !== undefined) {
        chart.append(svg("rect", { x: scale(row.other) - 5, y: middle - 5, width: 10, height: 10, fill: "none",
          stroke: "#a34800", "stroke-width": 2, class: "other" },
          svg("title", {}, row.label + ": " + row.other.toFixed(2) + " " + otherLabel +
            (row.otherLow !== null && row.otherLow !== undefined ?
              " (" + row.otherLow.toFixed(2) + " to " + row.otherHigh.toFixed(2) + ")" : ""))));
      }
      chart.append(svg("circle", { cx: scale(row.value), cy: middle, r: 5, fill: "#1b1b1b", class: "point" },
        svg("title", {}, row.label + ": " + row.value.toFixed(2) +
          (row.low !== null ? " (" + row.low.toFixed(2) + " to " + row.high.toFixed(2) + ")" : ""))));
    });
    return chart;
  }

  // A square matrix of counts, darker for more: `value(a, b)` for every pair of `labels`.
  function matrix({ title, description, labels, value }) {
    const cell = Math.min(56, (WIDTH - LEFT - RIGHT) / Math.max(labels.length, 1));
    const top = 70;
    const height = top + labels.length * cell + 10;
    const chart = canvas(height, title, description);
    const values = labels.flatMap((a) => labels.map((b) => value(a, b)));
    const maximum = Math.max(1, ...values);
    labels.forEach((label, column) => {
      const x = LEFT + column * cell + cell / 2;
      chart.append(svg("text", { x, y: top - 8, "text-anchor": "start",
        transform: "rotate(-40 " + x + " " + (top - 8) + ")" }, label));
    });
    labels.forEach((rowLabelText, row) => {
      const y = top + row * cell;
      chart.append(svg("text", { x: LEFT - 8, y: y + cell / 2 + 4, "text-anchor": "end" }, rowLabelText));
      labels.forEach((columnLabel, column) => {
        const count = value(rowLabelText, columnLabel);
        const shade = count / maximum;
        chart.append(svg("rect", {
          x: LEFT + column * cell, y, width: cell - 2, height: cell - 2,
          fill: "rgb(" + Math.round(240 - 214 * shade) + "," + Math.round(244 - 149 * shade) + "," +
            Math.round(250 - 70 * shade) + ")",
        }, svg("title", {}, rowLabelText === columnLabel
          ? count + " issues found by " + rowLabelText + " only"
          : count + " issues found by both " + rowLabelText + " and " + columnLabel)));
        chart.append(svg("text", { x: LEFT + column * cell + cell / 2 - 1, y: y + cell / 2 + 4,
          "text-anchor": "middle", fill: shade > 0.55 ? "#fff" : "#1b1b1b" }, String(count)));
      });
    });
    return chart;
  }

  return { stackedBars, intervals, matrix };
})();
