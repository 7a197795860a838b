// The report's map: tile footprints coloured by status for one layer, pan, zoom and click.
// Data: #meta (JSON) and gzip+base64 blobs inflated with DecompressionStream (no network).
"use strict";
(function () {
  const COLOURS = {missing: "#ffffff", done: "#2e7d32", nodata: "#9aa5b1", failed: "#d32f2f",
                   stale: "#f9a825"};
  const meta = JSON.parse(document.getElementById("meta").textContent);
  const canvas = document.getElementById("map");
  const ctx = canvas.getContext("2d");
  const info = document.getElementById("tile-info");
  const select = document.getElementById("layer");
  const state = {layer: 0, scale: 1, ox: 0, oy: 0, selected: -1};
  let ids = [], cx, cy, off, codes, failed = new Map(), px, py, kx = 1, grid, cell;

  function bytes(id) {
    const text = atob(document.getElementById("blob-" + id).textContent.trim());
    const raw = new Uint8Array(text.length);
    for (let i = 0; i < text.length; i++) raw[i] = text.charCodeAt(i);
    const stream = new Blob([raw]).stream().pipeThrough(new DecompressionStream("gzip"));
    return new Response(stream).arrayBuffer();
  }

  function project() {  // equirectangular around the store's mean latitude, y up
    const n = ids.length;
    let lat0 = 0;
    for (let i = 0; i < n; i++) lat0 += cy[i];
    lat0 = n ? lat0 / n / 1e6 : 0;
    kx = Math.cos(lat0 * Math.PI / 180);
    px = new Float64Array(n * 4);
    py = new Float64Array(n * 4);
    for (let i = 0; i < n; i++) {
      for (let k = 0; k < 4; k++) {
        px[4 * i + k] = (cx[i] / 1e6 + off[8 * i + 2 * k] / 1e5) * kx;
        py[4 * i + k] = cy[i] / 1e6 + off[8 * i + 2 * k + 1] / 1e5;
      }
    }
    cell = 0.05;  // degrees: about one tile, so a click tests a handful of candidates
    grid = new Map();
    for (let i = 0; i < n; i++) {
      const key = Math.floor(cx[i] / 1e6 * kx / cell) + "," + Math.floor(cy[i] / 1e6 / cell);
      if (!grid.has(key)) grid.set(key, []);
      grid.get(key).push(i);
    }
  }

  function fit() {
    let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
    for (let j = 0; j < px.length; j++) {
      x0 = Math.min(x0, px[j]); x1 = Math.max(x1, px[j]);
      y0 = Math.min(y0, py[j]); y1 = Math.max(y1, py[j]);
    }
    if (!isFinite(x0)) { x0 = 0; x1 = 1; y0 = 0; y1 = 1; }
    const pad = 20;
    state.scale = Math.min((canvas.width - 2 * pad) / Math.max(x1 - x0, 1e-9),
                           (canvas.height - 2 * pad) / Math.max(y1 - y0, 1e-9));
    state.ox = pad + ((canvas.width - 2 * pad) - (x1 - x0) * state.scale) / 2 - x0 * state.scale;
    state.oy = pad + ((canvas.height - 2 * pad) - (y1 - y0) * state.scale) / 2 + y1 * state.scale;
  }

  const sx = (x) => state.ox + x * state.scale;
  const sy = (y) => state.oy - y * state.scale;

  function draw() {
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    const n = ids.length, base = state.layer * n;
    const paths = meta.statuses.map(() => new Path2D());
    // tiles a few pixels wide are drawn as squares: filling 10^5 small quads costs seconds
    // in a software canvas, squares a fraction of that, and look the same at that size
    const tw = px.length ? Math.hypot(px[1] - px[0], py[1] - py[0]) * state.scale : 0;
    const small = tw < 5, w = Math.max(tw, 1.5);
    for (let i = 0; i < n; i++) {
      const p = paths[codes.length ? codes[base + i] : 0];
      const j = 4 * i;
      const x = sx((px[j] + px[j + 2]) / 2), y = sy((py[j] + py[j + 2]) / 2);
      if (x < -w || y < -w || x > canvas.width + w || y > canvas.height + w) continue;  // off view
      if (small) { p.rect(x - w / 2, y - w / 2, w, w); continue; }
      p.moveTo(sx(px[j]), sy(py[j]));
      for (let k = 1; k < 4; k++) p.lineTo(sx(px[j + k]), sy(py[j + k]));
      p.closePath();
    }
    meta.statuses.forEach((s, k) => {
      ctx.fillStyle = COLOURS[s];
      ctx.fill(paths[k]);
      if (tw > 12) {
        ctx.strokeStyle = "rgba(40,50,60,.35)"; ctx.lineWidth = 0.5; ctx.stroke(paths[k]);
      }
    });
    if (state.selected >= 0) {
      const j = 4 * state.selected;
      ctx.beginPath();
      ctx.moveTo(sx(px[j]), sy(py[j]));
      for (let k = 1; k < 4; k++) ctx.lineTo(sx(px[j + k]), sy(py[j + k]));
      ctx.closePath();
      ctx.strokeStyle = "#1565c0"; ctx.lineWidth = 2.5; ctx.stroke();
    }
  }

  function inside(i, x, y) {  // point in the tile's convex quad (either winding)
    let sign = 0;
    for (let k = 0; k < 4; k++) {
      const a = 4 * i + k, b = 4 * i + (k + 1) % 4;
      const c = (px[b] - px[a]) * (y - py[a]) - (py[b] - py[a]) * (x - px[a]);
      if (c !== 0) {
        if (sign && Math.sign(c) !== sign) return false;
        sign = Math.sign(c);
      }
    }
    return true;
  }

  function tileAt(clientX, clientY) {
    const r = canvas.getBoundingClientRect();
    const x = ((clientX - r.left) * canvas.width / r.width - state.ox) / state.scale;
    const y = (state.oy - (clientY - r.top) * canvas.height / r.height) / state.scale;
    const gx = Math.floor(x / cell), gy = Math.floor(y / cell);
    for (let dx = -2; dx <= 2; dx++) {
      for (let dy = -2; dy <= 2; dy++) {
        for (const i of grid.get((gx + dx) + "," + (gy + dy)) || []) {
          if (inside(i, x, y)) return i;
        }
      }
    }
    return -1;
  }

  function statusOf(i, layer) {
    return meta.statuses[codes.length ? codes[layer * ids.length + i] : 0];
  }

  function show(i) {
    state.selected = i;
    draw();
    if (i < 0) { info.innerHTML = '<p class="hint">No tile there.</p>'; return; }
    const layer = meta.layers[state.layer];
    const esc = (s) => String(s).replace(/[&<>"]/g, (c) => "&#" + c.charCodeAt(0) + ";");
    let html = '<h3 id="tile-id">' + esc(ids[i]) + "</h3>";
    if (layer) {
      const st = statusOf(i, state.layer);
      html += '<p><span id="tile-status" class="key ' + st + '">' + st + "</span> " +
              esc(layer.modality + " " + layer.period) + "</p>";
      const f = failed.get(state.layer * ids.length + i);
      if (f) html += '<p class="reason">' + esc(meta.reasons[f[0]]) + " (attempts " + f[1] + ")</p>";
    }
    html += "<table><tr><th>layer</th><th>status</th></tr>";
    meta.layers.forEach((la, k) => {
      const st = statusOf(i, k);
      html += "<tr><td>" + esc(la.modality + " " + la.period) + '</td><td><span class="key ' + st +
              '">' + st + "</span></td></tr>";
    });
    html += "</table>";
    const ql = document.querySelector('script.quicklook[data-tile="' + ids[i] + '"]');
    if (ql) html += '<p><img alt="quicklook of ' + esc(ids[i]) + '" src="data:image/png;base64,' +
                    ql.textContent.trim() + '"></p>';
    info.innerHTML = html;
  }

  function setLayer(k) {
    state.layer = k;
    select.value = String(k);
    document.querySelectorAll("tr.layer-row").forEach((row) =>
      row.classList.toggle("selected", Number(row.dataset.layer) === k));
    const la = meta.layers[k];
    document.getElementById("layer-counts").textContent = la ? meta.statuses.map(
      (s) => s + " " + la.counts[s].toLocaleString("en")).join(" · ") : "no layer";
    draw();
    if (state.selected >= 0) show(state.selected);
  }

  function wire() {
    meta.layers.forEach((la, k) => {
      const o = document.createElement("option");
      o.value = String(k);
      o.textContent = la.modality + " " + la.period;
      select.appendChild(o);
    });
    select.addEventListener("change", () => setLayer(Number(select.value)));
    document.querySelectorAll("tr.layer-row").forEach((row) =>
      row.addEventListener("click", () => setLayer(Number(row.dataset.layer))));
    document.querySelectorAll("button.tile-link").forEach((b) => b.addEventListener("click", () => {
      setLayer(Number(b.dataset.layer));
      show(ids.indexOf(b.dataset.tile));
      canvas.scrollIntoView({block: "nearest"});
    }));
    document.getElementById("reset").addEventListener("click", () => { fit(); draw(); });
    let drag = null, moved = false;
    canvas.addEventListener("pointerdown", (e) => { drag = [e.clientX, e.clientY]; moved = false; });
    canvas.addEventListener("pointermove", (e) => {
      if (!drag) return;
      const r = canvas.getBoundingClientRect(), f = canvas.width / r.width;
      const dx = (e.clientX - drag[0]) * f, dy = (e.clientY - drag[1]) * f;
      if (Math.abs(dx) + Math.abs(dy) > 2) moved = true;
      if (moved) { state.ox += dx; state.oy += dy; drag = [e.clientX, e.clientY]; draw(); }
    });
    canvas.addEventListener("pointerup", (e) => {
      if (drag && !moved) show(tileAt(e.clientX, e.clientY));
      drag = null;
    });
    canvas.addEventListener("wheel", (e) => {
      e.preventDefault();
      const r = canvas.getBoundingClientRect(), f = canvas.width / r.width;
      const mx = (e.clientX - r.left) * f, my = (e.clientY - r.top) * f;
      const z = Math.exp(-e.deltaY * 0.0015);
      state.ox = mx - (mx - state.ox) * z;
      state.oy = my - (my - state.oy) * z;
      state.scale *= z;
      draw();
    }, {passive: false});
  }

  async function main() {
    const [idText, c, o, k, f] = await Promise.all(
      ["ids", "centres", "offsets", "codes", "failed"].map(bytes));
    ids = meta.tiles ? new TextDecoder().decode(idText).split("\n") : [];
    // both arrive as differences from the previous tile (see page.py): sum them back
    const dc = new Int32Array(c), d16 = new Int16Array(o);
    cx = new Float64Array(ids.length); cy = new Float64Array(ids.length);
    off = new Int16Array(d16.length);
    for (let i = 0; i < ids.length; i++) {
      cx[i] = (i ? cx[i - 1] : 0) + dc[2 * i];
      cy[i] = (i ? cy[i - 1] : 0) + dc[2 * i + 1];
      for (let k2 = 0; k2 < 8; k2++) {
        off[8 * i + k2] = ((i ? off[8 * (i - 1) + k2] : 0) + d16[8 * i + k2]) << 16 >> 16;
      }
    }
    codes = new Uint8Array(k);
    const fu = new Int32Array(f);
    for (let j = 0; j < fu.length; j += 4) failed.set(fu[j] * ids.length + fu[j + 1], [fu[j + 2], fu[j + 3]]);
    project();
    fit();
    wire();
    setLayer(0);
    window.m3leo = {
      ids, statusOf, setLayer, show,
      // where a tile's centre is on screen (CSS pixels), for tests and scripted screenshots
      tileClientXY(id) {
        const i = ids.indexOf(id), r = canvas.getBoundingClientRect(), f = r.width / canvas.width;
        let x = 0, y = 0;
        for (let k2 = 0; k2 < 4; k2++) { x += px[4 * i + k2] / 4; y += py[4 * i + k2] / 4; }
        return [r.left + sx(x) * f, r.top + sy(y) * f];
      },
    };
    window.m3leoReadyMs = performance.now();  // since navigation: the page's own load time
    window.m3leoReady = true;
  }

  main().catch((e) => { console.error("report: " + (e && e.stack || e)); });
})();
