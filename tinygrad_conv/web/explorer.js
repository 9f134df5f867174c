/* The backprop explorer: draws the page data written by tinygrad_conv/explore.py.
 *
 * The data (JSON in <script id="tc-trace">) holds the forward graph (ops, tensors, module
 * clusters), one entry per backward step in execution order (upstream gradient, calls, input
 * gradients with their expressions) and the accumulation events, all read from the engine's
 * records. This script only lays out and draws (dagre, vendored) and steps through them.
 *
 * Automation contract: window.tcExplorer.step(), back(), goto(i), state() -> {step, nsteps,
 * node, op, ...}; the highlighted graph node carries the CSS class "current".
 */
(function () {
  "use strict";
  const t0 = performance.now();
  const D = JSON.parse(document.getElementById("tc-trace").textContent);
  const NS = "http://www.w3.org/2000/svg";
  const svg = document.getElementById("graph");
  const viewport = document.getElementById("viewport");
  const pane = document.getElementById("step-pane");
  const nsteps = D.steps.length;

  // ------------------------------------------------------------------ text helpers
  function num(v) {
    if (v === null || v === undefined) return "-";
    v = Number(v);
    if (!isFinite(v)) return String(v);
    if (v === 0) return "0";
    const a = Math.abs(v);
    if (a >= 1e6 || a < 1e-4) return v.toExponential(3).replace(/\.?0+e/, "e");
    return String(Number(v.toPrecision(4)));
  }
  function shapeText(s) {
    return "(" + s.join(", ") + (s.length === 1 ? "," : "") + ")";
  }
  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = text;
    return e;
  }
  function svgEl(tag, attrs) {
    const e = document.createElementNS(NS, tag);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    return e;
  }
  function prod(s) {
    let n = 1;
    for (const v of s) n *= v;
    return n;
  }

  // ------------------------------------------------------------------ clusters
  const nclusters = D.clusters.length;
  const chains = []; // cluster -> [outermost ... itself]
  for (let c = 0; c < nclusters; c++) {
    const chain = [];
    for (let p = c; p >= 0; p = D.clusters[p].parent) chain.push(p);
    chains.push(chain.reverse());
  }
  const opCount = new Array(nclusters).fill(0); // ops inside a cluster, nested ones included
  D.ops.forEach(function (op) {
    if (op.cluster >= 0) for (const c of chains[op.cluster]) opCount[c]++;
  });
  const firstStepOf = new Map(); // op index -> first step index
  D.steps.forEach(function (s, i) {
    if (!firstStepOf.has(s.node)) firstStepOf.set(s.node, i);
  });
  const expanded = new Set();

  function clusterPath(c) {
    return c < 0 ? "" : chains[c].map(function (k) { return D.clusters[k].label; }).join(" / ");
  }
  // id of what is drawn for an item of cluster c whose own id is own
  function visibleId(c, own) {
    if (c < 0) return own;
    for (const k of chains[c]) if (!expanded.has(k)) return "m" + k;
    return own;
  }
  function opVisible(n) {
    return visibleId(D.ops[n].cluster, "op" + n);
  }
  function tensorVisible(k) {
    const t = D.tensors[k];
    if (t.producer >= 0) return opVisible(t.producer);
    return visibleId(t.cluster, "t" + k);
  }
  function drawnGroup(c) {
    // an expanded cluster is drawn as a group when all its ancestors are expanded too
    for (const k of chains[c]) if (!expanded.has(k)) return false;
    return true;
  }

  // ------------------------------------------------------------------ layout and drawing
  let layoutInfo = { width: 0, height: 0, nodes: 0 };
  const elements = new Map(); // drawn id -> <g>
  let lastLayoutMs = 0;

  function nodeSize(lines) {
    let m = 0;
    for (const l of lines) m = Math.max(m, l.length);
    return { width: Math.max(50, m * 6.6 + 16), height: 14 * lines.length + 10 };
  }

  function opLines(n) {
    const op = D.ops[n];
    const first = op.attrs.length && op.attrs[0].length < 26 ? op.op + " " + op.attrs[0] : op.op;
    return [first, shapeText(D.tensors[op.output].shape)];
  }
  function leafLines(k) {
    const t = D.tensors[k];
    // a tensor that does not require grad: data (an input batch, labels) or a constant
    const title = t.name || (t.kind === "param" ? "leaf" : t.shape.length ? "data (no grad)" : "constant");
    return [title, shapeText(t.shape)];
  }

  // Order of the graph's items along the backward pass: an op by its step (ops backward did
  // not reach after all of them), a box by its first op, a leaf by its first consumer. A graph
  // too large to lay out at once is drawn as a window of DRAW_LIMIT items around the current one.
  const DRAW_LIMIT = 600;
  const opKey = D.ops.map(function (op, n) {
    return firstStepOf.has(n) ? firstStepOf.get(n) : nsteps + n;
  });
  const clusterKey = new Array(nclusters).fill(Infinity);
  D.ops.forEach(function (op, n) {
    if (op.cluster >= 0) for (const c of chains[op.cluster]) clusterKey[c] = Math.min(clusterKey[c], opKey[n]);
  });
  const leafKey = new Map();
  D.ops.forEach(function (op, n) {
    for (const k of op.inputs) {
      if (D.tensors[k].producer >= 0) continue;
      leafKey.set(k, Math.min(leafKey.has(k) ? leafKey.get(k) : Infinity, opKey[n]));
    }
  });
  // scalar constants (the 2 of x * 2) are not drawn: the step's forward line shows them
  function drawnLeaf(t) {
    return !(t.kind === "const" && t.shape.length === 0);
  }
  let windowed = null; // {shown, total} when only a window of the graph is drawn

  function layout() {
    const start = performance.now();
    // the candidates at the current expansion: [id, order key]
    const items = [];
    for (let c = 0; c < nclusters; c++) {
      const parent = D.clusters[c].parent;
      if (parent >= 0 && !drawnGroup(parent)) continue;
      if (!drawnGroup(c)) items.push(["m" + c, clusterKey[c]]);
    }
    D.ops.forEach(function (op, n) {
      if (opVisible(n) === "op" + n) items.push(["op" + n, opKey[n]]);
    });
    D.tensors.forEach(function (t, k) {
      if (t.producer >= 0 || !drawnLeaf(t) || tensorVisible(k) !== "t" + k) return;
      items.push(["t" + k, leafKey.has(k) ? leafKey.get(k) : Infinity]);
    });
    let keep = null;
    windowed = null;
    if (items.length > DRAW_LIMIT) {
      items.sort(function (a, b) { return a[1] - b[1]; });
      const here = Math.max(0, items.findIndex(function (it) { return it[0] === currentId(); }));
      const lo = Math.max(0, Math.min(here - DRAW_LIMIT / 2, items.length - DRAW_LIMIT));
      const slice = items.slice(lo, lo + DRAW_LIMIT).map(function (it) { return it[0]; });
      keep = new Set(slice);
      const pos = new Map();
      slice.forEach(function (id, i) { pos.set(id, i); });
      windowed = { shown: DRAW_LIMIT, total: items.length, first: lo, pos: pos };
    }
    const wanted = function (id) { return keep === null || keep.has(id); };

    const g = new dagre.graphlib.Graph({ compound: true });
    g.setGraph({ rankdir: "TB", nodesep: 14, ranksep: 30, marginx: 12, marginy: 28 });
    g.setDefaultEdgeLabel(function () { return {}; });
    const groupsUsed = new Set(); // expanded clusters holding a drawn item
    function inGroup(id, c) {
      if (c < 0) return;
      g.setParent(id, "m" + c);
      for (const k of chains[c]) groupsUsed.add(k);
    }
    for (let c = 0; c < nclusters; c++) {
      const parent = D.clusters[c].parent;
      if (parent >= 0 && !drawnGroup(parent)) continue;
      if (drawnGroup(c) || !wanted("m" + c)) continue;
      const lines = [D.clusters[c].label, opCount[c] + (opCount[c] === 1 ? " op" : " ops") + "  (click to open)"];
      const size = nodeSize(lines);
      g.setNode("m" + c, { kind: "box", cluster: c, lines: lines, width: size.width, height: size.height });
    }
    D.ops.forEach(function (op, n) {
      const id = "op" + n;
      if (opVisible(n) !== id || !wanted(id)) return;
      const lines = opLines(n);
      const size = nodeSize(lines);
      const root = D.tensors[op.output].kind === "root";
      g.setNode(id, { kind: root ? "op root" : "op", n: n, lines: lines, width: size.width, height: size.height });
    });
    D.tensors.forEach(function (t, k) {
      const id = "t" + k;
      if (t.producer >= 0 || !drawnLeaf(t) || tensorVisible(k) !== id || !wanted(id)) return;
      const lines = leafLines(k);
      const size = nodeSize(lines);
      g.setNode(id, { kind: t.kind, k: k, lines: lines, width: size.width, height: size.height });
    });
    // parents: an item sits in the group of its cluster (a box in its parent's)
    g.nodes().forEach(function (id) {
      const d = g.node(id);
      if (d.kind === "box") inGroup(id, D.clusters[d.cluster].parent);
      else if (d.n !== undefined) inGroup(id, D.ops[d.n].cluster);
      else inGroup(id, D.tensors[d.k].cluster);
    });
    groupsUsed.forEach(function (c) {
      g.setNode("m" + c, { kind: "group", cluster: c });
    });
    groupsUsed.forEach(function (c) {
      if (D.clusters[c].parent >= 0) g.setParent("m" + c, "m" + D.clusters[c].parent);
    });
    const seen = new Map(); // "src>dst" -> number of uses (x * x is one edge used twice)
    D.ops.forEach(function (op, n) {
      const dst = opVisible(n);
      if (!g.hasNode(dst)) return;
      for (const k of op.inputs) {
        const src = tensorVisible(k);
        if (src === dst || !g.hasNode(src)) continue;
        const key = src + ">" + dst;
        const count = (seen.get(key) || 0) + 1;
        seen.set(key, count);
        if (count === 1) g.setEdge(src, dst, {});
        else if (g.node(dst).kind !== "box") g.setEdge(src, dst, { label: "\u00D7" + count, width: 18, height: 12 });
      }
    });
    dagre.layout(g);
    lastLayoutMs = performance.now() - start;
    draw(g);
    const note = document.getElementById("window-note");
    note.textContent = windowed
      ? "The graph has " + windowed.total + " items at this level: drawn are the " + windowed.shown +
        " around the current step (in backward order); stepping further redraws the window. Open fewer boxes to see more at once."
      : "";
    note.style.display = windowed ? "block" : "none";
  }

  // whether the current item is drawn well inside the window (else the window moves)
  function windowHolds(id) {
    if (!elements.has(id)) return false;
    if (!windowed) return true;
    const i = windowed.pos.get(id);
    const margin = DRAW_LIMIT * 0.15;
    const lowOk = windowed.first === 0 || i >= margin;
    const highOk = windowed.first + windowed.shown >= windowed.total || i < windowed.shown - margin;
    return lowOk && highOk;
  }

  function draw(g) {
    viewport.textContent = "";
    elements.clear();
    const groups = svgEl("g", { class: "groups" });
    const edges = svgEl("g", { class: "edges" });
    const nodes = svgEl("g", { class: "nodes" });
    viewport.append(groups, edges, nodes);
    g.nodes().forEach(function (id) {
      const d = g.node(id);
      if (!d || d.kind !== "group") return;
      const gr = svgEl("g", { class: "group", "data-id": id });
      // dagre leaves no room for a title: the rect grows upwards into the rank gap
      const top = d.y - d.height / 2 - 16;
      gr.append(svgEl("rect", { x: d.x - d.width / 2, y: top, width: d.width, height: d.height + 16, rx: 8 }));
      const title = svgEl("text", { x: d.x - d.width / 2 + 8, y: top + 13, class: "group-title" });
      title.textContent = "\u25BE " + D.clusters[d.cluster].label;
      title.addEventListener("click", function (ev) {
        ev.stopPropagation();
        collapse(d.cluster);
      });
      gr.append(title);
      groups.append(gr);
      elements.set(id, gr);
    });
    g.edges().forEach(function (e) {
      const pts = g.edge(e).points;
      let dpath = "M" + pts[0].x + "," + pts[0].y;
      for (let i = 1; i < pts.length; i++) dpath += " L" + pts[i].x + "," + pts[i].y;
      edges.append(svgEl("path", { d: dpath, "marker-end": "url(#arrow)", "data-src": e.v, "data-dst": e.w }));
      const lab = g.edge(e);
      if (lab.label) {
        const t = svgEl("text", { x: lab.x, y: lab.y + 4, class: "edge-label" });
        t.textContent = lab.label;
        edges.append(t);
      }
    });
    g.nodes().forEach(function (id) {
      const d = g.node(id);
      if (!d || d.kind === "group") return;
      const cls = "node " + d.kind;
      const ng = svgEl("g", { class: cls, "data-id": id, transform: "translate(" + (d.x - d.width / 2) + "," + (d.y - d.height / 2) + ")" });
      if (d.n !== undefined) ng.setAttribute("data-op", D.ops[d.n].op);
      if (d.kind === "box") ng.setAttribute("data-label", D.clusters[d.cluster].label);
      ng.append(svgEl("rect", { width: d.width, height: d.height, rx: d.kind === "box" ? 8 : 3 }));
      d.lines.forEach(function (line, i) {
        const t = svgEl("text", { x: d.width / 2, y: 16 + 14 * i, class: i === 0 ? "l0" : "l1" });
        t.textContent = line;
        ng.append(t);
      });
      const tip = svgEl("title", {});
      tip.textContent = tooltip(d);
      ng.append(tip);
      ng.addEventListener("click", function () { clickNode(d); });
      nodes.append(ng);
      elements.set(id, ng);
    });
    const gi = g.graph();
    layoutInfo = { width: gi.width || 0, height: gi.height || 0, nodes: g.nodeCount() };
  }

  function tooltip(d) {
    if (d.kind === "box") return clusterPath(d.cluster) + ": " + opCount[d.cluster] + " ops; click to open";
    if (d.n !== undefined) {
      const op = D.ops[d.n];
      const s = firstStepOf.get(d.n);
      return [op.op].concat(op.attrs).join("  ") + (s === undefined ? "" : "\nclick: go to step " + (s + 1));
    }
    const t = D.tensors[d.k];
    return (t.name || t.kind) + " " + shapeText(t.shape) + " " + t.dtype;
  }

  function clickNode(d) {
    if (d.kind === "box") {
      expand(d.cluster);
    } else if (d.n !== undefined && firstStepOf.has(d.n)) {
      goto(firstStepOf.get(d.n));
    }
  }

  // ------------------------------------------------------------------ pan and zoom
  const view = { x: 0, y: 0, k: 1 };
  const MIN_READABLE = 0.6; // least zoom at which node labels can be read
  function applyView() {
    viewport.setAttribute("transform", "translate(" + view.x + "," + view.y + ") scale(" + view.k + ")");
  }
  function fit() {
    const w = svg.clientWidth || 800;
    const h = svg.clientHeight || 600;
    let k = Math.min(1.2, w / Math.max(1, layoutInfo.width), h / Math.max(1, layoutInfo.height));
    if (k < MIN_READABLE) {
      // a tall graph shrunk to the pane would be unreadable: fit the width, show the top
      k = Math.max(MIN_READABLE, Math.min(1, w / Math.max(1, layoutInfo.width)));
      view.k = k;
      view.x = Math.max(0, (w - layoutInfo.width * k) / 2);
      view.y = 0;
    } else {
      view.k = k;
      view.x = (w - layoutInfo.width * k) / 2;
      view.y = Math.max(0, (h - layoutInfo.height * k) / 2);
    }
    applyView();
  }
  function reveal(id) {
    const e = elements.get(id);
    if (!e || !e.getBBox) return;
    const b = e.getBBox();
    const m = e.getAttribute("transform");
    let x = b.x;
    let y = b.y;
    if (m) {
      const p = m.match(/translate\(([-\d.e]+),([-\d.e]+)\)/);
      if (p) {
        x += Number(p[1]);
        y += Number(p[2]);
      }
    }
    const w = svg.clientWidth || 800;
    const h = svg.clientHeight || 600;
    const sx = x * view.k + view.x;
    const sy = y * view.k + view.y;
    if (sx < 0 || sy < 0 || sx + b.width * view.k > w || sy + b.height * view.k > h || view.k < MIN_READABLE) {
      view.k = Math.max(view.k, MIN_READABLE);
      view.x = w / 2 - (x + b.width / 2) * view.k;
      view.y = h / 2 - (y + b.height / 2) * view.k;
      applyView();
    }
  }
  let drag = null;
  svg.addEventListener("mousedown", function (ev) {
    drag = { x: ev.clientX - view.x, y: ev.clientY - view.y };
  });
  window.addEventListener("mousemove", function (ev) {
    if (!drag) return;
    view.x = ev.clientX - drag.x;
    view.y = ev.clientY - drag.y;
    applyView();
  });
  window.addEventListener("mouseup", function () { drag = null; });
  svg.addEventListener("wheel", function (ev) {
    ev.preventDefault();
    const r = svg.getBoundingClientRect();
    const px = ev.clientX - r.left;
    const py = ev.clientY - r.top;
    const f = ev.deltaY < 0 ? 1.15 : 1 / 1.15;
    view.x = px - (px - view.x) * f;
    view.y = py - (py - view.y) * f;
    view.k *= f;
    applyView();
  }, { passive: false });

  function expand(c) {
    for (const k of chains[c]) expanded.add(k);
    layout();
    highlight();
    reveal(currentId());
  }
  function collapse(c) {
    expanded.delete(c);
    for (let k = 0; k < nclusters; k++) if (chains[k].indexOf(c) >= 0) expanded.delete(k);
    layout();
    highlight();
  }

  // ------------------------------------------------------------------ values
  function statsLine(v) {
    let s = shapeText(v.shape) + " " + v.dtype;
    if (v.min !== null) s += "   min " + num(v.min) + "   max " + num(v.max) + "   norm " + num(v.norm);
    if (v.nonfinite) s += "   (" + v.nonfinite + " NaN/inf)";
    return s;
  }

  function valueView(ref) {
    const box = el("div", "value");
    if (ref === null || ref === undefined) {
      box.append(el("span", "muted", "(no value recorded)"));
      return box;
    }
    const v = D.values[ref];
    box.append(el("div", "stats", statsLine(v)));
    if (!v.data) {
      box.append(el("div", "muted", v.note || "numbers not embedded"));
    } else if (v.data.length <= D.small) {
      box.append(numbersTable(v));
    } else {
      box.append(heatmap(v));
    }
    return box;
  }

  function numbersTable(v) {
    const table = el("table", "numbers");
    const s = v.shape;
    const cols = s.length === 0 ? 1 : s[s.length - 1];
    const rows = cols === 0 ? 0 : v.data.length / cols;
    for (let r = 0; r < rows; r++) {
      const tr = el("tr");
      if (s.length > 2) {
        // the row's index over the leading axes, e.g. [0, 1, :]
        const idx = [];
        let rem = r;
        for (let a = s.length - 2; a >= 0; a--) {
          idx.unshift(rem % s[a]);
          rem = Math.floor(rem / s[a]);
        }
        tr.append(el("th", null, "[" + idx.join(", ") + ", :]"));
      }
      for (let c = 0; c < cols; c++) {
        const x = v.data[r * cols + c];
        const td = el("td", Number(x) < 0 ? "neg" : null, num(x));
        tr.append(td);
      }
      table.append(tr);
    }
    return table;
  }

  function heatmap(v) {
    const wrap = el("div", "heatmap");
    const s = v.shape;
    const r = s.length;
    // displayed axes: the spatial pair of NHWC (H, W), the matrix of a 2-D array, a row for 1-D
    // (a conv filter, HWIO: kh x kw, one in/out channel pair at a time)
    const hwio = v.layout === "HWIO";
    const axes = r === 1 ? [-1, 0] : r === 2 || hwio ? [0, 1] : [r - 3, r - 2];
    const fixed = new Array(r).fill(0);
    const strides = new Array(r).fill(1);
    for (let a = r - 2; a >= 0; a--) strides[a] = strides[a + 1] * s[a + 1];
    const H = axes[0] < 0 ? 1 : s[axes[0]];
    const W = s[axes[1]];
    const names = hwio ? ["h", "w", "in", "out"] : r === 4 ? ["n", "h", "w", "c"] : null;
    const controls = el("div", "slice");
    for (let a = 0; a < r; a++) {
      if (axes.indexOf(a) >= 0 || s[a] <= 1) continue;
      const lab = el("label", null, (names ? names[a] : "axis " + a) + " ");
      const inp = el("input");
      inp.type = "number";
      inp.min = 0;
      inp.max = s[a] - 1;
      inp.value = 0;
      inp.dataset.axis = a;
      inp.addEventListener("input", function () {
        const val = Math.max(0, Math.min(s[a] - 1, Number(inp.value) || 0));
        fixed[a] = val;
        paint();
      });
      lab.append(inp, document.createTextNode(" of " + s[a] + "  "));
      controls.append(lab);
    }
    let m = 0;
    for (const x of v.data) {
      const f = Math.abs(Number(x));
      if (isFinite(f) && f > m) m = f;
    }
    const cs = Math.max(2, Math.min(22, Math.floor(300 / Math.max(H, W))));
    const canvas = el("canvas");
    canvas.width = W * cs;
    canvas.height = H * cs;
    const hover = el("div", "muted hover", "hover a cell for its value");
    const legend = el("div", "legend", "blue -" + num(m) + "   white 0   red +" + num(m) + "  (one slice at a time)");
    function offset(i, j) {
      let o = 0;
      for (let a = 0; a < r; a++) {
        const idx = a === axes[0] ? i : a === axes[1] ? j : fixed[a];
        o += idx * strides[a];
      }
      return o;
    }
    function color(x) {
      x = Number(x);
      if (!isFinite(x)) return "#222";
      const t = m > 0 ? Math.min(1, Math.abs(x) / m) : 0;
      const c = Math.round(255 * (1 - t));
      return x >= 0 ? "rgb(255," + c + "," + c + ")" : "rgb(" + c + "," + c + ",255)";
    }
    function paint() {
      const ctx = canvas.getContext("2d");
      for (let i = 0; i < H; i++) {
        for (let j = 0; j < W; j++) {
          ctx.fillStyle = color(v.data[offset(i, j)]);
          ctx.fillRect(j * cs, i * cs, cs, cs);
        }
      }
    }
    canvas.addEventListener("mousemove", function (ev) {
      const rect = canvas.getBoundingClientRect();
      const j = Math.floor((ev.clientX - rect.left) / cs);
      const i = Math.floor((ev.clientY - rect.top) / cs);
      if (i < 0 || j < 0 || i >= H || j >= W) return;
      const idx = [];
      for (let a = 0; a < r; a++) idx.push(a === axes[0] ? i : a === axes[1] ? j : fixed[a]);
      hover.textContent = "[" + idx.join(", ") + "] = " + num(v.data[offset(i, j)]);
    });
    paint();
    wrap.append(controls, canvas, legend, hover);
    return wrap;
  }

  // ------------------------------------------------------------------ the step panel
  let cur = nsteps ? 0 : -1;

  function stepLink(i) {
    if (i === null) return el("span", null, "the seed");
    const a = el("a", "steplink", "step " + (i + 1));
    a.href = "#";
    a.addEventListener("click", function (ev) {
      ev.preventDefault();
      goto(i);
    });
    return a;
  }

  // links to the steps that sent contributions; a long list keeps its ends and the neighbours
  // of the one being shown (mark), with an ellipsis for the rest
  function stepLinks(p, steps, mark) {
    const keep = new Set([0, 1, 2, steps.length - 3, steps.length - 2, steps.length - 1]);
    if (mark !== null) for (let q = mark - 1; q <= mark + 1; q++) keep.add(q);
    let gap = false;
    let first = true;
    steps.forEach(function (i, q) {
      if (steps.length > 12 && !keep.has(q)) {
        gap = true;
        return;
      }
      if (!first) p.append(document.createTextNode(", "));
      if (gap) p.append(document.createTextNode("\u2026, "));
      gap = false;
      first = false;
      p.append(stepLink(i));
    });
  }

  function section(title) {
    const s = el("section", "part");
    s.append(el("h3", null, title));
    return s;
  }

  function tensorLabel(k, fallback) {
    const t = D.tensors[k];
    return t.name && t.name !== fallback ? fallback + " (" + t.name + ")" : fallback;
  }

  function renderStep() {
    pane.textContent = "";
    if (cur < 0) {
      pane.append(el("p", "muted", "The loss is a leaf: backward ran no node, there is nothing to step through."));
      return;
    }
    const s = D.steps[cur];
    const op = D.ops[s.node];
    const head = el("h2", null, "step " + (cur + 1) + " of " + nsteps + ": backward of " + s.op);
    head.id = "step-title";
    pane.append(head);
    if (op.attrs.length) pane.append(el("div", "attrs", op.attrs.join("   ")));
    const where = clusterPath(op.cluster);
    if (where) pane.append(el("div", "muted", "in " + where));
    const ins = op.inputs.map(function (k, i) {
      const t = D.tensors[k];
      const is = t.name ? " = " + t.name : t.value !== undefined ? " = " + num(t.value) : "";
      return op.labels[i] + " " + shapeText(t.shape) + is;
    });
    pane.append(el("div", "muted", "forward: " + s.op + "(" + ins.join(", ") + ") -> out " + shapeText(D.tensors[op.output].shape)));
    if (s.passes > 1) pane.append(el("div", "muted", "pass " + s.passes + " through this node"));

    // upstream
    const up = section("upstream gradient g " + shapeText(s.upstream.shape));
    up.id = "upstream";
    if (s.upstream.acc !== null && s.upstream.acc !== undefined) {
      const a = D.accumulations[s.upstream.acc];
      const lead = s.upstream.hooked ? "g is what a hook (register_hook) returned for the sum of " : "g is the sum of ";
      const p = el("p", "acc", lead + a.count + " contributions, from ");
      stepLinks(p, a.steps, null);
      up.append(p);
    } else if (s.upstream.hooked) {
      up.append(el("p", "acc", "g is what a hook (register_hook) returned for the gradient that arrived"));
    }
    up.append(valueView(s.upstream.value));
    pane.append(up);

    // calls
    const calls = section("calls made by backward");
    calls.id = "calls";
    if (!s.calls.length) {
      calls.append(el("p", "muted", "backward called no op"));
    } else {
      const table = el("table", "calls");
      s.calls.forEach(function (c, k) {
        const tr = el("tr", "call");
        tr.dataset.op = c.op;
        tr.append(el("td", "k", "#" + k));
        const main = el("td");
        const argText = c.args.map(function (a, i) {
          return a + " " + shapeText(c.argShapes[i] || []);
        });
        main.append(el("div", "callop", c.op + "(" + argText.join(", ") + ") -> " + shapeText(c.shape)));
        if (c.attrs.length) main.append(el("div", "attrs", c.attrs.join("   ")));
        const det = el("details");
        det.append(el("summary", null, "value"));
        let done = false;
        det.addEventListener("toggle", function () {
          if (det.open && !done) {
            done = true;
            det.append(valueView(c.value));
          }
        });
        main.append(det);
        tr.append(main);
        table.append(tr);
      });
      calls.append(table);
    }
    pane.append(calls);

    // input gradients
    const grads = section("gradient sent to each input");
    grads.id = "grads";
    if (!s.grads.length) grads.append(el("p", "muted", "no input needed a gradient"));
    s.grads.forEach(function (gr) {
      const div = el("div", "grad");
      div.dataset.input = gr.label;
      let line = "d " + tensorLabel(gr.tensor, gr.label) + " = " + gr.expr + "   " + shapeText(gr.shape);
      if (gr.summedFrom) line += "   (summed from " + shapeText(gr.summedFrom) + ")";
      if (gr.castFrom) line += "   (cast from " + gr.castFrom + ")";
      div.append(el("div", "expr", line));
      div.append(valueView(gr.value));
      if (gr.acc) {
        const a = D.accumulations[gr.acc[0]];
        const j = gr.acc[1];
        const box = el("div", "acc");
        box.dataset.count = a.count;
        box.dataset.arrival = j + 1;
        const p = el("p", null, "contribution " + (j + 1) + " of " + a.count + " arriving at " + (a.name || "this tensor") + " " + shapeText(a.shape) + "; contributions from ");
        stepLinks(p, a.steps, j);
        box.append(p);
        if (a.running) {
          box.append(el("div", "muted", j + 1 === a.count ? "running sum = total of the contributions:" : "running sum so far:"));
          box.append(valueView(a.running[j]));
        }
        div.append(box);
      }
      grads.append(div);
    });
    s.same.forEach(function (t) { grads.append(el("p", "muted", t)); });
    pane.append(grads);

    if (op.lab) pane.append(labPart(op.lab));
  }

  function labPart(lab) {
    const part = section("conv lab of this geometry");
    part.id = "lab";
    if (lab.exists) {
      const a = el("a", "lablink", "open " + lab.file);
      a.href = lab.file;
      part.append(a, el("span", "muted", "  (one image, one channel in and out; same kernel, strides, padding and dilations)"));
    } else {
      if (lab.refused) part.append(el("p", "muted", "the lab refused this geometry: " + lab.refused));
      part.append(el("p", null, "No lab page next to this file. Write one (one image, one channel, same geometry) with:"));
      part.append(el("code", "cmd", lab.command));
      part.append(el("p", "muted", "then save this page again, or pass labs=True to tc.explore (--labs on the command line) to write both."));
    }
    return part;
  }

  // ------------------------------------------------------------------ stepping
  let currentEl = null;
  const receiving = [];

  function currentId() {
    return cur < 0 ? null : opVisible(D.steps[cur].node);
  }

  function highlight() {
    if (currentEl) currentEl.classList.remove("current");
    while (receiving.length) receiving.pop().classList.remove("receives");
    if (cur < 0) return;
    const id = currentId();
    currentEl = elements.get(id) || null;
    if (currentEl) currentEl.classList.add("current");
    for (const gr of D.steps[cur].grads) {
      const e = elements.get(tensorVisible(gr.tensor));
      if (e && e !== currentEl) {
        e.classList.add("receives");
        receiving.push(e);
      }
    }
    document.getElementById("position").textContent = nsteps ? "step " + (cur + 1) + " / " + nsteps + ": " + D.steps[cur].op : "no steps";
  }

  function goto(i) {
    if (!nsteps) return state();
    i = Math.max(0, Math.min(nsteps - 1, Math.floor(Number(i)) || 0));
    cur = i;
    const c = D.ops[D.steps[cur].node].cluster;
    if (document.getElementById("follow").checked && c >= 0 && !drawnGroup(c)) {
      for (const k of chains[c]) expanded.add(k);
      layout();
    } else if (!windowHolds(currentId())) {
      layout(); // a window of a large graph moves with the current step
    }
    highlight();
    renderStep();
    reveal(currentId());
    return state();
  }

  function state() {
    const s = cur >= 0 ? D.steps[cur] : null;
    return {
      step: cur,
      nsteps: nsteps,
      node: s ? "op" + s.node : null,
      op: s ? s.op : null,
      drawn: currentId(),
      drawnNodes: layoutInfo.nodes,
      expanded: expanded.size,
      firstRenderMs: firstRenderMs,
      readyAtMs: readyAtMs,
      layoutMs: lastLayoutMs,
    };
  }

  document.addEventListener("keydown", function (ev) {
    const tag = ev.target && ev.target.tagName;
    if (tag === "INPUT" || tag === "TEXTAREA") return;
    if (ev.key === "ArrowRight") {
      ev.preventDefault();
      goto(cur + 1);
    } else if (ev.key === "ArrowLeft") {
      ev.preventDefault();
      goto(cur - 1);
    }
  });
  document.getElementById("btn-step").addEventListener("click", function () { goto(cur + 1); });
  document.getElementById("btn-back").addEventListener("click", function () { goto(cur - 1); });
  document.getElementById("btn-fit").addEventListener("click", fit);
  document.getElementById("btn-collapse").addEventListener("click", function () {
    expanded.clear();
    layout();
    highlight();
    fit();
  });

  // ------------------------------------------------------------------ first render
  const summary = "loss = " + num(D.loss) + "   " + nsteps + " steps   " + D.ops.length + " ops   " + D.accumulations.length + " accumulations   " + D.embedded + " numbers embedded";
  document.getElementById("summary").textContent = summary;
  const notes = document.getElementById("notes");
  for (const n of D.notes) notes.append(el("p", "note", n));
  // only the collapsed module level is drawn at first; stepping opens boxes as needed
  layout();
  fit();
  highlight();
  reveal(currentId());
  renderStep();
  const firstRenderMs = performance.now() - t0; // page script: parse data, lay out, draw
  const readyAtMs = performance.now(); // since the navigation started (load + parse + render)
  window.tcExplorer = {
    step: function () { return goto(cur + 1); },
    back: function () { return goto(cur - 1); },
    goto: goto,
    state: state,
    expand: expand,
    collapse: collapse,
    ready: true,
  };
  document.body.dataset.ready = "1";
})();
