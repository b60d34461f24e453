// cnnlab explore: the page is a thin client of the JSON API (docs/explore-api.md).
// Everything is computed on the server; this file draws what comes back and sends what the
// user does. No framework, no build step, nothing loaded from elsewhere.
"use strict";

// ---- small helpers ------------------------------------------------------------------------
const $ = (selector, root = document) => root.querySelector(selector);
const $$ = (selector, root = document) => Array.from(root.querySelectorAll(selector));

function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("data-")) node.setAttribute(key, value);
    else node[key] = value;
  }
  for (const child of children) {
    if (child !== null && child !== undefined) node.append(child);
  }
  return node;
}

function bytesOf(b64) {
  const text = atob(b64);
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i);
  return out;
}

function floatsOf(b64) {
  const bytes = bytesOf(b64);
  return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
}

function b64Of(bytes) {
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    text += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  }
  return btoa(text);
}

const thousands = (n) => Number(n).toLocaleString("en-US");
const shapeText = (shape) => (shape ? shape.join("×") : "—");

function fmt(value, digits = 4) {
  if (value === null || value === undefined || Number.isNaN(value)) return "—";
  if (value === 0) return "0";
  if (!Number.isFinite(value)) return value > 0 ? "∞" : "−∞";
  const text = Math.abs(value) >= 1e4 || (value !== 0 && Math.abs(value) < 1e-3)
    ? value.toExponential(2) : value.toFixed(digits);
  return text.replace("-", "−");
}

function fieldText(value) {
  if (value === null || value === undefined) return "—";
  return Array.isArray(value) ? value.join("×") : String(value);
}

function debounce(fn, ms) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

let errorTimer = null;
function showError(error) {
  const box = $("#error");
  box.textContent = error instanceof Error ? error.message : String(error);
  box.hidden = false;
  clearTimeout(errorTimer);
  errorTimer = setTimeout(() => { box.hidden = true; }, 8000);
}

async function api(path, body, raw) {
  const init = body === undefined && raw === undefined ? {} : {
    method: "POST",
    headers: { "content-type": raw ? "application/octet-stream" : "application/json" },
    body: raw || JSON.stringify(body),
  };
  const response = await fetch(path, init);
  let data = null;
  try {
    data = await response.json();
  } catch (_) {
    throw new Error(`${path}: HTTP ${response.status}`);
  }
  if (!response.ok) throw new Error(data && data.error ? data.error : `${path}: HTTP ${response.status}`);
  return data;
}

// colours: [r, g, b] of a value in 0..1 (clamped) in a matplotlib colour map
function colour(map, t) {
  const table = COLORMAPS[map];
  const i = Math.max(0, Math.min(255, Math.round(t * 255)));
  return table[i];
}
function diverging(value, scale) {
  return colour("RdBu_r", scale > 0 ? 0.5 + value / (2 * scale) : 0.5);
}
const rgbText = ([r, g, b]) => `rgb(${r}, ${g}, ${b})`;
const darkText = ([r, g, b]) => 0.299 * r + 0.587 * g + 0.114 * b < 120;

// ---- state ----------------------------------------------------------------------------------
const state = {
  info: null,
  source: "draw",
  pixels: null, // an upload, decoded by the server: {shape, data}
  uploadFile: null,
  example: 0,
  examples: null,
  transform: { shift_x: 0, shift_y: 0, rotate: 0, scale: 1 },
  selected: null, // {index, channel, y, x}
  unit: null, // the last unit explanation
  view: "layers",
  last: null, // the last forward response with maps
  fullMaps: new Set(), // panels whose every map is shown
  version: 0, // bumped whenever the input changes
};
const panels = new Map(); // row index -> panel

// ---- input ------------------------------------------------------------------------------------
const drawCanvas = () => $("#draw");

const drawContext = () => drawCanvas().getContext("2d", { willReadFrequently: true });

function clearDrawing() {
  const canvas = drawCanvas();
  const ctx = drawContext();
  ctx.fillStyle = "#000";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
}

function drawingInput() {
  const canvas = drawCanvas();
  const pixels = drawContext().getImageData(0, 0, canvas.width, canvas.height).data;
  const ink = new Uint8Array(canvas.width * canvas.height);
  for (let i = 0; i < ink.length; i++) ink[i] = pixels[4 * i];
  return { kind: "drawing", width: canvas.width, height: canvas.height, data: b64Of(ink) };
}

function currentInput() {
  if (state.source === "draw") return drawingInput();
  if (state.source === "upload") return state.pixels ? { kind: "pixels", ...state.pixels } : null;
  return { kind: "example", index: state.example };
}

function setupDrawing() {
  const canvas = drawCanvas();
  const ctx = drawContext();
  clearDrawing();
  let last = null;
  const live = debounce(() => requestForward({ maps: state.info.live_maps }), 40);
  const point = (event) => [
    (event.offsetX * canvas.width) / canvas.clientWidth,
    (event.offsetY * canvas.height) / canvas.clientHeight,
  ];
  const stroke = (from, to) => {
    ctx.strokeStyle = "#fff";
    ctx.fillStyle = "#fff";
    ctx.lineWidth = Number($("#brush").value);
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    ctx.beginPath();
    ctx.moveTo(from[0], from[1]);
    ctx.lineTo(to[0], to[1]);
    ctx.stroke();
  };
  canvas.addEventListener("pointerdown", (event) => {
    event.preventDefault();
    canvas.setPointerCapture(event.pointerId);
    last = point(event);
    stroke(last, last);
    useSource("draw", false);
    live();
  });
  canvas.addEventListener("pointermove", (event) => {
    if (last === null) return;
    const now = point(event);
    stroke(last, now);
    last = now;
    live();
  });
  const end = () => {
    if (last === null) return;
    last = null;
    requestForward({ maps: true });
  };
  canvas.addEventListener("pointerup", end);
  canvas.addEventListener("pointercancel", end);
  $("#clear").addEventListener("click", () => {
    clearDrawing();
    useSource("draw", true);
  });
}

async function uploadFile() {
  if (!state.uploadFile) return;
  const query = `invert=${$("#invert").checked ? 1 : 0}&centre=${$("#centre").checked ? 1 : 0}`;
  try {
    const buffer = await state.uploadFile.arrayBuffer();
    state.pixels = await api(`/api/upload?${query}`, undefined, buffer);
    useSource("upload", true);
  } catch (error) {
    showError(error);
  }
}

async function loadExamples() {
  if (state.examples) return state.examples;
  const status = $("#example-status");
  status.textContent = "loading the test split…";
  try {
    state.examples = await api("/api/examples");
  } catch (error) {
    state.examples = { available: false, reason: error.message, labels: [] };
  }
  const found = state.examples;
  if (!found.available) {
    status.textContent = `No test examples: ${found.reason}`;
    for (const id of ["#example-index", "#example-random", "#example-class"]) $(id).disabled = true;
  } else {
    $("#example-index").max = found.count - 1;
    status.textContent = `${thousands(found.count)} examples of ${found.data}'s test split`;
  }
  return found;
}

function setupInputs() {
  for (const button of $$("#input-tabs button")) {
    button.addEventListener("click", async () => {
      const tab = button.dataset.tab;
      for (const other of $$("#input-tabs button")) other.classList.toggle("active", other === button);
      for (const body of $$("#input-card .tab-body")) body.hidden = body.dataset.body !== tab;
      $("#draw-hint").hidden = tab !== "draw";
      if (tab === "example") {
        const found = await loadExamples();
        if (found.available) useSource("example", true);
      } else if (tab === "upload") {
        if (state.pixels) useSource("upload", true);
      } else {
        useSource("draw", true);
      }
    });
  }
  $("#upload").addEventListener("change", (event) => {
    state.uploadFile = event.target.files[0] || null;
    uploadFile();
  });
  $("#invert").addEventListener("change", uploadFile);
  $("#centre").addEventListener("change", uploadFile);
  $("#example-index").addEventListener("change", (event) => {
    const count = state.examples ? state.examples.count : 0;
    const index = Math.max(0, Math.min(count - 1, Math.floor(Number(event.target.value) || 0)));
    event.target.value = index;
    state.example = index;
    useSource("example", true);
  });
  $("#example-random").addEventListener("click", () => {
    const found = state.examples;
    if (!found || !found.available) return;
    const wanted = $("#example-class").value;
    const pool = [];
    found.labels.forEach((label, index) => {
      if (wanted === "" || label === Number(wanted)) pool.push(index);
    });
    if (!pool.length) return;
    state.example = pool[Math.floor(Math.random() * pool.length)];
    $("#example-index").value = state.example;
    useSource("example", true);
  });
  for (const key of Object.keys(state.transform)) {
    const slider = $(`#${key}`);
    slider.addEventListener("input", () => {
      state.transform[key] = Number(slider.value);
      showTransform();
      inputChanged();
      requestForward({ maps: state.info.live_maps });
    });
    slider.addEventListener("change", () => requestForward({ maps: true }));
  }
  $("#reset-transform").addEventListener("click", () => {
    state.transform = { shift_x: 0, shift_y: 0, rotate: 0, scale: 1 };
    for (const [key, value] of Object.entries(state.transform)) $(`#${key}`).value = value;
    showTransform();
    inputChanged();
    requestForward({ maps: true });
  });
}

function showTransform() {
  const t = state.transform;
  $("output[for=shift_x]").textContent = t.shift_x;
  $("output[for=shift_y]").textContent = t.shift_y;
  $("output[for=rotate]").textContent = `${t.rotate}°`;
  $("output[for=scale]").textContent = t.scale.toFixed(2);
}

function useSource(source, run) {
  state.source = source;
  inputChanged();
  if (run) requestForward({ maps: true });
}

function inputChanged() {
  state.version += 1;
}

// ---- forward: probabilities and maps ------------------------------------------------------
const queue = { busy: false, pending: null };

function requestForward(options) {
  const maps = Boolean(options.maps) || Boolean(queue.pending && queue.pending.maps);
  queue.pending = { maps };
  if (!queue.busy) runForward();
}

async function runForward() {
  const options = queue.pending;
  queue.pending = null;
  const input = currentInput();
  if (!input) return;
  queue.busy = true;
  const version = state.version;
  try {
    const body = { input, transform: state.transform, maps: options.maps };
    const result = await api("/api/forward", body);
    showForward(result, options.maps);
    if (options.maps && state.fullMaps.size) {
      const more = await api("/api/forward", {
        input, transform: state.transform, layers: [...state.fullMaps], max_channels: 0,
      });
      for (const payload of more.layers) drawLayer(panels.get(payload.index), payload);
    }
  } catch (error) {
    showError(error);
  } finally {
    queue.busy = false;
    if (queue.pending) runForward();
    else if (options.maps) settled(version);
  }
}

function settled(version) {
  if (version !== state.version) return;
  if (state.selected) explainUnit(state.selected, false);
  if (state.view === "cam") refreshCam();
  if (state.view === "parity") refreshParity();
}

function showForward(result, withMaps) {
  drawSeen(result.input);
  showPrediction(result);
  const seconds = result.seconds;
  $("#timing").textContent = `server: ${(seconds.total * 1000).toFixed(1)} ms `
    + `(model ${(seconds.model * 1000).toFixed(1)} ms${withMaps ? ", with every layer's maps" : ""})`;
  if (withMaps) {
    state.last = result;
    for (const payload of result.layers) drawLayer(panels.get(payload.index), payload);
    drawOverlays();
  }
}

function showPrediction(result) {
  const top = result.prediction;
  const box = $("#prediction");
  box.replaceChildren(
    element("b", { text: top.class }),
    ` ${(100 * top.probability).toFixed(1)}%`,
  );
  const truth = result.input.true_class;
  if (truth !== null && truth !== undefined) {
    const right = truth === top.class;
    box.append(element("span", { class: `truth ${right ? "right" : "wrong"}`, text: `true class ${truth} ${right ? "✓" : "✗"}` }));
  }
  const bars = $("#bars");
  bars.replaceChildren();
  result.top_k.forEach((item, rank) => {
    const marks = [rank === 0 ? "top" : "", item.class === truth ? "true" : ""].join(" ");
    const fill = element("div", { class: "fill" });
    fill.style.width = `${(100 * item.probability).toFixed(2)}%`;
    bars.append(
      element("div", { class: `label ${marks}`, text: item.class, title: item.class }),
      element("div", { class: `track ${marks}` }, fill),
      element("div", { class: `value ${marks}`, text: `${(100 * item.probability).toFixed(1)}%` }),
    );
  });
}

function drawSeen(input) {
  const [c, h, w] = input.shape;
  const canvas = $("#seen");
  canvas.width = w;
  canvas.height = h;
  canvas.getContext("2d").putImageData(pixelImage(bytesOf(input.seen), c, h, w), 0, 0);
}

function pixelImage(bytes, c, h, w) {
  const image = new ImageData(w, h);
  for (let i = 0; i < h * w; i++) {
    const r = bytes[i];
    const g = c === 3 ? bytes[h * w + i] : r;
    const b = c === 3 ? bytes[2 * h * w + i] : r;
    image.data.set([r, g, b, 255], 4 * i);
  }
  return image;
}

// ---- layers ---------------------------------------------------------------------------------
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

// ---- one unit: receptive field and the numbers behind it --------------------------------------
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
      : `Receptive field: ${fieldText(field.size[0] === field.size[1] ? field.size[0] : field.size)} input pixels, rows ${rangeText(field, "rows")}, columns ${rangeText(field, "cols")} of the ${inH}×${inW} input (outlined on “What the model sees”).`,
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

// ---- Grad-CAM, filters, parity -----------------------------------------------------------------
async function refreshCam() {
  const input = currentInput();
  if (!input) return;
  const body = { input, transform: state.transform };
  const chosenClass = $("#cam-class").value;
  const chosenLayer = $("#cam-layer").value;
  if (chosenClass !== "") body.class = Number(chosenClass);
  if (chosenLayer !== "") body.layer = chosenLayer;
  try {
    const result = await api("/api/cam", body);
    const seen = state.last ? state.last.input : null;
    const [h, w] = result.shape;
    const heat = bytesOf(result.cam);
    const saliency = bytesOf(result.saliency);
    const grey = new Uint8Array(h * w);
    if (seen) {
      const bytes = bytesOf(seen.seen);
      const c = seen.shape[0];
      for (let i = 0; i < h * w; i++) {
        grey[i] = c === 3 ? Math.round((bytes[i] + bytes[h * w + i] + bytes[2 * h * w + i]) / 3) : bytes[i];
      }
      paint($("#cam-input"), w, h, (i) => {
        if (c !== 3) return [bytes[i], bytes[i], bytes[i]];
        return [bytes[i], bytes[h * w + i], bytes[2 * h * w + i]];
      });
    }
    paint($("#cam-heat"), w, h, (i) => {
      const [r, g, b] = COLORMAPS.jet[heat[i]];
      return [0.5 * grey[i] + 0.5 * r, 0.5 * grey[i] + 0.5 * g, 0.5 * grey[i] + 0.5 * b];
    });
    paint($("#cam-saliency"), w, h, (i) => COLORMAPS.inferno[saliency[i]]);
    const p = result.probabilities[result.target];
    $("#cam-caption").textContent = `Grad-CAM for class ${result.target_class} (${(100 * p).toFixed(1)}%) at ${result.layer}`;
  } catch (error) {
    showError(error);
  }
}

function paint(canvas, w, h, rgbAt) {
  canvas.width = w;
  canvas.height = h;
  const image = new ImageData(w, h);
  for (let i = 0; i < w * h; i++) {
    const [r, g, b] = rgbAt(i);
    image.data.set([r, g, b, 255], 4 * i);
  }
  canvas.getContext("2d").putImageData(image, 0, 0);
}

async function loadFilters() {
  const layer = $("#filters-layer").value;
  if (!layer) {
    $("#filters-caption").textContent = "this model has no conv layer";
    return;
  }
  try {
    const result = await api(`/api/filters?layer=${encodeURIComponent(layer)}`);
    const [out, inp, kh, kw] = result.shape;
    const weights = floatsOf(result.weights);
    const shownOut = Math.min(out, 64);
    const shownIn = result.rgb ? 1 : Math.min(inp, 16);
    const root = $("#filters");
    root.replaceChildren();
    const scale = Math.max(3, Math.min(14, Math.floor(56 / Math.max(kh, kw))));
    const at = (o, i, y, x) => weights[((o * inp + i) * kh + y) * kw + x];
    for (let o = 0; o < shownOut; o++) {
      const canvas = element("canvas");
      const width = result.rgb ? kw : shownIn * (kw + 1) - 1;
      paint(canvas, width, kh, (p) => {
        const y = Math.floor(p / width);
        const xx = p % width;
        if (result.rgb) {
          return [0, 1, 2].map((c) => 255 * Math.max(0, Math.min(1, 0.5 + at(o, c, y, xx) / (2 * result.max_abs))));
        }
        const i = Math.floor(xx / (kw + 1));
        const x = xx % (kw + 1);
        if (x === kw) return [255, 255, 255];
        return diverging(at(o, i, y, x), result.max_abs);
      });
      canvas.style.width = `${width * scale}px`;
      root.append(element("figure", {}, canvas, element("figcaption", { text: String(o) })));
    }
    const how = result.rgb ? "RGB, mid-grey = 0" : "red > 0 > blue";
    const cut = [];
    if (shownOut < out) cut.push(`first ${shownOut} of ${out} filters`);
    if (!result.rgb && shownIn < inp) cut.push(`first ${shownIn} of ${inp} input channels each`);
    $("#filters-caption").textContent = `${out} filters of ${result.layer}, kernels ${inp}×${kh}×${kw}; ${how}, `
      + `scale ±${fmt(result.max_abs, 3)}; filter k makes feature map k${cut.length ? ` (${cut.join(", ")})` : ""}.`;
  } catch (error) {
    showError(error);
  }
}

async function refreshParity() {
  const input = currentInput();
  if (!input) return;
  const summary = $("#parity-summary");
  summary.textContent = "running the NumPy engine…";
  try {
    const result = await api("/api/parity", { input, transform: state.transform });
    const body = $("#parity tbody");
    body.replaceChildren();
    for (const layer of result.layers) {
      const relative = layer.max_abs > 0 ? layer.max_abs_diff / layer.max_abs : layer.max_abs_diff;
      const ok = relative < 1e-4;
      body.append(element(
        "tr", {},
        element("td", { text: layer.name }),
        element("td", { class: ok ? "ok" : "off", text: fmt(layer.max_abs_diff, 6) }),
        element("td", { text: fmt(layer.max_abs, 4) }),
        element("td", { class: ok ? "ok" : "off", text: fmt(relative, 6) }),
      ));
    }
    const np = result.numpy.prediction;
    const pt = result.torch.prediction;
    summary.textContent = `NumPy engine: ${np.class} (${(100 * np.probability).toFixed(2)}%), `
      + `PyTorch: ${pt.class} (${(100 * pt.probability).toFixed(2)}%); largest logit difference `
      + `${fmt(result.logits_max_abs_diff, 6)}; NumPy forward ${(1000 * result.numpy.seconds).toFixed(1)} ms.`;
  } catch (error) {
    summary.textContent = error.message;
  }
}

function setupViews() {
  for (const button of $$("#view-tabs button")) {
    button.addEventListener("click", () => {
      state.view = button.dataset.view;
      for (const other of $$("#view-tabs button")) other.classList.toggle("active", other === button);
      for (const body of $$(".view")) body.hidden = body.dataset.viewBody !== state.view;
      if (state.view === "cam") refreshCam();
      if (state.view === "filters") loadFilters();
      if (state.view === "parity") refreshParity();
    });
  }
  $("#cam-class").addEventListener("change", refreshCam);
  $("#cam-layer").addEventListener("change", refreshCam);
  $("#filters-layer").addEventListener("change", loadFilters);
}

// ---- start ------------------------------------------------------------------------------------
function showModel(info) {
  const s = info.summary;
  const where = info.trained ? `${info.source} (${info.checkpoint.split("/").pop()})` : `${info.source}, untrained (weights from seed 0)`;
  $("#model-title").textContent = `${info.model} · ${where}`;
  $("#model-stats").textContent = `${info.classes.length} classes · ${thousands(s.total_params)} parameters · `
    + `${thousands(s.macs)} MACs · input ${shapeText(info.input_shape)} · ${info.layers.length} layers`;
  document.title = `cnnlab explore · ${info.model}`;
  const [ih, iw] = info.image_size;
  $("#draw-hint").textContent = info.digits
    ? "Draw a digit with the mouse or a finger. As MNIST was made: the ink is cropped to its box, scaled to 20×20 (aspect kept) and its centre of mass centred in 28×28."
    : `Draw with the mouse or a finger; the drawing is resized to the run's ${ih}×${iw} images${info.channels === 3 ? " (grey on all three channels)" : ""}.`;
  $("#centre-label").hidden = !info.digits;
  const prep = info.preprocessing;
  const [c, h, w] = info.input_shape;
  const padded = h !== ih || w !== iw ? `, zero-padded to ${h}×${w}` : "";
  const plain = prep.mean.every((v) => v === 0) && prep.std.every((v) => v === 1);
  const scaling = plain ? "pixel values scaled to 0..1"
    : `normalised with mean ${prep.mean.map((v) => v.toFixed(4)).join(", ")} and std `
      + `${prep.std.map((v) => v.toFixed(4)).join(", ")} (shown in pixel values)`;
  $("#seen-caption").textContent = `${c}×${h}×${w}: the ${ih}×${iw} image${padded}, ${scaling}.`;
  for (const key of ["shift_x", "shift_y"]) {
    const side = key === "shift_x" ? iw : ih;
    $(`#${key}`).min = -Math.floor(side / 2);
    $(`#${key}`).max = Math.floor(side / 2);
  }
  const camClass = $("#cam-class");
  const exampleClass = $("#example-class");
  info.classes.forEach((name, index) => {
    camClass.append(element("option", { value: String(index), text: name }));
    exampleClass.append(element("option", { value: String(index), text: name }));
  });
  for (const name of info.cam_layers) $("#cam-layer").append(element("option", { value: name, text: name }));
  for (const name of info.conv_layers) $("#filters-layer").append(element("option", { value: name, text: name }));
  if (!info.trained) {
    $("#example-status").textContent = "An untrained model has no test split.";
  }
}

async function start() {
  try {
    state.info = await api("/api/model");
  } catch (error) {
    $("#model-title").textContent = `cannot reach the explorer: ${error.message}`;
    return;
  }
  showModel(state.info);
  buildLayers(state.info);
  setupDrawing();
  setupInputs();
  setupViews();
  showTransform();
  window.addEventListener("resize", debounce(() => {
    for (const panel of panels.values()) if (panel.payload) drawLayer(panel, panel.payload);
    drawOverlays();
  }, 200));
  requestForward({ maps: true });
}

document.addEventListener("DOMContentLoaded", start);
