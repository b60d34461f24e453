// cnnlab explore: one unit explained (receptive field, kernel, patch, products, sum, bias,
// activation) and the overlays that outline it on the input and on the layer before.
"use strict";

async function explainUnit(selected, scroll) {
  state.selected = selected;
  const input = currentInput();
  if (!input) return;
  for (const panel of panels.values()) {
    panel.node.classList.toggle("selected", panel.row.index === selected.index);
    if (panel.row.index !== selected.index) panel.explain.hidden = true;
  }
  try {
    const unit = await api("/api/unit", {
      input,
      transform: state.transform,
      layer: selected.index,
      channel: selected.channel,
      y: selected.y,
      x: selected.x,
    });
    if (state.selected !== selected) return;
    state.unit = unit;
    const panel = panels.get(unit.index);
    renderExplanation(panel, unit);
    drawOverlays();
    if (scroll) panel.explain.scrollIntoView({ block: "nearest", behavior: "smooth" });
  } catch (error) {
    showError(error);
  }
}

function matrix(rows, scale, caption, padded) {
  const table = element("table", { class: "matrix" });
  if (caption) table.append(element("caption", { text: caption }));
  rows.forEach((values, r) => {
    const tr = element("tr");
    values.forEach((v, c) => {
      const cell = element("td");
      if (v === null) {
        cell.textContent = "pad";
        cell.style.color = "#999";
      } else {
        const rgb = diverging(v, scale);
        cell.textContent = Math.abs(v) >= 1000 ? v.toExponential(1) : v.toFixed(2).replace("-", "−");
        cell.title = String(v);
        cell.style.background = rgbText(rgb);
        if (darkText(rgb)) cell.style.color = "#fff";
        if (padded && padded(r, c)) cell.style.opacity = "0.45";
      }
      tr.append(cell);
    });
    table.append(tr);
  });
  return table;
}

const maxAbs = (rows) => Math.max(1e-12, ...rows.flat(Infinity).filter((v) => v !== null).map(Math.abs));

function rangeText(box, axis) {
  const [lo, hi] = axis === "rows" ? [box.top, box.bottom] : [box.left, box.right];
  return `${fmt(lo, Number.isInteger(lo) ? 0 : 1)}–${fmt(hi - 1, Number.isInteger(hi) ? 0 : 1)}`;
}

function renderExplanation(panel, unit) {
  const box = panel.explain;
  box.hidden = false;
  box.setAttribute("data-testid", "explanation");
  const info = state.info;
  const [, inH, inW] = info.input_shape;
  const children = [
    element(
      "div", { class: "headline" },
      `${unit.layer} (${unit.type}) · channel ${unit.channel} · unit y ${unit.y}, x ${unit.x} = `,
      element("span", { class: "value", text: fmt(unit.value, 4) }),
    ),
  ];
  const field = unit.field;
  children.push(element("div", {
    text: field.whole
      ? `Receptive field: the whole ${inH}×${inW} input (outlined on “What the model sees”).`
      : `Receptive field: ${fmt(field.size[0], 0)}×${fmt(field.size[1], 0)} input pixels, rows ${rangeText(field, "rows")}, columns ${rangeText(field, "cols")} of the ${inH}×${inW} input (outlined on “What the model sees”).`,
  }));
  const from = unit.source ? sourceName(unit.source) : "its input";
  if (unit.kind === "conv") children.push(...convExplanation(unit, from));
  else if (unit.kind === "pool") children.push(...poolExplanation(unit, from));
  else if (unit.kind === "elementwise") {
    const step = unit.step;
    children.push(element("div", { class: "formula", text: `${step.type}: ${step.formula} with z = ${fmt(step.input)} (from ${from}) → ${fmt(step.value)}` }));
  }
  if (unit.then.length) {
    const list = element("ol", { class: "steps" });
    for (const step of unit.then) {
      let text = `${step.layer} (${step.type}): ${step.formula}, z = ${fmt(step.input)} → ${fmt(step.value)}`;
      if (step.numbers) {
        const n = step.numbers;
        text += ` (mean ${fmt(n.mean)}, var ${fmt(n.var)}, gamma ${fmt(n.gamma)}, beta ${fmt(n.beta)})`;
      }
      list.append(element("li", { class: "formula", text }));
    }
    children.push(element("div", { text: "Then, on this value alone:" }), list);
  }
  box.replaceChildren(...children);
}

function convExplanation(unit, from) {
  const conv = unit.conv;
  const parts = [];
  const pb = conv.patch_box;
  parts.push(element("div", {
    text: `Input: ${from}, ${conv.channels.length === 1 ? `channel ${conv.channels[0]}` : `channels ${conv.channels[0]}–${conv.channels[conv.channels.length - 1]}`}; `
      + `kernel ${conv.kernel_size.join("×")}, stride ${conv.stride.join("×")}, padding ${conv.padding.join("×")}`
      + `${conv.dilation.some((d) => d > 1) ? `, dilation ${conv.dilation.join("×")}` : ""}`
      + ` → patch rows ${pb.top}–${pb.bottom - 1}, columns ${pb.left}–${pb.right - 1} (outlined on ${from}).`,
  }));
  parts.push(element("div", { class: "formula", text: "z = Σ over input channels c, kernel rows i, columns j of kernel[c,i,j] × patch[c,i,j]  +  bias" }));
  const sourceRow = unit.source && unit.source.kind === "layer" ? state.info.layers[unit.source.index] : null;
  const [, mapH, mapW] = sourceRow ? sourceRow.output_shape : state.info.input_shape;
  const padded = (r, c) => {
    const y = pb.top + r * conv.dilation[0];
    const x = pb.left + c * conv.dilation[1];
    return y < 0 || x < 0 || y >= mapH || x >= mapW;
  };
  const kScale = maxAbs(conv.kernel);
  const pScale = maxAbs(conv.patch);
  const xScale = maxAbs(conv.products);
  const list = element("div", { class: "channels" });
  const shownFirst = Math.min(conv.detailed_channels, 4);
  const addChannel = (k) => {
    list.append(element(
      "div", { class: "channel" },
      element("div", { class: "caption", text: `input channel ${conv.channels[k]}: Σ kernel × patch = ${fmt(conv.channel_sums[k])}` }),
      matrix(conv.kernel[k], kScale, "kernel"),
      element("span", { class: "op", text: "×" }),
      matrix(conv.patch[k], pScale, "input patch", padded),
      element("span", { class: "op", text: "=" }),
      matrix(conv.products[k], xScale, "products"),
    ));
  };
  for (let k = 0; k < shownFirst; k++) addChannel(k);
  parts.push(list);
  if (conv.channels.length > shownFirst) {
    const rest = conv.channel_sums.slice(shownFirst).map((s) => fmt(s, 3)).join(", ");
    const line = element("div", { class: "hint", text: `${conv.channels.length - shownFirst} more input channels, sums ${rest.length > 300 ? rest.slice(0, 300) + "…" : rest} ` });
    if (conv.detailed_channels > shownFirst) {
      const more = element("button", { type: "button", text: `show ${conv.detailed_channels - shownFirst} more` });
      more.addEventListener("click", () => {
        for (let k = shownFirst; k < conv.detailed_channels; k++) addChannel(k);
        line.remove();
      });
      line.append(more);
    }
    parts.push(line);
  }
  const bias = conv.bias === null ? 0 : conv.bias;
  const agrees = Math.abs(conv.z - unit.value) <= 1e-4 * Math.max(1, Math.abs(unit.value));
  parts.push(element(
    "div", { class: "formula" },
    `sum over ${conv.channels.length} channel${conv.channels.length === 1 ? "" : "s"} = ${fmt(conv.sum)};  + bias ${conv.bias === null ? "(none) 0" : fmt(bias)}  = z = `,
    element("b", { text: fmt(conv.z) }),
    element("span", { class: agrees ? "check" : "mismatch", text: agrees ? `  ✓ the map's value ${fmt(unit.value)}` : `  ✗ the map shows ${fmt(unit.value)}` }),
  ));
  return parts;
}

function poolExplanation(unit, from) {
  const pool = unit.pool;
  const pb = pool.patch_box;
  const what = pool.op === "max" ? "the largest value" : `the mean${pool.divisor ? ` (sum / ${pool.divisor})` : ""}`;
  return [
    element("div", { text: `${from}, channel ${unit.channel}: window rows ${pb.top}–${pb.bottom - 1}, columns ${pb.left}–${pb.right - 1}; this unit takes ${what}.` }),
    matrix(pool.patch, maxAbs(pool.patch), "window"),
    element("div", { class: "formula", text: `${pool.op}(window) = ${fmt(pool.result)}` }),
  ];
}

// overlays: the selected unit, its receptive field on the input, its patch on its source
function drawOverlays() {
  for (const panel of panels.values()) drawPanelOverlay(panel);
  drawSeenOverlay();
}

function drawSeenOverlay() {
  const canvas = $("#seen-overlay");
  const ratio = window.devicePixelRatio || 1;
  canvas.width = Math.round(canvas.clientWidth * ratio);
  canvas.height = Math.round(canvas.clientHeight * ratio);
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  const unit = state.unit;
  if (!unit || !state.info) return;
  const [, h, w] = state.info.input_shape;
  const sx = canvas.width / w;
  const sy = canvas.height / h;
  const f = unit.field;
  ctx.lineWidth = 2 * ratio;
  ctx.strokeStyle = "#ff3b30";
  ctx.fillStyle = "rgba(255, 59, 48, 0.12)";
  ctx.fillRect(f.left * sx, f.top * sy, (f.right - f.left) * sx, (f.bottom - f.top) * sy);
  ctx.strokeRect(f.left * sx, f.top * sy, (f.right - f.left) * sx, (f.bottom - f.top) * sy);
  if (!f.whole && f.centre) {
    ctx.fillStyle = "#ff3b30";
    ctx.beginPath();
    ctx.arc((f.centre[1] + 0.5) * sx, (f.centre[0] + 0.5) * sy, 2.5 * ratio, 0, 2 * Math.PI);
    ctx.fill();
  }
}

function drawPanelOverlay(panel) {
  const grid = panel.grid;
  const ctx = panel.overlay.getContext("2d");
  ctx.clearRect(0, 0, panel.overlay.width, panel.overlay.height);
  const unit = state.unit;
  if (!grid || !unit) return;
  const px = panel.overlay.width / grid.gridW;
  if (grid.kind === "vector") {
    if (grid.maps && unit.index === panel.row.index) {
      ctx.lineWidth = Math.max(2, px / 5);
      ctx.strokeStyle = "#ff3b30";
      const i = unit.channel;
      ctx.strokeRect((i % grid.columns) * px, Math.floor(i / grid.columns) * px, px, px);
    }
    return;
  }
  const tileOrigin = (k) => [Math.floor(k / grid.columns) * (grid.h + 1), (k % grid.columns) * (grid.w + 1)];
  if (unit.index === panel.row.index && unit.channel < grid.n) {
    const [top, left] = tileOrigin(unit.channel);
    ctx.lineWidth = Math.max(2, px / 4);
    ctx.strokeStyle = "#ff3b30";
    ctx.strokeRect((left + unit.x) * px, (top + unit.y) * px, px, px);
    ctx.strokeRect(left * px, top * px, grid.w * px, grid.h * px);
  }
  const source = unit.source;
  const detail = unit.conv || unit.pool;
  if (source && source.kind === "layer" && source.index === panel.row.index && !source.via.length && detail) {
    const channels = unit.conv ? unit.conv.channels : [unit.channel];
    const b = detail.patch_box;
    ctx.lineWidth = Math.max(1.5, px / 6);
    ctx.strokeStyle = "#ff9500";
    for (const k of channels) {
      if (k >= grid.n) continue;
      const [top, left] = tileOrigin(k);
      ctx.save();
      ctx.beginPath();
      ctx.rect(left * px, top * px, grid.w * px, grid.h * px);
      ctx.clip();
      ctx.strokeRect((left + b.left) * px, (top + b.top) * px, (b.right - b.left) * px, (b.bottom - b.top) * px);
      ctx.restore();
    }
  }
}
