// cnnlab explore: small helpers shared by the page's scripts (DOM, base64 arrays, numbers,
// colours, the JSON API).
"use strict";

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
