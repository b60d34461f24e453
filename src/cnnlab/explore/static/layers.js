// cnnlab explore: one panel per summary layer, residual blocks and Inception modules as lanes,
// feature-map tiles, and which unit a click lands on.
"use strict";

function sourceName(source) {
  if (!source) return "?";
  if (source.kind === "input") return "the image";
  if (source.kind === "merge") return `the ${state.info.merges[source.index].label}`;
  const row = state.info.layers[source.index];
  return row.call ? `${row.name} (call ${row.call + 1})` : row.name;
}

function viaText(source) {
  return source && source.via && source.via.length ? ` via ${source.via.join(", ")}` : "";
}

function buildPanel(row) {
  const stats = [
    `params ${thousands(row.params)}`,
    `MACs ${thousands(row.macs)}`,
    `RF ${fieldText(row.receptive_field)}`,
    `jump ${fieldText(row.jump)}`,
    `start ${fieldText(row.start)}`,
  ].join(" · ");
  const header = element(
    "header", {},
    element("span", { class: "name", text: row.name }),
    element("span", { class: "type", text: row.type }),
    element("span", { class: "shape", text: shapeText(row.output_shape) }),
    element("span", { class: "stats", text: stats }),
  );
  const previous = state.info.layers[row.index - 1];
  const inputs = row.inputs || [];
  const direct = inputs.length === 1 && inputs[0].kind === "layer" && previous
    && inputs[0].index === previous.index && !inputs[0].via.length;
  if (row.call > 0) header.append(element("span", { class: "stats", text: `call ${row.call + 1} of this module` }));
  if (!direct && inputs.length) {
    header.append(element("span", { class: "from", text: `input: ${inputs.map((s) => sourceName(s) + viaText(s)).join(" + ")}` }));
  }
  const canvas = element("canvas", { class: "tiles" });
  const overlay = element("canvas", { class: "overlay" });
  const note = element("div", { class: "note" });
  const explain = element("div", { class: "explain" });
  explain.hidden = true;
  const node = element(
    "article",
    { class: "layer", "data-layer": row.name, "data-index": String(row.index) },
    header,
    element("div", { class: "maps" }, canvas, overlay),
    note,
    explain,
  );
  const panel = { row, node, canvas, overlay, note, explain, payload: null, grid: null };
  panels.set(row.index, panel);
  canvas.addEventListener("click", (event) => clickPanel(panel, event));
  canvas.addEventListener("mousemove", (event) => hoverPanel(panel, event));
  return node;
}

function blockGroups(info) {
  // merges done inside one module (not the model itself) become a block with lanes
  const byContainer = new Map();
  for (const merge of info.merges) {
    if (!merge.container) continue;
    byContainer.set(merge.container, [...(byContainer.get(merge.container) || []), merge]);
  }
  const groups = new Map(); // first row index -> group
  for (const [container, merges] of byContainer) {
    if (merges.length !== 1) continue;
    const prefix = `${container}.`;
    const inside = info.layers.filter((row) => row.name.startsWith(prefix)).map((row) => row.index);
    if (!inside.length) continue;
    const first = Math.min(...inside);
    const last = Math.max(...inside);
    if (last - first + 1 !== inside.length) continue; // not contiguous: show the merge inline
    groups.set(first, { container, merge: merges[0], first, last });
  }
  return groups;
}

function mergeNode(merge) {
  const names = merge.inputs.map((s) => sourceName(s) + viaText(s));
  const symbol = merge.op === "add" ? "⊕" : merge.op === "concatenate" ? "⧉" : "∘";
  let detail = names.join(" + ");
  if (merge.op === "concatenate") {
    const widths = merge.inputs.map((s) => {
      const row = s.kind === "layer" ? state.info.layers[s.index] : null;
      return row && row.output_shape ? row.output_shape[0] : "?";
    });
    detail = `${widths.join(" + ")} channels`;
  }
  return element(
    "div",
    { class: "merge", "data-merge": String(merge.index), title: names.join(" + ") },
    element("span", { class: "op", text: `${symbol} ${merge.label}` }),
    element("span", { text: ` — ${detail} → ${shapeText(merge.output_shape)}` }),
  );
}

function buildBlock(group) {
  const info = state.info;
  const { merge } = group;
  const onLane = new Set(merge.lanes.flat());
  const body = element("div", { class: "block-body" });
  const kind = merge.op === "add" ? "residual block" : merge.op === "concatenate" ? `${merge.inputs.length} parallel branches` : "block";
  const block = element(
    "section",
    { class: `block ${merge.op}`, "data-container": group.container },
    element("h3", {}, element("span", { class: "kind", text: `${group.container} (${merge.container_type})` }), ` — ${kind}`),
    body,
  );
  for (let i = group.first; i < merge.position && i <= group.last; i++) {
    if (!onLane.has(i)) body.append(buildPanel(info.layers[i]));
  }
  const lanes = element("div", { class: "lanes" });
  const order = merge.lanes.map((lane, k) => ({ lane, k })).sort((a, b) => {
    const first = (x) => (x.lane.length ? x.lane[0] : Infinity);
    return first(a) - first(b);
  });
  for (const { lane, k } of order) {
    const source = merge.inputs[k];
    if (!lane.length) {
      lanes.append(element("div", { class: "lane identity", text: `identity shortcut: ${sourceName(source)}${viaText(source)}` }));
      continue;
    }
    const column = element("div", { class: "lane" });
    const longest = Math.max(...merge.lanes.map((l) => l.length));
    const child = info.layers[lane[0]].name.slice(group.container.length + 1).split(".")[0];
    let label = child;
    if (merge.op === "add") label = lane.length === longest ? "main path" : `shortcut (${child})`;
    column.append(element("div", { class: "lane-title", text: label }));
    for (const index of lane) column.append(buildPanel(info.layers[index]));
    lanes.append(column);
  }
  body.append(lanes, mergeNode(merge));
  for (let i = merge.position; i <= group.last; i++) {
    if (!onLane.has(i)) body.append(buildPanel(info.layers[i]));
  }
  return block;
}

function buildLayers(info) {
  const root = $("#layers");
  root.replaceChildren();
  panels.clear();
  const groups = blockGroups(info);
  const grouped = new Set([...groups.values()].map((g) => g.merge.index));
  const inline = info.merges.filter((m) => !grouped.has(m.index));
  for (let i = 0; i < info.layers.length; i++) {
    for (const merge of inline.filter((m) => m.position === i)) root.append(mergeNode(merge));
    const group = groups.get(i);
    if (group) {
      root.append(buildBlock(group));
      i = group.last;
    } else {
      root.append(buildPanel(info.layers[i]));
    }
  }
  for (const merge of inline.filter((m) => m.position >= info.layers.length)) root.append(mergeNode(merge));
}

function tileScale(gridW, gridH, h, w, available) {
  const wanted = Math.ceil(72 / Math.max(h, w));
  const fits = Math.floor(available / gridW);
  return Math.max(1, Math.min(wanted, fits, Math.floor(900 / Math.max(gridH, 1)) || 1));
}

function drawLayer(panel, payload) {
  if (!panel) return;
  panel.payload = payload;
  const { canvas, note } = panel;
  const ctx = canvas.getContext("2d");
  const available = Math.max(120, panel.node.clientWidth - 24);
  if (payload.tiles) {
    const [channels, h, w] = payload.shape;
    const n = payload.shown;
    const columns = payload.columns;
    const rows = Math.ceil(n / columns);
    const gridW = columns * (w + 1) - 1;
    const gridH = rows * (h + 1) - 1;
    const bytes = bytesOf(payload.tiles);
    const image = new ImageData(gridW, gridH);
    for (let k = 0; k < n; k++) {
      const top = Math.floor(k / columns) * (h + 1);
      const left = (k % columns) * (w + 1);
      for (let y = 0; y < h; y++) {
        for (let x = 0; x < w; x++) {
          const [r, g, b] = COLORMAPS.viridis[bytes[k * h * w + y * w + x]];
          image.data.set([r, g, b, 255], 4 * ((top + y) * gridW + left + x));
        }
      }
    }
    canvas.width = gridW;
    canvas.height = gridH;
    ctx.putImageData(image, 0, 0);
    const scale = tileScale(gridW, gridH, h, w, available);
    canvas.style.width = `${gridW * scale}px`;
    canvas.classList.add("clickable");
    panel.grid = { kind: "maps", columns, h, w, n, gridW, gridH, scale };
    note.replaceChildren(`${channels} map${channels === 1 ? "" : "s"} of ${h}×${w}`);
    if (n < channels) {
      const more = element("button", { type: "button", text: `show all ${channels}` });
      more.addEventListener("click", () => {
        state.fullMaps.add(panel.row.index);
        requestForward({ maps: true });
      });
      note.append(`, first ${n} shown `, more);
    }
  } else if (payload.values) {
    const values = floatsOf(payload.values);
    const n = values.length;
    const columns = Math.min(n, 64);
    const rows = Math.ceil(n / columns);
    const image = new ImageData(columns, rows);
    const span = payload.max - payload.min;
    values.forEach((v, i) => {
      const [r, g, b] = colour("viridis", span > 0 ? (v - payload.min) / span : 0.5);
      image.data.set([r, g, b, 255], 4 * i);
    });
    canvas.width = columns;
    canvas.height = rows;
    ctx.putImageData(image, 0, 0);
    const scale = Math.max(2, Math.min(18, Math.floor(available / columns)));
    canvas.style.width = `${columns * scale}px`;
    const maps = payload.shape.length === 3; // C maps of 1x1: one value per channel
    canvas.classList.toggle("clickable", maps);
    panel.grid = { kind: "vector", columns, values, scale, gridW: columns, gridH: rows, maps };
    const what = maps ? `${n} maps of 1×1 (one value each)` : `${n} value${n === 1 ? "" : "s"}`;
    note.replaceChildren(`${what} from ${fmt(payload.min, 3)} to ${fmt(payload.max, 3)} (colour: low → high, one scale for the layer)`);
  } else {
    note.replaceChildren("no tensor output");
  }
  sizeOverlay(panel);
  drawPanelOverlay(panel);
}

function sizeOverlay(panel) {
  const grid = panel.grid;
  if (!grid) return;
  const ratio = window.devicePixelRatio || 1;
  panel.overlay.width = Math.round(grid.gridW * grid.scale * ratio);
  panel.overlay.height = Math.round(grid.gridH * grid.scale * ratio);
}

function unitAt(panel, event) {
  const grid = panel.grid;
  if (!grid) return null;
  const gx = Math.floor((event.offsetX / panel.canvas.clientWidth) * grid.gridW);
  const gy = Math.floor((event.offsetY / panel.canvas.clientHeight) * grid.gridH);
  if (grid.kind === "vector") {
    const i = gy * grid.columns + gx;
    return i < grid.values.length ? { i } : null;
  }
  const col = Math.floor(gx / (grid.w + 1));
  const row = Math.floor(gy / (grid.h + 1));
  const x = gx - col * (grid.w + 1);
  const y = gy - row * (grid.h + 1);
  const channel = row * grid.columns + col;
  if (x >= grid.w || y >= grid.h || channel >= grid.n || col >= grid.columns) return null;
  return { channel, y, x };
}

function hoverPanel(panel, event) {
  const unit = unitAt(panel, event);
  if (!unit) {
    panel.canvas.title = "";
  } else if (unit.i !== undefined) {
    const click = panel.grid.maps ? ": click for its numbers" : "";
    panel.canvas.title = `${panel.grid.maps ? "channel" : "unit"} ${unit.i}: ${fmt(panel.grid.values[unit.i])}${click}`;
  } else {
    panel.canvas.title = `channel ${unit.channel}, y ${unit.y}, x ${unit.x}: click for its numbers`;
  }
}

function clickPanel(panel, event) {
  const unit = unitAt(panel, event);
  if (!unit) return;
  if (unit.i === undefined) explainUnit({ index: panel.row.index, ...unit }, true);
  else if (panel.grid.maps) explainUnit({ index: panel.row.index, channel: unit.i, y: 0, x: 0 }, true);
}
