// conv lab page: draws the frames that tinygrad_conv.lab computed (data in #lab-data), any rank.
// Nothing is fetched; the only arithmetic here is the running sums of the given products.
"use strict";
(function () {
  const DATA = JSON.parse(document.getElementById("lab-data").textContent);
  const KIND_CLASS = ["val", "pad", "ins"];

  function fmt(v) {
    if (v === null || v === undefined) return "";
    if (Number.isInteger(v)) return String(v);
    const a = Math.abs(v);
    if (a !== 0 && (a < 1e-3 || a >= 1e4)) return v.toExponential(1);
    return String(Number(v.toPrecision(3)));
  }
  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function idxText(i) { return "[" + i.join(",") + "]"; }
  // index tuples are rank + 2 long (n, *spatial, c) or (*taps, in, out); frames store them flat
  const M = DATA.m || 4;
  function quad(flat, k) { return flat.slice(M * k, M * k + M); }

  // One grid: planes of an (r+2)-D array (data: planes by (n, c); filters: by (in, out)). A plane
  // is a table of its last two spatial axes (1-D: one row); in 3-D a plane holds one table per
  // depth slice, titled with its depth index in the array's own coordinates (offset included).
  function buildGrid(g) {
    const box = el("div", "grid" + (g.result ? " result" : ""));
    box.dataset.grid = g.key;
    box.appendChild(el("div", "grid-title", g.title));
    const r = g.shape.length - 2;
    const filt = g.filter;
    const sp = filt ? g.shape.slice(0, r) : g.shape.slice(1, r + 1);
    const nOuter = filt ? g.shape[r] : g.shape[0];
    const chans = g.shape[r + 1];
    const slices = r === 3 ? sp[0] : 1;
    const rows = r === 1 ? 1 : sp[r - 2], cols = sp[r - 1];
    const strides = [];
    for (let a = g.shape.length - 1, acc = 1; a >= 0; a--) { strides[a] = acc; acc *= g.shape[a]; }
    const planes = el("div", "planes");
    const cells = {};
    for (let p = 0; p < nOuter; p++) {
      for (let q = 0; q < chans; q++) {
        const plane = el("div", "plane");
        const group = Math.floor(q / Math.max(1, chans / g.groups));
        const cap = filt ? `in=${p} out=${q}` : `n=${p} c=${q}`;
        plane.appendChild(el("div", "plane-title", cap + (g.groups > 1 ? ` (group ${group})` : "")));
        const holder = r === 3 ? el("div", "slices") : plane;
        for (let s = 0; s < slices; s++) {
          const table = el("table");
          for (let i = 0; i < rows; i++) {
            const tr = el("tr");
            for (let j = 0; j < cols; j++) {
              const at = r === 1 ? [j] : r === 2 ? [i, j] : [s, i, j];
              const arr = filt ? [...at, p, q] : [p, ...at, q];
              let flat = 0;
              for (let a = 0; a < arr.length; a++) flat += arr[a] * strides[a];
              const shifted = at.map((v, a) => v + g.offset[a]);
              const idx = filt ? [...shifted, p, q] : [p, ...shifted, q];
              const td = el("td", "cell " + KIND_CLASS[g.kinds[flat]]);
              const key = g.name + ":" + idx.join(",");
              td.dataset.key = key;
              td.dataset.index = idx.join(",");
              td.textContent = g.result ? "" : fmt(g.values[flat]);
              td.title = g.name + idxText(idx);
              tr.appendChild(td);
              (cells[key] = cells[key] || []).push(td);
            }
            table.appendChild(tr);
          }
          if (r === 3) {
            const sl = el("div", "slice");
            sl.dataset.depth = s + g.offset[0];
            sl.appendChild(el("div", "slice-title", `${filt ? "kd" : "d"}=${s + g.offset[0]}`));
            sl.appendChild(table);
            holder.appendChild(sl);
          } else {
            plane.appendChild(table);
          }
        }
        if (r === 3) plane.appendChild(holder);
        planes.appendChild(plane);
      }
    }
    box.appendChild(planes);
    return { box, cells, grid: g };
  }

  function buildAnim(A) {
    const sec = el("section", "anim");
    sec.id = "anim-" + A.name;
    sec.appendChild(el("h2", "", A.title));
    const ctl = el("div", "controls");
    const bReset = el("button", "reset", "\u21ba reset"), bBack = el("button", "back", "\u25c0 step");
    const bPlay = el("button", "play", "\u25b6 play"), bStep = el("button", "step", "step \u25b6");
    const slider = el("input", "slider");
    slider.type = "range"; slider.min = -1; slider.max = A.frames - 1; slider.value = -1;
    const label = el("span", "frame-label");
    const speed = el("select", "speed");
    for (const [t, ms] of [["slow", 1200], ["normal", 600], ["fast", 150]]) {
      const o = el("option", "", t); o.value = ms; if (ms === 600) o.selected = true; speed.appendChild(o);
    }
    for (const e of [bReset, bBack, bPlay, bStep, slider, label, speed]) ctl.appendChild(e);
    sec.appendChild(ctl);

    const allCells = {};  // key -> [td]
    const gridObjs = {};
    const views = [];
    const termsByKey = {};  // key -> [[view, frame, term]]
    for (const V of A.views) {
      const vd = el("div", "view");
      vd.dataset.view = V.key;
      vd.appendChild(el("h3", "", V.title));
      if (V.note) vd.appendChild(el("p", "note", V.note));
      const eq = el("p", "eq"); vd.appendChild(eq);
      const run = el("p", "eq running"); vd.appendChild(run);
      const row = el("div", "grids");
      for (const gk of [V.source, V.tap, V.target]) {
        const go = buildGrid(A.grids[gk]);
        gridObjs[V.key + "/" + gk] = go;
        for (const k in go.cells) (allCells[k] = allCells[k] || []).push(...go.cells[k]);
        row.appendChild(go.box);
      }
      vd.appendChild(row);
      sec.appendChild(vd);
      const tgtName = A.grids[V.target].name, srcName = A.grids[V.source].name, tapName = A.grids[V.tap].name;
      V.frames.forEach((F, fi) => {
        for (let k = 0; k < F.x.length; k++) {
          const keys = [tgtName + ":" + quad(F.t, k).join(","), srcName + ":" + quad(F.s, k).join(","),
                        tapName + ":" + quad(F.p, k).join(",")];
          for (const key of keys) (termsByKey[key] = termsByKey[key] || []).push(keys);
        }
      });
      views.push({ V, eq, run, target: gridObjs[V.key + "/" + V.target], tgtName, srcName, tapName });
    }

    let cur = -1, timer = null;
    const marked = [];
    function mark(key, cls) {
      for (const td of allCells[key] || []) { td.classList.add(cls); marked.push([td, cls]); }
    }
    function show(k) {
      cur = Math.max(-1, Math.min(A.frames - 1, k));
      slider.value = cur;
      label.textContent = cur < 0 ? `frame 0 / ${A.frames} (press step or play)` : `frame ${cur + 1} / ${A.frames}`;
      sec.dataset.frame = cur;
      for (const [td, cls] of marked) td.classList.remove(cls);
      marked.length = 0;
      for (const v of views) {
        const sums = {};
        for (let fi = 0; fi <= cur; fi++) {
          const F = v.V.frames[fi];
          for (let k = 0; k < F.x.length; k++) {
            if (!F.k[k]) continue;
            const key = v.tgtName + ":" + quad(F.t, k).join(",");
            sums[key] = (sums[key] || 0) + F.x[k];
          }
        }
        for (const key in v.target.cells) {
          for (const td of v.target.cells[key]) td.textContent = key in sums ? fmt(sums[key]) : "";
        }
        if (cur < 0) { v.eq.textContent = ""; v.run.textContent = ""; continue; }
        const F = v.V.frames[cur];
        const parts = [];
        for (let k = 0; k < F.x.length; k++) {
          mark(v.tgtName + ":" + quad(F.t, k).join(","), F.k[k] ? "cur-tgt" : "cur-drop");
          mark(v.srcName + ":" + quad(F.s, k).join(","), "cur-src");
          mark(v.tapName + ":" + quad(F.p, k).join(","), "cur-tap");
          if (parts.length < 12) parts.push(`${fmt(F.a[k])}\u00b7${F.b[k] < 0 ? "(" + fmt(F.b[k]) + ")" : fmt(F.b[k])}`);
        }
        const more = F.x.length > 12 ? ` + \u2026 (${F.x.length} products)` : "";
        if (A.name === "input_grad") {
          const dropped = F.k.filter((k) => !k).length;
          const where = v.srcName === "zfull" ? `zfull${idxText(quad(F.s, 0))} = ` : "";
          v.eq.textContent = F.x.length
            ? (v.srcName === "zfull"
                ? `dy${idxText(F.i)} = ${where}${fmt(F.a[0])}, read by ${F.x.length} window tap(s) of rot180(w): ${parts.join(", ")}${more}`
                : `dy${idxText(F.i)} = ${fmt(F.a[0])} stamps w onto d_x: ${parts.join(", ")}${more}`) +
              (dropped ? ` (${dropped} land in the padding: dropped)` : "")
            : `dy${idxText(F.i)} lies in the cropped part of zfull: no product reaches d_x`;
        } else {
          const tot = F.x.reduce((s, v2, k) => s + (F.k[k] ? v2 : 0), 0);
          v.eq.textContent = `${v.tgtName}${idxText(F.i)} = ${parts.join(" + ")}${more} = ${fmt(tot)}`;
        }
        // the running sum after each product (the frame data's partial sums), as the window adds up
        const r = F.r.filter((x) => x !== null).map(fmt);
        v.run.textContent = A.name === "input_grad" ? "" :
          `running sum: ${r.slice(0, 16).join(" \u2192 ")}${r.length > 16 ? " \u2192 \u2026 \u2192 " + r[r.length - 1] : ""}`;
      }
    }
    function stop() { if (timer) { clearInterval(timer); timer = null; } bPlay.textContent = "\u25b6 play"; sec.dataset.playing = "0"; }
    function play() {
      if (timer) { stop(); return; }
      if (cur >= A.frames - 1) show(-1);
      bPlay.textContent = "\u23f8 pause"; sec.dataset.playing = "1";
      timer = setInterval(() => { if (cur >= A.frames - 1) stop(); else show(cur + 1); }, Number(speed.value));
    }
    bReset.onclick = () => { stop(); show(-1); };
    bBack.onclick = () => { stop(); show(cur - 1); };
    bStep.onclick = () => { stop(); show(cur + 1); };
    bPlay.onclick = play;
    speed.onchange = () => { if (timer) { stop(); play(); } };
    slider.oninput = () => { stop(); show(Number(slider.value)); };

    // hover: every term naming the hovered cell, in every view: highlight its other cells
    const hovered = [];
    sec.addEventListener("mouseover", (ev) => {
      const td = ev.target.closest("td.cell");
      for (const t of hovered) t.classList.remove("hl", "hover");
      hovered.length = 0;
      if (!td || !td.dataset.key) return;
      const key = td.dataset.key;
      for (const keys of termsByKey[key] || []) {
        for (const k2 of keys) {
          if (k2 === key) continue;
          for (const t of allCells[k2] || []) { t.classList.add("hl"); hovered.push(t); }
        }
      }
      for (const t of allCells[key] || []) { t.classList.add("hover"); hovered.push(t); }
    });
    sec.addEventListener("mouseenter", () => { active = api; });
    sec.addEventListener("click", () => { active = api; });
    const api = { step: (d) => { stop(); show(cur + d); }, play };
    if (!active) active = api;
    sec.addEventListener("mouseleave", () => { for (const t of hovered) t.classList.remove("hl", "hover"); hovered.length = 0; });
    show(-1);
    return sec;
  }

  // the oracle's overlap map as a heat map: uneven counts are the checkerboard (3-D: one table
  // per depth slice, all on one colour scale)
  function buildOverlap(slices) {
    const max = Math.max(1, ...slices.map((s) => Math.max(...s.rows.map((r) => Math.max(...r)))));
    const box = el("div", "overlap-slices");
    for (const s of slices) {
      const table = el("table", "overlap");
      for (const r of s.rows) {
        const tr = el("tr");
        for (const v of r) {
          const td = el("td", "cell", String(v));
          const a = v / max;
          td.style.background = `rgba(26, 95, 180, ${(0.08 + 0.8 * a).toFixed(3)})`;
          if (a > 0.55) td.style.color = "#fff";
          tr.appendChild(td);
        }
        table.appendChild(tr);
      }
      if (!s.title) { box.appendChild(table); continue; }
      const sl = el("div", "slice");
      sl.appendChild(el("div", "slice-title", s.title));
      sl.appendChild(table);
      box.appendChild(sl);
    }
    return box;
  }
  document.getElementById("overlap").appendChild(buildOverlap(DATA.overlap_slices));

  // keyboard: left/right arrows step, space plays/pauses the animation last pointed at
  let active = null;
  document.addEventListener("keydown", (ev) => {
    if (!active || ev.target.closest("input, select, button")) return;
    if (ev.key === "ArrowRight") { active.step(1); ev.preventDefault(); }
    else if (ev.key === "ArrowLeft") { active.step(-1); ev.preventDefault(); }
    else if (ev.key === " ") { active.play(); ev.preventDefault(); }
  });

  const main = document.getElementById("anims");
  for (const A of DATA.anims) main.appendChild(buildAnim(A));
  document.body.dataset.ready = "1";
})();
