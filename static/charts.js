// Small SVG charts drawn by hand: a histogram and a line chart. Every chart also has a
// text summary next to it (figcaption), which is what a screen reader reads.

const SVG = "http://www.w3.org/2000/svg";

function node(name, attributes = {}, text = "") {
  const element = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, String(value));
  if (text) element.textContent = text;
  return element;
}

function clear(svg) {
  while (svg.firstChild) svg.removeChild(svg.firstChild);
}

export function formatNumber(value) {
  if (value === null || value === undefined || Number.isNaN(value)) return "—";
  if (Number.isInteger(value)) return String(value);
  const magnitude = Math.abs(value);
  if (magnitude !== 0 && (magnitude < 0.001 || magnitude >= 1e6)) return value.toExponential(2);
  return String(Number(value.toFixed(magnitude < 1 ? 3 : 2)));
}

export function bins(values, count) {
  const low = Math.min(...values);
  const high = Math.max(...values);
  const width = high > low ? (high - low) / count : 1;
  const counts = new Array(count).fill(0);
  for (const value of values) {
    const at = high > low ? Math.min(count - 1, Math.floor((value - low) / width)) : 0;
    counts[at] += 1;
  }
  return { low, high, width, counts };
}

export function drawHistogram(svg, values, { label, unit, binCount = 12 }) {
  clear(svg);
  if (!values.length) return;
  const { low, width, counts } = bins(values, binCount);
  const box = { left: 48, right: 630, top: 12, bottom: 180 };
  const tallest = Math.max(...counts);
  const barWidth = (box.right - box.left) / counts.length;
  svg.appendChild(node("line", { x1: box.left, y1: box.bottom, x2: box.right, y2: box.bottom, class: "axis" }));
  svg.appendChild(node("line", { x1: box.left, y1: box.top, x2: box.left, y2: box.bottom, class: "axis" }));
  svg.appendChild(node("text", { x: box.left - 6, y: box.top + 10, "text-anchor": "end", class: "tick" }, String(tallest)));
  svg.appendChild(node("text", { x: box.left - 6, y: box.bottom, "text-anchor": "end", class: "tick" }, "0"));
  counts.forEach((count, at) => {
    const height = tallest ? ((box.bottom - box.top) * count) / tallest : 0;
    const from = low + at * width;
    const bar = node("rect", {
      x: box.left + at * barWidth + 1,
      y: box.bottom - height,
      width: Math.max(barWidth - 2, 1),
      height,
      class: "bar",
    });
    bar.appendChild(node("title", {}, `${formatNumber(from)} to ${formatNumber(from + width)}: ${count}`));
    svg.appendChild(bar);
  });
  const suffix = unit ? ` ${unit}` : "";
  svg.appendChild(node("text", { x: box.left, y: box.bottom + 18, class: "tick" }, formatNumber(low) + suffix));
  svg.appendChild(
    node("text", { x: box.right, y: box.bottom + 18, "text-anchor": "end", class: "tick" },
      formatNumber(low + width * counts.length) + suffix),
  );
  svg.appendChild(
    node("text", { x: (box.left + box.right) / 2, y: box.bottom + 34, "text-anchor": "middle", class: "label" },
      `${label}${suffix}`),
  );
}

// `points`: [{t: milliseconds, v: number|null}], oldest first. Gaps (null) break the line.
export function drawLine(svg, points, { unit = "", windowMs = 10 * 60 * 1000 } = {}) {
  clear(svg);
  const box = { left: 52, right: 390, top: 10, bottom: 120 };
  svg.appendChild(node("line", { x1: box.left, y1: box.bottom, x2: box.right, y2: box.bottom, class: "axis" }));
  svg.appendChild(node("line", { x1: box.left, y1: box.top, x2: box.left, y2: box.bottom, class: "axis" }));
  const known = points.filter((point) => typeof point.v === "number");
  if (!known.length) return;
  const now = points[points.length - 1].t;
  const start = now - windowMs;
  const top = Math.max(...known.map((point) => point.v)) || 1;
  const x = (t) => box.left + ((t - start) / windowMs) * (box.right - box.left);
  const y = (v) => box.bottom - (v / top) * (box.bottom - box.top);
  let path = "";
  let drawing = false;
  for (const point of points) {
    if (point.t < start || typeof point.v !== "number") {
      drawing = false;
      continue;
    }
    path += `${drawing ? "L" : "M"}${x(point.t).toFixed(1)},${y(point.v).toFixed(1)} `;
    drawing = true;
  }
  svg.appendChild(node("path", { d: path.trim(), class: "series" }));
  const last = known[known.length - 1];
  svg.appendChild(node("circle", { cx: x(last.t), cy: y(last.v), r: 3, class: "series-dot" }));
  const suffix = unit ? ` ${unit}` : "";
  svg.appendChild(node("text", { x: box.left - 6, y: box.top + 8, "text-anchor": "end", class: "tick" }, formatNumber(top)));
  svg.appendChild(node("text", { x: box.left - 6, y: box.bottom, "text-anchor": "end", class: "tick" }, "0"));
  svg.appendChild(node("text", { x: box.left, y: box.bottom + 16, class: "tick" }, `${Math.round(windowMs / 60000)} min ago`));
  svg.appendChild(node("text", { x: box.right, y: box.bottom + 16, "text-anchor": "end", class: "tick" }, `now${suffix ? ` (${unit})` : ""}`));
}
