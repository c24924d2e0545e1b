// Depth in this browser: the webcam tab's "Run in this browser" (demo/browser.py serves this file).
//
// Per frame it does what depth/predict.py and demo/webcam.py do on the server, in the same
// order and with the same arithmetic, so the maps match the server's (tests/test_browser_depth.py):
//   1. the frame at its working size (at most FRAME_SIDE a side; the browser scales larger ones);
//   2. fitted into 320x240 keeping its aspect ratio by antialiased bilinear resampling (PyTorch's
//      F.interpolate(antialias=True) weights, computed here), then the centre 304x228 window,
//      edge pixels repeated where the fitted frame is smaller;
//   3. the network in onnxruntime-web (depth.onnx_export's file: metres on the 74x55 grid,
//      contrast applied, one pass as on the server's webcam path);
//   4. resampled to the frame linearly in log depth, edges clamped (predict._interpolation_matrix),
//      and coloured over the fixed near-far range with the server's colormap table.
// Nothing here sends a frame anywhere: the camera, the network and the picture stay in the page.

const FRAME_W = 320, FRAME_H = 240;            // depth.data FRAME_WIDTH, FRAME_HEIGHT
const IN_W = 304, IN_H = 228;                  // the network's window (depth.model)
const OUT_W = 74, OUT_H = 55, OUT_OFFSET = 3.5, OUT_STRIDE = 4;
const FRAME_SIDE = 640;                        // demo.webcam.FRAME_SIDE
const CAMERA = {video: {width: {ideal: 640}, height: {ideal: 480}}};  // demo.webcam.CAMERA

// Python's round(): halves go to the even neighbour (Math.round sends them up).
function pyRound(x) {
  const r = Math.round(x);
  return (r - x === 0.5 && r % 2 !== 0) ? r - 1 : r;
}

// Frames keep their size from one to the next: each axis's taps are computed once.
const tapCache = new Map();
function cached(key, make) {
  if (!tapCache.has(key)) tapCache.set(key, make());
  return tapCache.get(key);
}

// One axis of PyTorch's antialiased bilinear resampling (align_corners=False): for each output
// index, the first input index and the normalised triangle-filter weights.
function aaTaps(inSize, outSize) {
  return cached(`aa ${inSize} ${outSize}`, () => computeAaTaps(inSize, outSize));
}

function computeAaTaps(inSize, outSize) {
  const scale = inSize / outSize;
  const support = scale >= 1 ? scale : 1;
  const invScale = scale >= 1 ? 1 / scale : 1;
  const taps = [];
  for (let i = 0; i < outSize; i++) {
    const centre = scale * (i + 0.5);
    const first = Math.max(Math.trunc(centre - support + 0.5), 0);
    const last = Math.min(Math.trunc(centre + support + 0.5), inSize);
    const weights = [];
    let total = 0;
    for (let j = first; j < last; j++) {
      const w = Math.max(0, 1 - Math.abs((j - centre + 0.5) * invScale));
      weights.push(w);
      total += w;
    }
    taps.push({first, weights: weights.map((w) => (total ? w / total : 0))});
  }
  return taps;
}

// RGBA uint8 (height x width) -> planar float RGB in [0, 1] at (outH, outW), antialiased.
function resizeRgb(rgba, width, height, outW, outH) {
  const across = aaTaps(width, outW), down = aaTaps(height, outH);
  const rows = new Float64Array(3 * height * outW);   // horizontal pass
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < outW; x++) {
      const {first, weights} = across[x];
      let r = 0, g = 0, b = 0;
      for (let k = 0; k < weights.length; k++) {
        const p = 4 * (y * width + first + k);
        r += weights[k] * rgba[p]; g += weights[k] * rgba[p + 1]; b += weights[k] * rgba[p + 2];
      }
      const q = y * outW + x;
      rows[q] = r / 255; rows[height * outW + q] = g / 255; rows[2 * height * outW + q] = b / 255;
    }
  }
  const out = new Float32Array(3 * outH * outW);      // vertical pass
  for (let c = 0; c < 3; c++) {
    for (let y = 0; y < outH; y++) {
      const {first, weights} = down[y];
      for (let x = 0; x < outW; x++) {
        let v = 0;
        for (let k = 0; k < weights.length; k++) v += weights[k] * rows[(c * height + first + k) * outW + x];
        out[(c * outH + y) * outW + x] = Math.min(1, Math.max(0, v));
      }
    }
  }
  return out;
}

// A (width x height) frame -> the network's (1, 3, 228, 304) input and where the frame sits in it
// (predict._fit_to_input and _Placement).
export function fitToInput(rgba, width, height) {
  const scale = Math.min(FRAME_W / width, FRAME_H / height);
  const fitW = Math.max(1, pyRound(width * scale)), fitH = Math.max(1, pyRound(height * scale));
  const fitted = resizeRgb(rgba, width, height, fitW, fitH);   // at the same size: the pixels / 255
  const offsetX = Math.floor((fitW - IN_W) / 2), offsetY = Math.floor((fitH - IN_H) / 2);
  const input = new Float32Array(3 * IN_H * IN_W);
  for (let c = 0; c < 3; c++) {
    for (let y = 0; y < IN_H; y++) {
      const sy = Math.min(fitH - 1, Math.max(0, y + offsetY));   // repeat the edge rows
      for (let x = 0; x < IN_W; x++) {
        const sx = Math.min(fitW - 1, Math.max(0, x + offsetX));
        input[(c * IN_H + y) * IN_W + x] = fitted[(c * fitH + sy) * fitW + sx];
      }
    }
  }
  return {input, placement: {width, height, scaleX: fitW / width, scaleY: fitH / height, offsetX, offsetY}};
}

// For each of n photo pixels: the two grid cells and weights that interpolate it.
function gridTaps(n, scale, offset, cells) {
  return cached(`grid ${n} ${scale} ${offset} ${cells}`, () => computeGridTaps(n, scale, offset, cells));
}

function computeGridTaps(n, scale, offset, cells) {
  const taps = [];
  for (let k = 0; k < n; k++) {
    const input = (k + 0.5) * scale - offset;
    const g = Math.min(cells - 1, Math.max(0, (input - OUT_OFFSET) / OUT_STRIDE - 0.5));
    const lower = Math.min(Math.floor(g), cells - 2);
    taps.push([lower, g - lower]);
  }
  return taps;
}

// (55, 74) metres -> (height, width) metres, linear in log depth (predict._to_photo).
export function toPhoto(map, placement) {
  const {width, height} = placement;
  const cols = gridTaps(width, placement.scaleX, placement.offsetX, OUT_W);
  const rows = gridTaps(height, placement.scaleY, placement.offsetY, OUT_H);
  const logs = Float64Array.from(map, Math.log);
  const across = new Float64Array(OUT_H * width);
  for (let i = 0; i < OUT_H; i++) {
    for (let x = 0; x < width; x++) {
      const [j, f] = cols[x];
      across[i * width + x] = (1 - f) * logs[i * OUT_W + j] + f * logs[i * OUT_W + j + 1];
    }
  }
  const depth = new Float32Array(height * width);
  for (let y = 0; y < height; y++) {
    const [i, f] = rows[y];
    for (let x = 0; x < width; x++) {
      depth[y * width + x] = Math.exp((1 - f) * across[i * width + x] + f * across[(i + 1) * width + x]);
    }
  }
  return depth;
}

// (height x width) metres -> RGBA pixels, as depth.visualize.colorize (float32 arithmetic).
export function colorize(depth, near, far, table, pixels) {
  const n = table.length / 3, nearF = Math.fround(near), span = Math.fround(Math.max(far - near, 1e-6));
  for (let p = 0; p < depth.length; p++) {
    const d = depth[p];
    let index = 0, valid = Number.isFinite(d) && d > 0;
    if (valid) {
      const scaled = Math.min(1, Math.max(0, Math.fround(Math.fround(d - nearF) / span)));
      index = Math.min(Math.trunc(Math.fround(scaled * n)), n - 1);
    }
    pixels[4 * p] = valid ? table[3 * index] : 0;
    pixels[4 * p + 1] = valid ? table[3 * index + 1] : 0;
    pixels[4 * p + 2] = valid ? table[3 * index + 2] : 0;
    pixels[4 * p + 3] = 255;
  }
}

// Download `url`. Until the server answers, `waiting(seconds)` every second: the first request for
// a network has the server export it (about half a minute on a small CPU), and the page says so.
// Then `progress(received, total)` per chunk (total from Content-Length, null when unknown).
// The browser's HTTP cache keeps the file for next time (its address names its contents).
async function download(url, waiting, progress) {
  const asked = performance.now();
  const ticking = setInterval(() => waiting((performance.now() - asked) / 1000), 1000);
  let response;
  try {
    response = await fetch(url);
  } finally {
    clearInterval(ticking);
  }
  if (!response.ok) {
    const why = (await response.text().catch(() => "")).trim();
    throw new Error(why || `the model file answered ${response.status}`);
  }
  const length = parseInt(response.headers.get("Content-Length"), 10);
  const total = Number.isFinite(length) && !response.headers.get("Content-Encoding") ? length : null;
  const reader = response.body.getReader();
  const chunks = [];
  let received = 0;
  for (;;) {
    const {done, value} = await reader.read();
    if (done) break;
    chunks.push(value);
    received += value.length;
    progress(received, total);
  }
  if (total !== null && received !== total) throw new Error(`the model file stopped after ${received} of ${total} bytes`);
  const data = new Uint8Array(received);
  let offset = 0;
  for (const chunk of chunks) { data.set(chunk, offset); offset += chunk.length; }
  return data;
}

// The backend that runs the network: WASM, threaded when the page is cross-origin isolated,
// else one thread (the WebGPU build is not vendored: its files are over the project's 16 MiB
// a file). Returns {ort, session, backend}; throws saying why it failed.
async function openSession(runtime, model) {
  const threads = self.crossOriginIsolated ? Math.max(1, Math.min(4, navigator.hardwareConcurrency || 1)) : 1;
  const wasm = threads > 1 ? `WASM, ${threads} threads` : "WASM, single-threaded";
  const tries = [[wasm, "ort.wasm.bundle.min.mjs", ["wasm"]]];
  const failures = [];
  for (const [backend, bundle, providers] of tries) {
    try {
      const ort = await import(runtime + bundle);   // finds its .wasm beside itself
      ort.env.wasm.numThreads = threads;
      const session = await ort.InferenceSession.create(model, {executionProviders: providers});
      return {ort, session, backend};
    } catch (error) {
      failures.push(`${backend}: ${error.message || error}`);
    }
  }
  throw new Error(failures.join("; "));
}

function readNumber(selector, fallback) {
  const value = parseFloat(document.querySelector(selector)?.value);
  return Number.isFinite(value) ? value : fallback;
}

// The webcam tab's in-browser mode inside `element` (demo.webcam's panel), with `config` from
// demo.browser.BrowserFiles.config. window.depthInBrowser shows its state (the tests read it).
export function start(element, config) {
  const $ = (selector) => element.querySelector(selector);
  const button = $("#browser-toggle"), status = $("#browser-status");
  const video = $("#browser-camera"), canvas = $("#browser-depth");
  const names = Object.keys(config.networks);
  const sessions = {};   // network name -> promise of {ort, session, backend}
  const grab = document.createElement("canvas");
  const state = window.depthInBrowser = {running: false, frames: 0, fps: null, backend: null, error: null, last: null,
                                         said: []};
  let stream = null, times = [];

  const network = () => {
    const chosen = document.querySelector("#network input:checked")?.value;
    return names.includes(chosen) ? chosen : names[0];
  };
  const say = (text) => {
    status.textContent = text;
    // each kind of message once, in order (the tests read them): "Downloading … 40%" is one kind
    const kind = text.replace(/[\d.]+/g, "#");
    if (!state.said.some((said) => said.replace(/[\d.]+/g, "#") === kind)) state.said.push(text);
  };
  const serverSide = (show) => {
    const row = document.querySelector("#webcam-server-row");
    if (row) row.style.display = show ? "" : "none";
  };

  function session(name) {
    if (!sessions[name]) {
      const {url} = config.networks[name];
      const megabytes = (bytes) => (bytes / 1e6).toFixed(bytes < 1e7 ? 1 : 0);
      say(`Asking the server for the ${name}…`);
      sessions[name] = download(url, (seconds) => {
        say(`Preparing the in-browser model: the server is converting the ${name} for this browser ` +
            `(only the first time it is used; it can take a minute or two) · ${seconds.toFixed(0)} s so far…`);
      }, (received, total) => {
        say(`Downloading the ${name} once (` + (total ? `${(received / total * 100).toFixed(0)}% of ${megabytes(total)} MB`
          : `${megabytes(received)} MB`) + "); the browser keeps it for next time…");
      }).then((model) => {
        say(`Starting the ${name} in this browser…`);
        return openSession(config.runtime, model);
      });
      sessions[name].catch(() => { delete sessions[name]; });   // a later start tries again
    }
    return sessions[name];
  }

  async function frame() {
    const name = network();
    const {ort, session: net, backend} = await session(name);
    const side = Math.max(video.videoWidth, video.videoHeight);
    const shrink = side > FRAME_SIDE ? FRAME_SIDE / side : 1;   // only pixels the network would never see
    const width = shrink < 1 ? Math.max(1, pyRound(video.videoWidth * shrink)) : video.videoWidth;
    const height = shrink < 1 ? Math.max(1, pyRound(video.videoHeight * shrink)) : video.videoHeight;
    grab.width = width; grab.height = height;
    const context = grab.getContext("2d", {willReadFrequently: true});
    context.drawImage(video, 0, 0, width, height);
    const rgba = context.getImageData(0, 0, width, height).data;
    const started = performance.now();
    const {input, placement} = fitToInput(rgba, width, height);
    const output = config.networks[name].output;   // the map the weights stand behind
    const before = performance.now();
    const results = await net.run({image: new ort.Tensor("float32", input, [1, 3, IN_H, IN_W])});
    const networkMs = performance.now() - before;
    const map = results[output].data;
    const depth = toPhoto(map, placement);
    const near = readNumber("#webcam-near input[type=number]", 0.5), far = readNumber("#webcam-far input[type=number]", 5);
    if (!(near >= 0 && near < far)) return say(`A fixed depth range needs 0 <= near < far, got ${near}–${far} m.`);
    const colormap = document.querySelector("#webcam-colormap input")?.value;
    const table = config.colormaps[colormap] || config.colormaps[Object.keys(config.colormaps)[0]];
    canvas.width = width; canvas.height = height;
    const picture = canvas.getContext("2d").createImageData(width, height);
    colorize(depth, near, far, table, picture.data);
    canvas.getContext("2d").putImageData(picture, 0, 0);
    const ms = performance.now() - started;
    const now = performance.now();
    times.push(now);
    if (times.length > 10) times.shift();
    state.fps = times.length > 1 ? (times.length - 1) / ((now - times[0]) / 1000) : null;
    state.frames += 1;
    state.backend = backend;
    state.last = {network: name, output, map, coarse: results.coarse.data, fine: results.fine.data, width, height, rgba};
    const known = colormap in config.colormaps ? "" : ` · colormap ${colormap} is not offered here: ${Object.keys(config.colormaps)[0]}`;
    say(`${state.fps ? state.fps.toFixed(1) + " frames/s · " : ""}${ms.toFixed(0)} ms per frame in this browser, ` +
        `${networkMs.toFixed(0)} of them in the network ` +
        `(${backend}) · ${width}×${height} · colours ${near.toFixed(2)}–${far.toFixed(2)} m · no frame leaves this page${known}`);
  }

  async function run() {
    while (state.running) {
      if (video.readyState >= 2 && video.videoWidth > 0) await frame();
      await new Promise((resolve) => setTimeout(resolve, 0));   // let the page breathe between frames
    }
  }

  function stop(message) {
    state.running = false;
    stream?.getTracks().forEach((track) => track.stop());
    stream = null;
    times = [];
    button.textContent = "Run in this browser";
    serverSide(true);
    if (message) say(message);
  }

  button.addEventListener("click", async () => {
    if (state.running) return stop("Stopped. The camera below runs the network on the server.");
    state.running = true;
    state.error = null;
    button.textContent = "Stop";
    serverSide(false);
    try {
      say("Asking for the camera…");
      const ready = session(network());   // the server may prepare the model while the camera starts
      stream = await navigator.mediaDevices.getUserMedia(CAMERA);
      video.srcObject = stream;
      await video.play();
      await ready;
      await run();
    } catch (error) {
      state.error = String(error.message || error);
      stop(`This browser could not run the network (${state.error}); use the camera below instead (the server runs it).`);
    }
  });
  say("Runs the network here, on this device: the first start downloads it once (the very first one also has " +
      "the server prepare it), then no frame goes to the server.");
}
