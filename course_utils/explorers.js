// The two explorers' front end (anywidget ESM): the same file draws them in JupyterLab, Colab and the static book.
// The arithmetic mirrors the Python reference, which the tests compare it with:
//   masks      course_utils.attention.build_mask, pad_positions
//   weights    course_utils.attention.scaled_dot_product_attention (a row with no visible key is all 0)
//   warpers    course_utils.warpers.warp_logits (temperature -> top-k -> top-p) and warp_distribution
// Python sends the numbers (q, k; the full next-token logits of each prompt); everything a control changes is
// recomputed here, so the controls respond in a page with no kernel. What the figure shows is also written into
// data-* attributes of the widget's root element, which the browser check reads back.

const SVG = "http://www.w3.org/2000/svg";

// ------------------------------------------------------------------ arithmetic

/** softmax of a row of scores (-Infinity = removed, probability 0); all removed -> all 0. */
export function softmax(z) {
  let max = -Infinity;
  for (const x of z) if (x > max) max = x;
  const p = new Float64Array(z.length);
  if (max === -Infinity) return p;
  let sum = 0;
  for (let i = 0; i < z.length; i++) sum += (p[i] = Math.exp(z[i] - max));
  for (let i = 0; i < z.length; i++) p[i] /= sum;
  return p;
}

/** H(p) = -sum p log p in nats, 0 log 0 = 0 (metrics.entropy). */
export function entropy(p) {
  let h = 0;
  for (const x of p) if (x > 0) h -= x * Math.log(x);
  return h;
}

/** Indices sorted by z, ties in index order (torch.argsort(stable=True)). */
function argsort(z, descending) {
  const order = Array.from(z, (_, i) => i);
  return order.sort((a, b) => (descending ? z[b] - z[a] : z[a] - z[b]) || a - b);
}

/** warp_logits: z / T, then top-k (ties with the k-th kept), then top-p (the most likely token always kept).
 *  Tokens tied at the top-p cut are ranked by id here, by torch.sort's unstable order in Python: the number kept,
 *  the values of the distribution and its entropy are the same, only which of the tied ids survive may differ. */
export function warpLogits(z, temperature, topK, topP) {
  let w = Float64Array.from(z, (x) => (temperature !== 1 ? x / temperature : x));
  if (topK !== 0) {
    const kth = w[argsort(w, true)[Math.min(topK, w.length) - 1]];
    w = w.map((x) => (x < kth ? -Infinity : x));
  }
  if (topP < 1) {
    const ascending = argsort(w, false), p = softmax(w); // least likely first, as top_p_filter sorts
    let massBelow = 0; // mass of this token and every less likely one
    ascending.forEach((i, r) => {
      massBelow += p[i];
      if (massBelow <= 1 - topP && r < w.length - 1) w[i] = -Infinity;
    });
  }
  return w;
}

/** build_mask: true = query i may attend to key j; the padded keys are the last (or first) nPad. */
export function buildMask(kind, nQueries, nKeys, nPad, padSide) {
  const padded = (j) => (padSide === "right" ? j >= nKeys - nPad : j < nPad);
  return Array.from({ length: nQueries }, (_, i) =>
    Array.from({ length: nKeys }, (_, j) => !padded(j) && (kind !== "causal" || j <= i)));
}

/** alpha = softmax(scale q k^T) over the visible keys of each row (eq. (1)); a row with none is all 0. */
export function attentionWeights(q, k, mask, scale) {
  return mask.map((row, i) => softmax(row.map((visible, j) =>
    visible ? scale * q[i].reduce((s, qd, d) => s + qd * k[j][d], 0) : -Infinity)));
}

// ------------------------------------------------------------------ drawing helpers

function el(tag, attrs = {}, parent = null, ns = null) {
  const node = ns ? document.createElementNS(ns, tag) : document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (name === "text") node.textContent = value;
    else node.setAttribute(name, value);
  }
  if (parent) parent.appendChild(node);
  return node;
}
const svgEl = (tag, attrs, parent) => el(tag, attrs, parent, SVG);

let uid = 0;
/** A labelled control: <label for=...> then the input; returns the input. */
function control(parent, labelText, attrs) {
  const id = `cu-explorer-${++uid}`;
  const box = el("span", { class: "cu-control" }, parent);
  el("label", { for: id, text: labelText }, box);
  const input = el(attrs.tag || "input", { id, ...Object.fromEntries(Object.entries(attrs).filter(([n]) => n !== "tag")) }, box);
  const readout = el("output", { for: id }, box);
  return { input, readout, box };
}

/** White -> dark blue, for a weight in [0, 1]. */
function blue(x) {
  const t = Math.max(0, Math.min(1, x));
  return `rgb(${Math.round(255 - 227 * t)}, ${Math.round(255 - 175 * t)}, ${Math.round(255 - 75 * t)})`;
}

/** A heatmap of rows (Lq, Lk) with token labels; colour(value) gives each cell, red labels for padded tokens. */
function heatmap(svg, x0, y0, rows, rowLabels, colLabels, colour, padRow, padCol, cell) {
  const g = svgEl("g", { transform: `translate(${x0}, ${y0})` }, svg);
  rows.forEach((row, i) => row.forEach((v, j) => svgEl("rect", {
    x: j * cell, y: i * cell, width: cell, height: cell, fill: colour(v), stroke: "#999", "stroke-width": 0.5,
  }, g)));
  colLabels.forEach((t, j) => svgEl("text", {
    x: 0, y: 0, "text-anchor": "start", "font-size": 11, fill: padCol(j) ? "#d62728" : "currentColor",
    transform: `translate(${j * cell + cell / 2 + 4}, -4) rotate(-60)`, text: t,
  }, g));
  rowLabels.forEach((t, i) => svgEl("text", {
    x: -4, y: i * cell + cell / 2 + 4, "text-anchor": "end", "font-size": 11,
    fill: padRow(i) ? "#d62728" : "currentColor", text: t,
  }, g));
}

// ------------------------------------------------------------------ the attention-mask explorer (chapter 01)

const MASK_DESCRIPTIONS = {
  bidirectional: "every token sees every token (BERT)",
  causal: "token i sees tokens j <= i (GPT)",
  padding: "nobody sees the padded keys",
  cross: "decoder queries see every real encoder key",
};

function renderMask(model, root) {
  const tokens = model.get("tokens"), source = model.get("source_tokens");
  const controls = el("div", { class: "cu-controls" }, root);
  const kind = control(controls, "mask", { tag: "select" });
  for (const k of Object.keys(MASK_DESCRIPTIONS)) if (k !== "cross" || source.length) el("option", { value: k, text: k }, kind.input);
  const side = control(controls, "pad side", { tag: "select" });
  for (const s of ["right", "left"]) el("option", { value: s, text: s }, side.input);
  const nQ = control(controls, "queries", { type: "range", min: 1, max: tokens.length, step: 1 });
  const nK = control(controls, "source keys", { type: "range", min: 1, max: Math.max(1, source.length), step: 1 });
  const nPad = control(controls, "padded", { type: "range", min: 0, step: 1 });
  const caption = el("div", { class: "cu-caption" }, root);
  const figure = el("div", { class: "cu-figure" }, root);

  const bind = (c, name, parse) => c.input.addEventListener("input", () => {
    model.set(name, parse(c.input.value));
    model.save_changes();
  });
  bind(kind, "kind", String); bind(side, "pad_side", String);
  bind(nQ, "n_queries", Number); bind(nK, "n_keys", Number); bind(nPad, "n_pad", Number);

  function draw() {
    const k = model.get("kind"), cross = k === "cross";
    const n_q = Math.min(model.get("n_queries"), tokens.length);
    const keysAll = cross ? source : tokens;
    const n_k = cross ? Math.min(model.get("n_keys"), source.length) : n_q; // self-attention: keys = queries
    const padMax = k === "bidirectional" ? 0 : n_k - 1; // at least one real key
    const n_pad = Math.min(model.get("n_pad"), padMax), padSide = model.get("pad_side");
    if (n_pad !== model.get("n_pad")) { // too many for this kind and length: the kernel learns the clamped value
      model.set("n_pad", n_pad);
      model.save_changes();
      return; // the change redraws
    }
    kind.input.value = k; side.input.value = padSide;
    nQ.input.value = n_q; nK.input.value = n_k; nPad.input.max = padMax; nPad.input.value = n_pad;
    nK.input.disabled = !cross; nPad.input.disabled = side.input.disabled = k === "bidirectional";
    nQ.readout.value = n_q; nK.readout.value = n_k; nPad.readout.value = n_pad;

    const mask = buildMask(k, n_q, n_k, n_pad, padSide);
    const qs = model.get("q"), ks = cross ? model.get("k_source") : model.get("k");
    const alpha = qs.length ? attentionWeights(qs, ks, mask, model.get("scale")) : null;
    const padded = (j) => (padSide === "right" ? j >= n_k - n_pad : j < n_pad);
    caption.textContent = `${MASK_DESCRIPTIONS[k]}. Red labels: padded positions.`;

    const cell = 26, labelRoom = 90, gap = 70, gridW = n_k * cell, gridH = n_q * cell;
    const titleRoom = 250; // "attention weights alpha (hidden = 0)" at 12px
    const width = alpha ? labelRoom + gridW + gap + labelRoom + Math.max(gridW + 70, titleRoom)
      : labelRoom + Math.max(gridW + 20, titleRoom);
    const height = labelRoom + gridH + 40;
    figure.replaceChildren();
    const svg = svgEl("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "img" }, figure);
    const queries = tokens.slice(0, n_q), keys = keysAll.slice(0, n_k);
    const padQ = (i) => !cross && padded(i);
    svgEl("text", { x: labelRoom, y: 14, "font-size": 12, fill: "currentColor", text: `mask: ${k}` }, svg);
    heatmap(svg, labelRoom, labelRoom, mask, queries, keys, (v) => (v ? "#333" : "#fff"), padQ, padded, cell);
    const legend = svgEl("g", { transform: `translate(${labelRoom}, ${labelRoom + gridH + 12})` }, svg);
    svgEl("rect", { width: 12, height: 12, fill: "#333" }, legend);
    svgEl("text", { x: 16, y: 10, "font-size": 11, fill: "currentColor", text: "dark: query i may attend to key j" }, legend);
    svgEl("rect", { y: 16, width: 12, height: 12, fill: "#fff", stroke: "#999" }, legend);
    svgEl("text", { x: 16, y: 26, "font-size": 11, fill: "currentColor", text: "white: hidden (score -inf, weight 0)" }, legend);
    if (alpha) {
      const x1 = labelRoom + gridW + gap + labelRoom;
      svgEl("text", { x: x1, y: 14, "font-size": 12, fill: "currentColor", text: "attention weights alpha (hidden = 0)" }, svg);
      heatmap(svg, x1, labelRoom, alpha.map((r) => Array.from(r)), queries, keys, blue, padQ, padded, cell);
      alpha.forEach((row, i) => row.forEach((a, j) => svgEl("text", {
        x: x1 + j * cell + cell / 2, y: labelRoom + i * cell + cell / 2 + 3, "text-anchor": "middle", "font-size": 8,
        fill: a > 0.55 ? "#fff" : "#000", text: a.toFixed(2).replace(/^0/, ""),
      }, svg)));
      const bar = svgEl("g", { transform: `translate(${x1 + gridW + 12}, ${labelRoom})` }, svg); // the colour bar
      for (let s = 0; s < 20; s++) svgEl("rect", { y: (gridH * s) / 20, width: 12, height: gridH / 20 + 0.5, fill: blue(1 - s / 20) }, bar);
      for (const v of [0, 0.5, 1]) svgEl("text", { x: 16, y: gridH * (1 - v) + 4, "font-size": 10, fill: "currentColor", text: v.toFixed(1) }, bar);
    }
    root.dataset.mask = mask.map((row) => row.map(Number).join("")).join("/");
    root.dataset.alpha = alpha ? JSON.stringify(alpha.map((r) => Array.from(r))) : "";
    root.dataset.settings = JSON.stringify({ kind: k, n_queries: n_q, n_keys: n_k, n_pad, pad_side: padSide });
  }
  for (const name of ["kind", "pad_side", "n_queries", "n_keys", "n_pad"]) model.on(`change:${name}`, draw);
  draw();
}

// ------------------------------------------------------------------ the temperature explorer (chapter 09)

/** The stored logits of a prompt (float32, base64) -> Float64Array, decoded once. */
const decoded = new Map();
function logitsOf(entry) {
  if (!decoded.has(entry.logits)) {
    const bytes = Uint8Array.from(atob(entry.logits), (c) => c.charCodeAt(0));
    const z = Float64Array.from(new Float32Array(bytes.buffer));
    decoded.set(entry.logits, { z, descending: argsort(z, true), before: softmax(z) });
  }
  return decoded.get(entry.logits);
}

/** In a page of the built book (Sphinx marks its root element with data-content_root), load the script of a model
 *  the page can run, _static/<name>.js (browser_gpt.py writes it), once; a <script>, so that file:// works too. */
function loadPageModel(name) {
  const contentRoot = document.documentElement.dataset.content_root;
  if (contentRoot === undefined || document.querySelector(`script[data-page-model="${name}"]`)) return;
  const script = document.createElement("script");
  script.src = `${contentRoot}_static/${name}.js`;
  script.dataset.pageModel = name;
  document.head.append(script);
}

/** Float64 logits -> the float32 bytes in base64 of a stored prompt entry (what the kernel sends). */
function encodeLogits(z) {
  const bytes = new Uint8Array(Float32Array.from(z).buffer);
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(text);
}

function renderTemperature(model, root) {
  const [lowT, highT] = model.get("temperature_range");
  const controls = el("div", { class: "cu-controls" }, root);
  const prompt = control(controls, "prompt", { tag: "select" });
  const live = el("span", { class: "cu-control cu-live", hidden: "" }, controls);
  const newPrompt = el("input", { type: "text", "aria-label": "a new prompt, read by the model", placeholder: "type a prompt, press Enter" }, live);
  const t = control(controls, "temperature", { type: "range", min: Math.log10(lowT), max: Math.log10(highT), step: 0.01 });
  const k = control(controls, "top-k (0 = off)", { type: "range", min: 0, max: model.get("top_k_max"), step: 1 });
  const p = control(controls, "top-p (1 = off)", { type: "range", min: 0.01, max: 1, step: 0.01 });
  const caption = el("div", { class: "cu-caption" }, root);
  const figure = el("div", { class: "cu-figure" }, root);
  const sampling = el("div", { class: "cu-controls" }, root);
  const button = el("button", { type: "button", text: `sample ${model.get("n_samples")} continuations`, disabled: "" }, sampling);
  const hint = el("span", { class: "cu-hint", text: "sampling runs the model: open the notebook with a kernel (Colab, JupyterLab)" }, sampling);
  const samples = el("div", { class: "cu-samples" }, root);

  // Who reads a new prompt and samples: the kernel when there is one, else the page itself when it can run the
  // model (the tiny GPT: browser_gpt.js with the weights, _static/tiny_gpt.js in the book), else nobody.
  let kernel = false, inPage = null, presses = 0;
  const enable = (text) => { live.hidden = false; button.disabled = false; hint.textContent = text; };
  function usePage(gpt) {
    if (kernel || !gpt || gpt.name !== model.get("page_model")) return;
    inPage = gpt;
    root.dataset.modelReadyMs = Math.round(performance.now()); // since the page began to load: the check reports it
    enable(`the ${gpt.name.replace("_", " ")} runs in this page: type a prompt, or sample`);
  }
  if (model.get("page_model")) {
    if (globalThis.courseTinyGPT) usePage(globalThis.courseTinyGPT);
    else globalThis.addEventListener?.("course-tiny-gpt", () => usePage(globalThis.courseTinyGPT), { once: true });
  }

  t.input.addEventListener("input", () => { model.set("temperature", 10 ** Number(t.input.value)); model.save_changes(); });
  k.input.addEventListener("input", () => { model.set("top_k", Number(k.input.value)); model.save_changes(); });
  p.input.addEventListener("input", () => { model.set("top_p", Number(p.input.value)); model.save_changes(); });
  prompt.input.addEventListener("input", () => { model.set("selected", Number(prompt.input.value)); model.save_changes(); });
  newPrompt.addEventListener("keydown", (e) => {
    if (e.key !== "Enter") return;
    if (inPage) later(() => readInPage(newPrompt.value), "reading the prompt...");
    else model.send({ type: "prompt", text: newPrompt.value });
  });
  button.addEventListener("click", () => {
    if (inPage) later(sampleInPage, "sampling...");
    else model.send({ type: "sample" });
  });
  model.on("msg:custom", (msg) => { // the kernel answers the hello below: it can read new prompts and sample
    if (msg.type !== "live") return;
    kernel = true; inPage = null;
    enable("");
  });
  model.send({ type: "hello" }); // no kernel (the static book): nobody answers

  /** Show a message, let the page draw it, then run the work; an error becomes the message, never a frozen widget. */
  function later(work, message) {
    status(message);
    setTimeout(() => {
      try { work(); } catch (err) { status(String(err.message || err)); }
    }, 0);
  }
  function status(text) { model.set("status", text); model.save_changes(); }

  /** TemperatureExplorer.read in the page: one forward pass, the prompt added to the list and shown. */
  function readInPage(text) {
    if (text === "") throw new Error("prompt must hold some text, got an empty prompt");
    const { tokenizer, model: gpt } = inPage, ids = tokenizer.encode(text), maxLen = gpt.config.max_len;
    if (ids.length > maxLen) throw new Error(`prompt must fit the model's ${maxLen} positions, got ${ids.length} tokens`);
    const z = gpt.nextLogits(ids, gpt.newCache());
    const labels = argsort(z, true).slice(0, model.get("n_top")).map((id) => tokenizer.label(id));
    const entries = [...model.get("prompts"), { prompt: text, logits: encodeLogits(z), labels, ids }];
    model.set("prompts", entries);
    model.set("selected", entries.length - 1);
    model.set("status", "");
    model.save_changes();
  }

  /** TemperatureExplorer.sample in the page: n_samples continuations with the current warpers and the next seed. */
  function sampleInPage() {
    const entry = model.get("prompts")[model.get("selected")], ids = entry.ids;
    const T = model.get("temperature"), topK = model.get("top_k"), topP = model.get("top_p"), seed = presses++;
    const outs = inPage.sample(ids, { n: model.get("n_samples"), maxNew: model.get("max_new_tokens"), seed,
      probs: (z) => softmax(warpLogits(z, T, topK, topP)) });
    model.set("samples", outs.map((out) => [entry.prompt, inPage.tokenizer.decode(out), JSON.stringify(out)]));
    model.set("status", `T = ${T.toFixed(2)}, top-k = ${topK}, top-p = ${topP.toFixed(2)}, seed ${seed} (in this page):`);
    model.save_changes();
  }

  function draw() {
    const entries = model.get("prompts"), selected = Math.min(model.get("selected"), entries.length - 1);
    prompt.input.replaceChildren(...entries.map((e, i) => el("option", { value: i, text: e.prompt })));
    prompt.input.value = selected;
    const T = model.get("temperature"), topK = model.get("top_k"), topP = model.get("top_p"), nTop = model.get("n_top");
    t.input.value = Math.log10(T); k.input.value = topK; p.input.value = topP;
    t.readout.value = T.toFixed(2); k.readout.value = topK || "off"; p.readout.value = topP < 1 ? topP.toFixed(2) : "off";

    const entry = entries[selected], { z, descending, before } = logitsOf(entry);
    const w = warpLogits(z, T, topK, topP), after = softmax(w);
    const survivors = descending.filter((i) => w[i] > -Infinity).length;
    const top = descending.slice(0, nTop), labels = entry.labels.slice(0, nTop);
    const hBefore = entropy(before), hAfter = entropy(after);
    const beyond = (q) => 1 - top.reduce((s, i) => s + q[i], 0);
    caption.textContent = `${survivors} of ${z.length} tokens survive the filters; entropy ${hBefore.toFixed(2)} -> `
      + `${hAfter.toFixed(2)} nats (as many choices as ${Math.exp(hBefore).toFixed(1)} -> ${Math.exp(hAfter).toFixed(1)} `
      + `equal tokens); mass beyond the top ${nTop}: ${beyond(before).toFixed(2)} -> ${beyond(after).toFixed(2)}. `
      + "␣ marks a space inside a token; a red label is a removed token.";

    const barW = 30, left = 50, plotH = 180, labelRoom = 110, width = left + nTop * barW + 20;
    const yMax = Math.max(...top.map((i) => Math.max(before[i], after[i])), 1e-9);
    figure.replaceChildren();
    const svg = svgEl("svg", { width, height: plotH + labelRoom + 30, role: "img" }, figure);
    const plot = svgEl("g", { transform: `translate(${left}, 22)` }, svg);
    for (const v of [0, 0.5, 1]) {
      const y = plotH * (1 - v);
      svgEl("line", { x1: 0, x2: nTop * barW, y1: y, y2: y, stroke: "#999", "stroke-width": 0.5 }, plot);
      svgEl("text", { x: -4, y: y + 4, "text-anchor": "end", "font-size": 10, fill: "currentColor", text: (v * yMax).toFixed(2) }, plot);
    }
    top.forEach((i, r) => {
      const x = r * barW, hb = (plotH * before[i]) / yMax, ha = (plotH * after[i]) / yMax;
      svgEl("rect", { x: x + 3, y: plotH - hb, width: 12, height: hb, fill: "#aaa" }, plot);
      svgEl("rect", { x: x + 15, y: plotH - ha, width: 12, height: ha, fill: "#1f77b4" }, plot);
      svgEl("text", {
        "font-size": 11, "text-anchor": "end", fill: w[i] > -Infinity ? "currentColor" : "#d62728",
        transform: `translate(${x + 17}, ${plotH + 8}) rotate(-60)`, text: labels[r],
      }, plot);
    });
    const legend = svgEl("g", { transform: `translate(${left}, 8)` }, svg);
    svgEl("rect", { width: 10, height: 10, fill: "#aaa" }, legend);
    svgEl("text", { x: 14, y: 9, "font-size": 11, fill: "currentColor", text: "the model, T = 1" }, legend);
    svgEl("rect", { x: 130, width: 10, height: 10, fill: "#1f77b4" }, legend);
    svgEl("text", { x: 144, y: 9, "font-size": 11, fill: "currentColor", text: "after the warpers (sampled from)" }, legend);

    root.dataset.settings = JSON.stringify({ temperature: T, top_k: topK, top_p: topP, prompt: selected });
    root.dataset.prompt = entry.prompt;
    root.dataset.ids = JSON.stringify(entry.ids);
    root.dataset.survivors = survivors;
    root.dataset.entropyBefore = hBefore;
    root.dataset.entropyAfter = hAfter;
    root.dataset.top = JSON.stringify(top.map((i) => [i, after[i]]));
  }
  function drawSamples() {
    const texts = model.get("samples");
    samples.replaceChildren();
    if (model.get("status")) el("p", { class: "cu-status", text: model.get("status") }, samples);
    const list = el("ol", {}, samples);
    for (const [prefix, continuation, ids] of texts) { // the prompt, then what the model wrote (bold)
      const item = el("li", { text: prefix }, list);
      if (ids) item.dataset.ids = ids; // the new token ids, when the page sampled
      el("b", { text: continuation }, item);
    }
  }
  for (const name of ["prompts", "selected", "temperature", "top_k", "top_p"]) model.on(`change:${name}`, draw);
  for (const name of ["samples", "status"]) model.on(`change:${name}`, drawSamples);
  draw();
  root.dataset.firstDrawMs = Math.round(performance.now());
  drawSamples();
  // The model (10 MB for the tiny GPT) is loaded after the figure is drawn, so that the figure does not wait for it.
  if (model.get("page_model") && !globalThis.courseTinyGPT) setTimeout(() => loadPageModel(model.get("page_model")));
}

export default {
  render({ model, el: host }) {
    const root = el("div", { class: `cu-explorer cu-${model.get("explorer")}` }, host);
    (model.get("explorer") === "mask" ? renderMask : renderTemperature)(model, root);
  },
};
