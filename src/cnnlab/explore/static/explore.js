// cnnlab explore: the page is a thin client of the JSON API (docs/explore-api.md).
// Everything is computed on the server; the page draws what comes back and sends what the user
// does. No framework, no build step, nothing loaded from elsewhere. This file: the state, the
// input (drawing, upload, test example, transform), the forward requests and the start;
// helpers.js, layers.js, unit.js and views.js do the rest (classic scripts, loaded in order).
"use strict";

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

// ---- start ------------------------------------------------------------------------------------
function showModel(info) {
  const s = info.summary;
  const where = info.trained ? `${info.source} (${info.checkpoint.split("/").pop()})` : `${info.source}, untrained (random weights)`;
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
