// The tiny GPT of chapter 06 in the page: its byte-level BPE and its forward pass, in plain JavaScript.
// course_utils/browser_gpt.py writes this file and the checkpoint's numbers into one script, _static/tiny_gpt.js,
// which the book loads on the pages of the temperature explorer (a <script>, so that it also works from file://).
// It mirrors the Python reference, which the tests compare it with:
//   encode       tokenizers' ByteLevel pre-tokenizer + BPE model, and data.prompt_ids (<s> first, no </s>)
//   decode       tokenizer.decode(ids, skip_special_tokens=True); label: data.token_labels
//   nextLogits   course_utils.models.Decoder, GPT-2's layout: token + position embeddings, pre-LN blocks
//                (causal multi-head attention, tanh-GELU feed-forward), final LayerNorm, the tied LM head;
//                with a KV cache, as generation.generate: a new token costs one row of attention per layer.
// Arithmetic in float64 on the float32 weights: the probabilities agree with PyTorch's to about 1e-7.
(function (root) {
  "use strict";

  // ---------------------------------------------------------------- the byte-level BPE

  /** GPT-2's bytes_to_unicode: each byte as a printable character (a space is "Ġ", a newline "Ċ"). */
  const BYTE_CHARS = (() => {
    const chars = new Array(256);
    let extra = 0;
    for (let b = 0; b < 256; b++) {
      const printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
      chars[b] = String.fromCharCode(printable ? b : 256 + extra++);
    }
    return chars;
  })();
  const CHAR_BYTES = new Map(BYTE_CHARS.map((c, b) => [c, b]));
  // tokenizers' ByteLevel pre-tokenizer (GPT-2's pattern): contractions, letters, digits, other symbols, spaces.
  const PIECES = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

  class BPE {
    constructor({ vocab, merges, special }) {
      this.vocab = vocab; // id -> token string (byte characters)
      this.ids = new Map(vocab.map((token, id) => [token, id]));
      this.ranks = new Map(merges.map((pair, rank) => [pair, rank])); // "a b" -> priority, lowest first
      this.special = special; // {"<s>": 0, ...}: matched in the text before anything else, as tokenizers does
      this.specialIds = new Set(Object.values(special));
      this.bos = special["<s>"];
      this.eos = special["</s>"];
      this.cache = new Map();
    }

    /** The ids of one pre-tokenized piece: its bytes as characters, merged pair by pair, lowest rank first. */
    piece(text) {
      if (this.cache.has(text)) return this.cache.get(text);
      let symbols = Array.from(new TextEncoder().encode(text), (b) => BYTE_CHARS[b]);
      for (;;) {
        let best = -1, bestRank = Infinity;
        for (let i = 0; i + 1 < symbols.length; i++) {
          const rank = this.ranks.get(symbols[i] + " " + symbols[i + 1]);
          if (rank !== undefined && rank < bestRank) [best, bestRank] = [i, rank];
        }
        if (best < 0) break;
        const [a, b] = [symbols[best], symbols[best + 1]], merged = [];
        for (let i = 0; i < symbols.length; i++) { // every occurrence of the pair, left to right
          if (i + 1 < symbols.length && symbols[i] === a && symbols[i + 1] === b) merged.push(a + b), i++;
          else merged.push(symbols[i]);
        }
        symbols = merged;
      }
      const ids = symbols.map((s) => this.ids.get(s));
      this.cache.set(text, ids);
      return ids;
    }

    /** data.prompt_ids: <s>, then the text's tokens (special tokens written in the text count as such). */
    encode(text) {
      const ids = [this.bos], names = Object.keys(this.special).sort((a, b) => b.length - a.length);
      let rest = text;
      while (rest.length) {
        let at = rest.length, name = null; // the first special token in the rest (the longest at a tie)
        for (const n of names) {
          const i = rest.indexOf(n);
          if (i >= 0 && i < at) [at, name] = [i, n];
        }
        for (const m of rest.slice(0, at).matchAll(PIECES)) ids.push(...this.piece(m[0]));
        if (name === null) break;
        ids.push(this.special[name]);
        rest = rest.slice(at + name.length);
      }
      return ids;
    }

    /** The text of ids: their bytes, read as UTF-8 (a broken sequence reads as U+FFFD); special tokens dropped. */
    decode(ids, skipSpecial = true) {
      const bytes = [];
      for (const id of ids) {
        if (skipSpecial && this.specialIds.has(id)) continue;
        for (const c of this.vocab[id]) bytes.push(CHAR_BYTES.has(c) ? CHAR_BYTES.get(c) : c.charCodeAt(0));
      }
      return new TextDecoder().decode(new Uint8Array(bytes));
    }

    /** data.token_labels: a token as it reads in a figure, "␣" for a space, "⏎" for a newline, controls escaped. */
    label(id) {
      const text = this.decode([id], false).replaceAll(" ", "␣").replaceAll("\n", "⏎");
      return Array.from(text, (c) => (UNPRINTABLE.test(c) ? escape(c) : c)).join("");
    }
  }

  // Python's str.isprintable() is false for these categories (a space was replaced above).
  const UNPRINTABLE = /^[\p{Cc}\p{Cf}\p{Cs}\p{Co}\p{Cn}\p{Zl}\p{Zp}\p{Zs}]$/u;
  const SHORT_ESCAPES = { "\t": "\\t", "\r": "\\r", "\n": "\\n", "\\": "\\\\" };

  /** repr(c)[1:-1] of one unprintable character: \t, \x1b, \u200b, \U000e0001. */
  function escape(c) {
    if (SHORT_ESCAPES[c]) return SHORT_ESCAPES[c];
    const code = c.codePointAt(0), hex = code.toString(16);
    if (code < 0x100) return "\\x" + hex.padStart(2, "0");
    return code < 0x10000 ? "\\u" + hex.padStart(4, "0") : "\\U" + hex.padStart(8, "0");
  }

  // ---------------------------------------------------------------- the decoder

  /** y = W x + b for a torch Linear: W (out, in) row-major, as stored. */
  function linear(W, b, x, out) {
    const n = x.length, y = new Float64Array(out);
    for (let o = 0; o < out; o++) {
      let s = b ? b[o] : 0;
      for (let i = 0, row = o * n; i < n; i++) s += W[row + i] * x[i];
      y[o] = s;
    }
    return y;
  }

  /** LayerNorm of eq. (3): (x - mu) / sqrt(var + eps) * gain + bias, var biased. */
  function layerNorm(x, gain, bias, eps) {
    let mu = 0, v = 0;
    for (const a of x) mu += a;
    mu /= x.length;
    for (const a of x) v += (a - mu) ** 2;
    const sigma = Math.sqrt(v / x.length + eps);
    return Float64Array.from(x, (a, i) => ((a - mu) / sigma) * gain[i] + bias[i]);
  }

  /** GPT-2's GELU, the tanh approximation. */
  const gelu = (x) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));

  class GPT {
    constructor(config, weights) {
      this.config = config; // vocab_size, d_model, n_heads, n_layers, d_ff, max_len, eps
      this.w = weights; // state_dict name -> Float32Array
    }

    /** An empty KV cache: per layer, the keys and values (d_model each) of the positions read so far. */
    newCache() {
      return Array.from({ length: this.config.n_layers }, () => ({ k: [], v: [] }));
    }

    /** One token at the next position: its residual stream through every layer; the cache grows by one. */
    step(id, cache) {
      const { d_model: d, n_heads: H, n_layers, d_ff, eps } = this.config, w = this.w, dh = d / H;
      const t = cache[0].k.length;
      let x = new Float64Array(d);
      for (let i = 0; i < d; i++) x[i] = w["tok.weight"][id * d + i] + w["pos.weight"][t * d + i];
      for (let l = 0; l < n_layers; l++) {
        const p = (name) => w[`layers.${l}.${name}`], c = cache[l];
        // x + attention(norm1(x)): the query of this token against the keys of tokens 0..t (causal)
        const h = layerNorm(x, p("norm1.weight"), p("norm1.bias"), eps);
        const q = linear(p("attn.q_proj.weight"), p("attn.q_proj.bias"), h, d);
        c.k.push(linear(p("attn.k_proj.weight"), p("attn.k_proj.bias"), h, d));
        c.v.push(linear(p("attn.v_proj.weight"), p("attn.v_proj.bias"), h, d));
        const heads = new Float64Array(d);
        for (let hd = 0; hd < H; hd++) {
          const o = hd * dh, scores = new Float64Array(t + 1);
          let max = -Infinity, sum = 0;
          for (let j = 0; j <= t; j++) {
            let s = 0;
            for (let i = 0; i < dh; i++) s += q[o + i] * c.k[j][o + i];
            scores[j] = s / Math.sqrt(dh);
            if (scores[j] > max) max = scores[j];
          }
          for (let j = 0; j <= t; j++) sum += (scores[j] = Math.exp(scores[j] - max));
          for (let j = 0; j <= t; j++) {
            const alpha = scores[j] / sum;
            for (let i = 0; i < dh; i++) heads[o + i] += alpha * c.v[j][o + i];
          }
        }
        const a = linear(p("attn.out_proj.weight"), p("attn.out_proj.bias"), heads, d);
        for (let i = 0; i < d; i++) x[i] += a[i];
        // x + FFN(norm2(x))
        const h2 = layerNorm(x, p("norm2.weight"), p("norm2.bias"), eps);
        const f = linear(p("ffn.w1.weight"), p("ffn.w1.bias"), h2, d_ff).map(gelu);
        const y = linear(p("ffn.w2.weight"), p("ffn.w2.bias"), f, d);
        for (let i = 0; i < d; i++) x[i] += y[i];
      }
      return x;
    }

    /** The logits (V,) of the token after ids, read one by one into cache (new ids only, after the cached ones). */
    nextLogits(ids, cache) {
      const { vocab_size: V, d_model: d, max_len, eps } = this.config;
      if (cache[0].k.length + ids.length > max_len)
        throw new RangeError(`the tiny GPT reads at most ${max_len} tokens, got ${cache[0].k.length + ids.length}`);
      let x = null;
      for (const id of ids) x = this.step(id, cache);
      return linear(this.w["tok.weight"], null, layerNorm(x, this.w["norm.weight"], this.w["norm.bias"], eps), V);
    }
  }

  // ---------------------------------------------------------------- a seeded sampler

  /** mulberry32: a small seeded generator of uniform numbers in [0, 1), so that a seed gives the same texts. */
  function uniform(seed) {
    let a = seed >>> 0;
    return () => {
      a = (a + 0x6d2b79f5) >>> 0;
      let t = Math.imul(a ^ (a >>> 15), 1 | a);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  }

  /** The index drawn from probabilities p (summing to 1) by one uniform number u: the inverse of the CDF. */
  function draw(p, u) {
    let last = -1;
    for (let i = 0; i < p.length; i++) {
      if (p[i] <= 0) continue;
      last = i;
      if ((u -= p[i]) < 0) return i;
    }
    return last; // rounding left u just above 0: the last token with mass
  }

  /** n continuations of the prompt ids (each at most maxNew new ids, eos included), drawn token by token from
   *  probs(z), the distribution after the warpers, with a generator seeded by seed. The prompt is read once and its
   *  cache shared; each new token costs one row of attention per layer (generate's use_cache=True). */
  function continuations(gpt, eos, ids, { n, maxNew, seed, probs }) {
    if (ids.length + maxNew > gpt.config.max_len)
      throw new RangeError(`the prompt (${ids.length} tokens) + max_new_tokens (${maxNew}) exceeds the model's `
        + `${gpt.config.max_len} positions`);
    const rand = uniform(seed), prompt = gpt.newCache(), first = gpt.nextLogits(ids, prompt), texts = [];
    for (let s = 0; s < n; s++) {
      const cache = prompt.map((layer) => ({ k: [...layer.k], v: [...layer.v] })), out = [];
      for (let z = first; out.length < maxNew;) {
        out.push(draw(probs(z), rand()));
        if (out[out.length - 1] === eos || out.length === maxNew) break;
        z = gpt.nextLogits(out.slice(-1), cache);
      }
      texts.push(out);
    }
    return texts;
  }

  /** The numbers written by browser_gpt.py -> the tokenizer and the model; weights are float32 bytes in base64. */
  function load(data) {
    const bytes = Uint8Array.from(atob(data.weights), (c) => c.charCodeAt(0));
    const weights = {};
    for (const [name, [offset, length]] of Object.entries(data.tensors))
      weights[name] = new Float32Array(bytes.buffer, offset, length);
    const tokenizer = new BPE(data.tokenizer), model = new GPT(data.config, weights);
    const sample = (ids, options) => continuations(model, tokenizer.eos, ids, options);
    return { name: data.name, tokenizer, model, sample };
  }

  root.BrowserGPT = { BPE, GPT, load, uniform, draw, continuations };
})(globalThis);
