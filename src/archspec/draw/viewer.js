// The cnn-arch viewer: draws the layered plan carried by this page for the reader's folding.
// `place` repeats archspec/draw/geometry.py rule for rule (half-column widths, rows, gaps, tracks,
// ports), and the drawing functions repeat archspec/draw/graph.py, so this page and the static
// SVG/PNG/PDF are the same picture. Nothing here reaches the network.
"use strict";
(() => {
  const M = JSON.parse(document.getElementById("model").textContent);
  const C = M.constants;
  const items = M.items;
  const folded = new Set(M.folded);
  const NS = "http://www.w3.org/2000/svg";
  const MARGIN = 20;
  const CHAR = 0.602; // advance of a DejaVu Sans Mono character, in font sizes (as scene.py)
  const textWidth = (text, size) => [...text].length * size * CHAR;
  const esc = (text) => String(text).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
  const n = (v) => String(Math.round(v * 10) / 10);

  // ---- page --------------------------------------------------------------------------------
  const families = [...new Set(items.map((it) => it.family))];
  const legend = Object.keys(M.colors.palette)
    .filter((f) => families.includes(f))
    .map((f) => {
      const [fill, stroke] = M.colors.palette[f];
      return `<i style="background:${fill};border-color:${stroke}"></i>${esc(M.colors.legend[f] || f)}`;
    })
    .join("");
  document.body.insertAdjacentHTML(
    "afterbegin",
    `<header><div class="title"><b>${esc(M.name)}</b><span>${esc(M.subtitle)}</span></div>
<div class="legend">${legend}</div>
<div class="tools"><input id="search" type="search" placeholder="Find a layer by name (/)" aria-label="Find a layer">
<button id="prev" title="Previous match">↑</button><button id="next" title="Next match">↓</button><span id="found"></span>
<button id="fold-all">Fold all</button><button id="unfold-all">Unfold all</button><button id="fit">Fit</button>
<span class="hint">click a block to unfold it, its title to fold it · drag to pan · wheel to zoom</span></div></header>
<main><svg id="canvas" xmlns="${NS}" font-family="'DejaVu Sans Mono', Menlo, Consolas, monospace"><g id="viewport"></g></svg><div id="tip" hidden></div></main>`
  );
  const svg = document.getElementById("canvas");
  const viewport = document.getElementById("viewport");
  const tip = document.getElementById("tip");

  // ---- folding -----------------------------------------------------------------------------
  let cache = new Map();
  function hiddenBy(id) {
    let outer = null;
    for (let p = items[id].parent; p !== null; p = items[p].parent) if (folded.has(p)) outer = p;
    return outer;
  }
  function shownAs(id) {
    if (!cache.has(id)) {
      const it = items[id];
      cache.set(id, hiddenBy(id) !== null ? null : it.role === "frame" && folded.has(id) ? "box" : it.role);
    }
    return cache.get(id);
  }
  const isLane = (key) => Object.prototype.hasOwnProperty.call(M.lanes, String(key));
  const opened = (key) => isLane(key) || shownAs(key) === "frame";
  const blockOf = (key) => M.blocks[key === null ? "root" : String(key)];

  // ---- geometry (archspec/draw/geometry.py) ------------------------------------------------------
  function columnX(half, pos) {
    let x = 0;
    for (let k = 0; k <= Math.round(2 * pos); k++) x += half[k];
    return x;
  }
  function spread(index, count, span) {
    return count < 2 ? 0 : (index / (count - 1) - 0.5) * span;
  }
  function titlePlace(ports, title, width) {
    const edges = [C.PAD - 6, ...ports, width - C.PAD + 6];
    for (let i = 0; i + 1 < edges.length; i++) if (edges[i + 1] - edges[i] - 12 >= title) return [edges[i] + 6, width, C.PAD];
    const extra = 2 * Math.max(0, edges[edges.length - 2] + 6 + title - (width - C.PAD));
    return [edges[edges.length - 2] + extra / 2 + 6, width + extra, C.PAD + extra / 2];
  }

  function place() {
    cache = new Map();
    const boxes = new Map();
    function size(key) {
      const block = blockOf(key);
      const extents = new Map();
      const columns = new Map();
      for (const [kind, k, , pos] of block.slots) {
        if (kind !== "item") continue;
        if (opened(k)) {
          const inner = size(k);
          extents.set(k, [inner.width / 2, inner.width / 2, inner.height]);
          continue;
        }
        extents.set(k, items[k].extent);
        if (shownAs(k) === "box") columns.set(pos, Math.max(columns.get(pos) || 0, items[k].extent[0]));
      }
      for (const [kind, k, , pos] of block.slots) {
        if (kind === "item" && !opened(k) && shownAs(k) === "box") {
          const half = columns.get(pos);
          extents.set(k, [half, half, extents.get(k)[2]]);
        }
      }
      const half = new Array(Math.round(2 * block.width) + 1).fill(0);
      const heights = new Array(block.rows.length).fill(0);
      for (const [kind, k, row, pos] of block.slots) {
        const [left, right, h] = kind === "item" ? extents.get(k) : [C.LANE / 2, C.LANE / 2, 0];
        const i = Math.round(2 * pos);
        half[i] = Math.max(half[i], left + C.GAP_X / 2);
        half[i + 1] = Math.max(half[i + 1], right + C.GAP_X / 2);
        heights[row] = Math.max(heights[row], h);
      }
      const gaps = block.tracks.map((t) => Math.max(C.GAP_Y, C.TRACK * (t + 1)));
      const tops = [];
      let y = 0;
      heights.forEach((h, r) => {
        tops.push(y);
        y += h + (r + 1 < heights.length ? gaps[r] : 0);
      });
      const gridW = half.reduce((a, b) => a + b, 0);
      let found;
      if (key === null || isLane(key)) {
        found = { block, extents, half, tops, heights, gaps, width: gridW, height: y, titleX: 0, top: 0, left: 0 };
      } else {
        const ports = block.rows[0]
          .filter((i) => block.slots[i][0] === "in")
          .map((i) => C.PAD + columnX(half, block.slots[i][3]))
          .sort((a, b) => a - b);
        const [titleX, width, left] = titlePlace(ports, items[key].title_width, gridW + 2 * C.PAD);
        found = { block, extents, half, tops, heights, gaps, width, height: C.HEADER + y + C.PAD, titleX, top: C.HEADER, left };
      }
      boxes.set(key, found);
      return found;
    }
    const root = size(null);
    const out = { width: root.width, height: root.height, rects: new Map(), titles: new Map(), routes: [] };
    const origin = new Map();
    const slotX = new Map();
    function locate(key, x0, y0) {
      const box = boxes.get(key);
      origin.set(key, [x0, y0]);
      box.block.slots.forEach(([kind, k, row, pos], i) => {
        const x = x0 + box.left + columnX(box.half, pos);
        slotX.set(`${key}/${i}`, x);
        if (kind !== "item") return;
        const [left, right, h] = box.extents.get(k);
        const y = y0 + box.top + box.tops[row];
        if (opened(k)) locate(k, x - left, y);
        if (isLane(k)) return;
        out.rects.set(k, [x - left, y, left + right, h]);
        if (shownAs(k) === "frame") out.titles.set(k, boxes.get(k).titleX);
      });
    }
    locate(null, 0, 0);
    function pinX(key, index, side, pin) {
      const [kind, k] = boxes.get(key).block.slots[index];
      const x = slotX.get(`${key}/${index}`);
      if (kind !== "item") return x;
      if (opened(k)) {
        const inner = blockOf(k);
        for (const j of inner.rows[side === "in" ? 0 : inner.rows.length - 1]) {
          const port = inner.slots[j];
          if (port[0] === side && port[1] === pin) return slotX.get(`${k}/${j}`);
        }
        return x;
      }
      const [left, right] = boxes.get(key).extents.get(k);
      if (M.blocks[String(k)]) {
        const ports = side === "in" ? M.blocks[String(k)].inputs : M.blocks[String(k)].outputs;
        const at = ports.indexOf(pin);
        return x + spread(at < 0 ? 0 : at, ports.length, (left + right) * C.PORT_SPREAD);
      }
      if (shownAs(k) === "merge" && side === "in" && pin >= 0) return x + spread(pin, items[k].inputs, 2 * left * C.MERGE_SPREAD);
      return x;
    }
    function pinY(key, index, side, x) {
      const box = boxes.get(key);
      const [kind, k, row] = box.block.slots[index];
      const [, y0] = origin.get(key);
      if (kind === "in") return y0;
      if (kind === "out") return y0 + box.height;
      if (kind === "dummy") return y0 + box.top + box.tops[row];
      const [left, , h] = box.extents.get(k);
      const y = y0 + box.top + box.tops[row];
      if (side === "out") return y + h;
      if (!opened(k) && shownAs(k) === "merge") {
        const r = h / 2;
        const dx = Math.min(Math.max(0, Math.abs(x - slotX.get(`${key}/${index}`)) - (left - r)), r);
        return y + r - Math.sqrt(r * r - dx * dx);
      }
      return y;
    }
    const drawn = (key) => (isLane(key) ? shownAs(M.lanes[String(key)]) !== null : key === null || shownAs(key) === "frame");
    for (const [key, box] of boxes) {
      if (!drawn(key)) continue;
      const block = box.block;
      const [, y0] = origin.get(key);
      for (const [source, path, outPin, inPin, tracks] of block.pieces) {
        const startX = pinX(key, path[0], "out", outPin);
        const points = [[startX, pinY(key, path[0], "out", startX)]];
        for (let k = 0; k + 1 < path.length; k++) {
          const row = block.slots[path[k]][2];
          const last = k === path.length - 2;
          const x = pinX(key, path[k + 1], "in", last ? inPin : source);
          const trackY = (t) => y0 + box.top + box.tops[row] + box.heights[row] + (box.gaps[row] * (t + 1)) / (block.tracks[row] + 1);
          const here = points[points.length - 1][0];
          if (Array.isArray(tracks[k])) { // a dogleg: down at the middle of its span, onto a low track
            const middle = (here + x) / 2;
            points.push([here, trackY(tracks[k][0])], [middle, trackY(tracks[k][0])], [middle, trackY(tracks[k][1])], [x, trackY(tracks[k][1])]);
          } else if (tracks[k] >= 0) {
            points.push([here, trackY(tracks[k])], [x, trackY(tracks[k])]);
          }
        }
        const end = path[path.length - 1];
        points.push([points[points.length - 1][0], pinY(key, end, "in", points[points.length - 1][0])]);
        const ends = [block.slots[path[0]], block.slots[end]];
        const reach = ends.map((s) => (s[0] === "item" ? s[1] : key)).map((r) => (r === null || isLane(r) ? -1 : r));
        const arrow = ends[1][0] === "item" && !opened(ends[1][1]);
        out.routes.push([source, reach[0], reach[1], simplify(points), arrow]);
      }
    }
    return out;
  }

  function simplify(points) {
    const out = [];
    for (const p of points) {
      const last = out[out.length - 1];
      if (last && Math.abs(p[0] - last[0]) < 0.01 && Math.abs(p[1] - last[1]) < 0.01) continue;
      if (out.length >= 2) {
        const [a, b] = [out[out.length - 2], last];
        if ((Math.abs(a[0] - b[0]) < 0.01 && Math.abs(b[0] - p[0]) < 0.01) || (Math.abs(a[1] - b[1]) < 0.01 && Math.abs(b[1] - p[1]) < 0.01)) {
          out[out.length - 1] = p;
          continue;
        }
      }
      out.push(p);
    }
    return out;
  }

  // ---- drawing (archspec/draw/graph.py) -----------------------------------------------------------
  const rect = (x, y, w, h, fill, stroke, width, radius, dash, extra = "") =>
    `<rect x="${n(x)}" y="${n(y)}" width="${n(w)}" height="${n(h)}" rx="${n(radius)}" fill="${fill}" stroke="${stroke}" stroke-width="${n(width)}"${dash ? ' stroke-dasharray="5 3"' : ""}${extra}/>`;
  const text = (x, y, value, size, color, bold, anchor = "start") =>
    `<text x="${n(x)}" y="${n(y)}" font-size="${n(size)}" fill="${color}" text-anchor="${anchor}"${bold ? ' font-weight="bold"' : ""} xml:space="preserve">${esc(value)}</text>`;
  const attrs = (it, role) =>
    `class="row ${role}${role === "box" && it.role === "frame" ? " folded" : ""}" data-row="${it.id}" data-line="${it.line}" data-depth="${it.depth}" data-kind="${esc(it.kind)}" data-family="${it.family}"` +
    (role === "merge" ? ` data-inputs="${it.inputs}"` : "");

  function boxSvg(it, x, y, w) {
    const [fill, stroke] = M.colors.palette[it.family];
    const blockBox = it.role === "frame";
    let out = "";
    if (blockBox) {
      w -= 3;
      out += rect(x + 3, y + 3, w, C.BOX_H, fill, stroke, 1, 4, false);
    }
    out += rect(x, y, w, C.BOX_H, fill, stroke, blockBox ? 1.4 : 1, 4, false);
    out += text(x + C.BOX_PAD_X, y + 19, it.label, C.LABEL, "#222222", true);
    const heavy = M.head && M.head.heavy.includes(it.id);
    return out + text(x + C.BOX_PAD_X, y + 36, it.detail, C.DETAIL, heavy ? M.head.color : "#444444", heavy);
  }
  function mergeSvg(it, cx, cy) {
    const [fill, stroke] = M.colors.palette.merge;
    const half = it.width / 2;
    let out = half > C.RADIUS ? rect(cx - half, cy - C.RADIUS, 2 * half, 2 * C.RADIUS, fill, stroke, 1.4, C.RADIUS, false)
      : `<circle cx="${n(cx)}" cy="${n(cy)}" r="${n(C.RADIUS)}" fill="${fill}" stroke="${stroke}" stroke-width="1.4"/>`;
    out += text(cx, cy + 6, it.symbol, 17, stroke, false, "middle");
    out += text(cx + half + 6, cy - 3, it.label, C.LABEL, "#222222", true);
    return out + text(cx + half + 6, cy + 12, it.numbers, C.DETAIL, "#444444", false);
  }
  function edgeSvg(points, arrow) {
    const color = M.colors.edge;
    const line = (pts) => `<polyline points="${pts.map(([x, y]) => `${n(x)},${n(y)}`).join(" ")}" fill="none" stroke="${color}" stroke-width="1.2"/>`;
    if (!arrow) return line(points);
    const [tx, ty] = points[points.length - 1];
    return line([...points.slice(0, -1), [tx, ty - 5]]) +
      `<polygon points="${n(tx - 4)},${n(ty - 7)} ${n(tx + 4)},${n(ty - 7)} ${n(tx)},${n(ty)}" fill="${color}" stroke="none" stroke-width="1" stroke-linejoin="round"/>`;
  }

  let placed = null;
  let view = { x: 0, y: 0, k: 1 };
  function render() {
    placed = place();
    const at = (id) => {
      const [x, y, w, h] = placed.rects.get(id);
      return [x + MARGIN, y + MARGIN, w, h];
    };
    const shown = items.filter((it) => shownAs(it.id) !== null);
    const parts = [];
    for (const it of shown.filter((it) => shownAs(it.id) === "frame")) {
      const [x, y, w, h] = at(it.id);
      parts.push(`<g class="frame-fill">${rect(x, y, w, h, M.colors.frames[(it.depth - 1) % 2], "none", 1, 6, false)}</g>`);
    }
    if (M.head) {
      const rects = shown.filter((it) => it.in_head && shownAs(it.id) !== "frame").map((it) => at(it.id));
      if (rects.length) {
        const x0 = Math.min(...rects.map((r) => r[0])) - 7;
        const y0 = Math.min(...rects.map((r) => r[1])) - 7;
        const x1 = Math.max(...rects.map((r) => r[0] + r[2])) + 10;
        const y1 = Math.max(...rects.map((r) => r[1] + r[3])) + 10;
        let head = rect(x0, y0, x1 - x0, y1 - y0, M.head.fill, M.head.color, 1.6, 8, true);
        M.head.notes.forEach((note, i) => (head += text(x1 + 10, y0 + 15 + 16 * i, note, C.DETAIL + 0.5, M.head.color, i === 1)));
        parts.push(`<g class="dense-head" data-share="${M.head.share}">${head}</g>`);
      }
    }
    for (const [source, from, to, points, arrow] of placed.routes) {
      const moved = points.map(([x, y]) => [x + MARGIN, y + MARGIN]);
      parts.push(`<g class="edge" data-tensor="${source}" data-from="${from}" data-to="${to}">${edgeSvg(moved, arrow)}</g>`);
    }
    for (const it of shown) {
      const role = shownAs(it.id);
      const [x, y, w, h] = at(it.id);
      let body;
      if (role === "box") body = boxSvg(it, x, y, w);
      else if (role === "merge") body = mergeSvg(it, x + it.width / 2, y + C.RADIUS);
      else {
        const tx = x + placed.titles.get(it.id);
        body = rect(x, y, w, h, "none", M.colors.frame_stroke, 1, 6, it.kind === "branch") +
          text(tx, y + 18, it.label, C.LABEL, "#3b4250", true) + text(tx, y + 33, it.title, C.DETAIL, "#555d6b", false) +
          rect(tx - 4, y + 4, it.title_width + 8, 34, "transparent", "none", 0, 3, false, ' class="fold-target"');
      }
      parts.push(`<g ${attrs(it, role)}>${body}</g>`);
    }
    viewport.innerHTML = parts.join("");
    svg.setAttribute("data-width", n(placed.width + 2 * MARGIN));
    svg.setAttribute("data-height", n(placed.height + 2 * MARGIN));
    mark();
    transform();
  }

  // ---- pan and zoom ----------------------------------------------------------------------------
  function transform() {
    viewport.setAttribute("transform", `translate(${n(view.x)},${n(view.y)}) scale(${view.k})`);
  }
  function zoomAt(px, py, factor) {
    const k = Math.min(4, Math.max(0.02, view.k * factor));
    view.x = px - ((px - view.x) * k) / view.k;
    view.y = py - ((py - view.y) * k) / view.k;
    view.k = k;
    transform();
  }
  function fit() {
    const box = svg.getBoundingClientRect();
    const w = placed.width + 2 * MARGIN;
    const h = placed.height + 2 * MARGIN;
    view.k = Math.min(1, box.width / w, box.height / h);
    if (view.k < 0.35) view.k = Math.min(1, box.width / w); // a tall network: fit its width, read down
    view.x = (box.width - w * view.k) / 2;
    view.y = Math.max(0, (box.height - h * view.k) / 2);
    transform();
  }
  function centreOn(id) {
    const [x, y, w, h] = placed.rects.get(id);
    const box = svg.getBoundingClientRect();
    view.k = Math.max(view.k, 0.8);
    view.x = box.width / 2 - (x + MARGIN + w / 2) * view.k;
    view.y = box.height / 2 - (y + MARGIN + h / 2) * view.k;
    transform();
  }
  svg.addEventListener("wheel", (event) => {
    event.preventDefault();
    const box = svg.getBoundingClientRect();
    zoomAt(event.clientX - box.left, event.clientY - box.top, Math.exp(-event.deltaY * (event.deltaMode ? 0.05 : 0.0015)));
  }, { passive: false });
  let drag = null;
  svg.addEventListener("pointerdown", (event) => {
    drag = { x: event.clientX, y: event.clientY, vx: view.x, vy: view.y, moved: false };
  });
  window.addEventListener("pointermove", (event) => {
    if (!drag) return;
    const dx = event.clientX - drag.x;
    const dy = event.clientY - drag.y;
    if (!drag.moved && Math.hypot(dx, dy) < 4) return;
    drag.moved = true;
    svg.classList.add("dragging");
    view.x = drag.vx + dx;
    view.y = drag.vy + dy;
    transform();
  });
  window.addEventListener("pointerup", () => {
    svg.classList.remove("dragging");
    setTimeout(() => (drag = null), 0);
  });

  // ---- folding by clicks ---------------------------------------------------------------------------
  function toggle(id, event) {
    const [x, y] = placed.rects.get(id);
    const before = [view.x + (x + MARGIN) * view.k, view.y + (y + MARGIN) * view.k];
    if (folded.has(id)) folded.delete(id);
    else folded.add(id);
    render();
    const [nx, ny] = placed.rects.get(id);
    view.x = before[0] - (nx + MARGIN) * view.k;
    view.y = before[1] - (ny + MARGIN) * view.k;
    transform();
    hideTip();
    if (event) event.stopPropagation();
  }
  svg.addEventListener("click", (event) => {
    if (drag && drag.moved) return;
    const row = event.target.closest(".row");
    if (!row) return;
    const id = Number(row.dataset.row);
    if (row.classList.contains("folded")) toggle(id, event);
    else if (row.classList.contains("frame") && event.target.classList.contains("fold-target")) toggle(id, event);
  });
  const frames = items.filter((it) => it.role === "frame").map((it) => it.id);
  document.getElementById("fold-all").onclick = () => {
    frames.filter((id) => items[id].depth === 1).forEach((id) => folded.add(id));
    render();
    fit();
  };
  document.getElementById("unfold-all").onclick = () => {
    folded.clear();
    render();
    fit();
  };
  document.getElementById("fit").onclick = fit;

  // ---- tooltip --------------------------------------------------------------------------------------
  function hideTip() {
    tip.hidden = true;
  }
  svg.addEventListener("mouseover", (event) => {
    const row = event.target.closest(".row");
    if (!row || (drag && drag.moved)) return hideTip();
    const it = items[Number(row.dataset.row)];
    const params = it.params ? `${it.params.toLocaleString("en-US")}` + (it.non_trainable ? ` (${it.trainable.toLocaleString("en-US")} trainable)` : "") : "0";
    const role = shownAs(it.id);
    const hint = role === "box" && it.role === "frame" ? `${it.layers} layers · click to unfold` : role === "frame" ? "click its title to fold" : "";
    tip.innerHTML = `<b>${esc(it.label)}</b><table>
<tr><td>type</td><td>${esc(it.type)}</td></tr><tr><td>output</td><td>${esc(it.shape)}</td></tr>
<tr><td>params</td><td>${params}</td></tr><tr><td>MACs</td><td>${it.macs.toLocaleString("en-US")} (${esc(it.macs_text)})</td></tr>
<tr><td>receptive field</td><td>${esc(it.rf)} (stride ${esc(it.stride)})</td></tr><tr><td>spec line</td><td>${it.line}</td></tr></table>` +
      (hint ? `<div>${hint}</div>` : "");
    tip.hidden = false;
    moveTip(event);
  });
  svg.addEventListener("mousemove", (event) => { if (!tip.hidden) moveTip(event); });
  svg.addEventListener("mouseleave", hideTip);
  function moveTip(event) {
    const box = svg.getBoundingClientRect();
    const x = event.clientX - box.left + 14;
    const y = event.clientY - box.top + 14;
    tip.style.left = `${Math.min(x, box.width - tip.offsetWidth - 4)}px`;
    tip.style.top = `${Math.min(y, box.height - tip.offsetHeight - 4)}px`;
  }

  // ---- search ---------------------------------------------------------------------------------------
  const search = document.getElementById("search");
  const found = document.getElementById("found");
  let matches = [];
  let current = -1;
  function mark() {
    for (const g of viewport.querySelectorAll(".row")) {
      const id = Number(g.dataset.row);
      g.classList.toggle("match", matches.includes(id));
      g.classList.toggle("current", current >= 0 && matches[current] === id);
    }
  }
  function update() {
    const query = search.value.trim().toLowerCase();
    matches = query ? items.filter((it) => it.label.toLowerCase().includes(query)).map((it) => it.id) : [];
    current = -1;
    found.textContent = query ? (matches.length ? `${matches.length} found` : "not found") : "";
    mark();
  }
  function go(step) {
    if (!matches.length) return;
    current = (current + step + matches.length) % matches.length;
    const id = matches[current];
    for (let p = items[id].parent; p !== null; p = items[p].parent) folded.delete(p); // show it
    render();
    centreOn(id);
    found.textContent = `${current + 1} of ${matches.length}`;
  }
  search.addEventListener("input", update);
  search.addEventListener("keydown", (event) => {
    if (event.key === "Enter") go(event.shiftKey ? -1 : 1);
    if (event.key === "Escape") { search.value = ""; update(); search.blur(); }
  });
  document.getElementById("next").onclick = () => go(1);
  document.getElementById("prev").onclick = () => go(-1);
  window.addEventListener("keydown", (event) => {
    if (event.target === search) return;
    if (event.key === "/") { event.preventDefault(); search.focus(); }
    else if (event.key === "f") fit();
    else if (event.key === "+" || event.key === "=") zoomAt(svg.clientWidth / 2, svg.clientHeight / 2, 1.25);
    else if (event.key === "-") zoomAt(svg.clientWidth / 2, svg.clientHeight / 2, 0.8);
  });
  window.addEventListener("resize", () => transform());

  render();
  fit();
})();
