// cnnlab explore: the Grad-CAM & saliency, filters and NumPy parity views.
"use strict";

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
