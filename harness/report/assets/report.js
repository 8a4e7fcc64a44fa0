/* rollgate report timeline: a dependency-free canvas chart.
 * Reads the JSON in #rollgate-data (built by harness/report/chartdata.py),
 * draws request rate, latency and failures per request kind, executor steps,
 * outage intervals and data-plane gaps, and one release swimlane per host.
 * Wheel zooms around the cursor, drag selects a range to zoom into,
 * double-click (or "reset") shows the whole run. When drawn, it sets
 * data-chart-drawn (the number of drawn marks) on <html> for tests. */
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("rollgate-data").textContent);
  var canvas = document.getElementById("chart");
  var tip = document.getElementById("tooltip");
  var ctx = canvas.getContext("2d");
  var KIND_COLORS = { api: "#1f77b4", dataplane: "#2ca02c" };
  var FAIL = "#d62728";
  var RELEASE_COLORS = ["#9ecae1", "#3182bd", "#a1d99b", "#31a354", "#fdd0a2", "#e6550d", "#bcbddc", "#756bb1"];
  var LEFT = 170, RIGHT = 16, TOP = 8;
  var RATE_H = 150, LAT_H = 120, ROW_H = 14, LANE_H = 18, AXIS_H = 26, GAP = 10;
  var hidden = {};
  var view = [0, Math.max(data.duration, 0.001)];
  var layout = {};
  var marks = 0;

  var releases = [];
  data.lanes.forEach(function (lane) {
    lane.segments.forEach(function (s) {
      if (s.state === "release" && releases.indexOf(s.label) < 0) releases.push(s.label);
    });
  });
  releases.sort();
  function releaseColor(label) {
    var i = releases.indexOf(label);
    return i < 0 ? "#ccc" : RELEASE_COLORS[i % RELEASE_COLORS.length];
  }

  // Steps are packed into as few rows as keep them from overlapping.
  var stepRows = [];
  data.steps.forEach(function (s) {
    for (var r = 0; r < stepRows.length; r++) {
      if (stepRows[r] <= s.start) { s.row = r; stepRows[r] = s.end; return; }
    }
    s.row = stepRows.length; stepRows.push(s.end);
  });
  var intervalTargets = [];
  data.outages.forEach(function (o) { o.label = o.target; });
  data.gaps.forEach(function (g) { g.label = g.target + " (gap)"; });
  data.outages.concat(data.gaps).forEach(function (o) {
    if (intervalTargets.indexOf(o.label) < 0) intervalTargets.push(o.label);
  });

  function computeLayout(width) {
    var y = TOP;
    layout.rate = [y, y + RATE_H]; y += RATE_H + GAP;
    layout.lat = [y, y + LAT_H]; y += LAT_H + GAP;
    layout.steps = [y, y + Math.max(1, stepRows.length) * ROW_H]; y = layout.steps[1] + GAP;
    layout.outages = [y, y + Math.max(1, intervalTargets.length) * ROW_H]; y = layout.outages[1] + GAP;
    layout.lanes = [y, y + Math.max(1, data.lanes.length) * LANE_H]; y = layout.lanes[1];
    layout.axis = [y, y + AXIS_H];
    layout.height = y + AXIS_H;
    layout.width = width;
  }
  function xOf(t) { return LEFT + (t - view[0]) / (view[1] - view[0]) * (layout.width - LEFT - RIGHT); }
  function tOf(x) { return view[0] + (x - LEFT) / (layout.width - LEFT - RIGHT) * (view[1] - view[0]); }
  function clip(a, b) { return [Math.max(xOf(a), LEFT), Math.min(xOf(b), layout.width - RIGHT)]; }

  function label(text, y, color) {
    ctx.fillStyle = color || "#333"; ctx.font = "11px sans-serif"; ctx.textBaseline = "middle";
    ctx.fillText(text.length > 26 ? text.slice(0, 25) + "\u2026" : text, 4, y);
  }
  function band(a, b, y0, y1, color) {
    var c = clip(a, b);
    if (c[1] < LEFT || c[0] > layout.width - RIGHT) return;
    ctx.fillStyle = color; ctx.fillRect(c[0], y0, Math.max(1, c[1] - c[0]), y1 - y0); marks++;
  }
  function visibleBuckets() {
    var size = data.bucket_s;
    return [Math.max(0, Math.floor(view[0] / size)), Math.min(data.buckets - 1, Math.ceil(view[1] / size))];
  }
  function maxOf(key, scale) {
    var range = visibleBuckets(), top = 0;
    Object.keys(data.series).forEach(function (kind) {
      if (hidden[kind]) return;
      var values = data.series[kind][key];
      for (var i = range[0]; i <= range[1]; i++) top = Math.max(top, values[i] * scale);
    });
    return top;
  }
  // counts: when given, buckets without requests break the line (no latency is not zero latency).
  function line(values, scale, y0, y1, top, color, logScale, width, counts) {
    var range = visibleBuckets(), size = data.bucket_s, started = false;
    ctx.strokeStyle = color; ctx.lineWidth = width; ctx.beginPath();
    for (var i = range[0]; i <= range[1]; i++) {
      if (counts && !counts[i]) { started = false; continue; }
      var v = values[i] * scale;
      var frac = logScale ? (v > 0 ? Math.log10(Math.max(v, 0.1) / 0.1) / Math.log10(top / 0.1) : 0) : v / top;
      var x = xOf((i + 0.5) * size), y = y1 - frac * (y1 - y0);
      if (!started) { ctx.moveTo(x, y); started = true; } else ctx.lineTo(x, y);
    }
    ctx.stroke(); marks += range[1] - range[0] + 1;
  }
  function overlays(y0, y1) {
    data.steps.forEach(function (s) {
      band(s.start, s.end, y0, y1, s.direction === "rollback" ? "rgba(255,152,0,.10)" : "rgba(63,81,181,.06)");
    });
    data.outages.forEach(function (o) { band(o.start, o.end, y0, y1, "rgba(214,39,40,.16)"); });
  }
  function frame(y0, y1, title, top, unit) {
    ctx.strokeStyle = "#bbb"; ctx.lineWidth = 1; ctx.strokeRect(LEFT, y0, layout.width - LEFT - RIGHT, y1 - y0);
    label(title, y0 + 8, "#000"); label("max " + top.toFixed(top < 10 ? 1 : 0) + " " + unit, y0 + 22, "#777");
  }

  function drawRate() {
    var y0 = layout.rate[0], y1 = layout.rate[1], scale = 1 / data.bucket_s;
    var top = Math.max(1, maxOf("n", scale)) * 1.1;
    overlays(y0, y1);
    Object.keys(data.series).forEach(function (kind) {
      if (!hidden[kind]) line(data.series[kind].n, scale, y0, y1, top, KIND_COLORS[kind] || "#555", false, 1.3);
    });
    var range = visibleBuckets(), size = data.bucket_s, w = Math.max(1, xOf(size) - xOf(0));
    ctx.fillStyle = FAIL;
    Object.keys(data.series).forEach(function (kind) {
      if (hidden[kind]) return;
      var fails = data.series[kind].fail;
      for (var i = range[0]; i <= range[1]; i++) {
        if (!fails[i]) continue;
        var h = fails[i] * scale / top * (y1 - y0);
        ctx.fillRect(xOf(i * size), y1 - h, w, Math.max(2, h)); marks++;
      }
    });
    frame(y0, y1, "requests/s (red: failed)", top, "req/s");
  }
  function drawLatency() {
    var y0 = layout.lat[0], y1 = layout.lat[1];
    var top = Math.max(1, maxOf("max", 1));
    data.failures.lat.forEach(function (v) { top = Math.max(top, v); });
    top *= 1.2;
    overlays(y0, y1);
    Object.keys(data.series).forEach(function (kind) {
      if (hidden[kind]) return;
      var color = KIND_COLORS[kind] || "#555";
      var n = data.series[kind].n;
      ctx.globalAlpha = 0.35; line(data.series[kind].max, 1, y0, y1, top, color, true, 1, n);
      ctx.globalAlpha = 1; line(data.series[kind].mean, 1, y0, y1, top, color, true, 1.4, n);
    });
    var f = data.failures;
    ctx.fillStyle = FAIL;
    for (var i = 0; i < f.t.length; i++) {
      if (f.t[i] < view[0] || f.t[i] > view[1] || hidden[f.strings[f.kind[i]]]) continue;
      var frac = Math.log10(Math.max(f.lat[i], 0.1) / 0.1) / Math.log10(top / 0.1);
      ctx.fillRect(xOf(f.t[i]) - 1.5, y1 - frac * (y1 - y0) - 1.5, 3, 3); marks++;
    }
    frame(y0, y1, "latency ms (log; mean, max)", top, "ms");
  }
  function drawFaults() {
    ctx.strokeStyle = "#8b0000"; ctx.lineWidth = 1.5; ctx.setLineDash([4, 3]);
    data.faults.forEach(function (f) {
      var x = xOf(f.t);
      if (x < LEFT || x > layout.width - RIGHT) return;
      ctx.beginPath(); ctx.moveTo(x, TOP); ctx.lineTo(x, layout.lanes[1]); ctx.stroke(); marks++;
      ctx.fillStyle = "#8b0000"; ctx.font = "10px sans-serif";
      ctx.fillText("fault " + (f.action || "") + " " + (f.host || ""), x + 3, layout.rate[0] + 36);
    });
    ctx.setLineDash([]);
  }
  function drawRows() {
    var y = layout.steps[0];
    label("executor steps", y + ROW_H / 2, "#000");
    data.steps.forEach(function (s) {
      var c = clip(s.start, s.end), ry = y + s.row * ROW_H;
      if (c[1] < LEFT || c[0] > layout.width - RIGHT) return;
      ctx.fillStyle = s.outcome === "failed" ? FAIL : (s.direction === "rollback" ? "#ff9800" : "#5c6bc0");
      ctx.fillRect(c[0], ry + 1, Math.max(2, c[1] - c[0]), ROW_H - 2); marks++;
      var text = s.name + (s.host ? " " + s.host : "");
      if (c[1] - c[0] > ctx.measureText(text).width + 6) {
        ctx.fillStyle = "#fff"; ctx.font = "10px sans-serif"; ctx.fillText(text, c[0] + 3, ry + ROW_H / 2);
      }
    });
    intervalTargets.forEach(function (target, r) {
      var ry = layout.outages[0] + r * ROW_H;
      label(target, ry + ROW_H / 2, FAIL);
      data.outages.concat(data.gaps).forEach(function (o) {
        if (o.label === target) band(o.start, o.end, ry + 1, ry + ROW_H - 1, o.label === o.target ? FAIL : "#e377c2");
      });
    });
    if (!intervalTargets.length) label("no outage", layout.outages[0] + ROW_H / 2, "#2e7d32");
    data.lanes.forEach(function (lane, r) {
      var ry = layout.lanes[0] + r * LANE_H;
      label(lane.host, ry + LANE_H / 2, "#000");
      lane.segments.forEach(function (s) {
        var color = s.state === "release" ? releaseColor(s.label) : s.state === "mixed" ? "#fdae6b"
          : s.state === "replacing" ? "#ffcc80" : s.state === "rebooting" ? "#9e9e9e" : "#eee";
        band(s.start, s.end, ry + 2, ry + LANE_H - 2, color);
        var c = clip(s.start, s.end);
        ctx.font = "10px sans-serif";
        if (c[1] - c[0] > ctx.measureText(s.label).width + 6) {
          ctx.fillStyle = "#111"; ctx.fillText(s.label, c[0] + 3, ry + LANE_H / 2);
        }
      });
    });
  }
  function drawAxis() {
    var y = layout.axis[0], span = view[1] - view[0];
    var step = Math.pow(10, Math.floor(Math.log10(span / 8)));
    [1, 2, 5, 10].some(function (m) { if (span / (step * m) <= 10) { step *= m; return true; } return false; });
    ctx.fillStyle = "#444"; ctx.strokeStyle = "#eee"; ctx.font = "11px sans-serif"; ctx.textBaseline = "top";
    for (var t = Math.ceil(view[0] / step) * step; t <= view[1]; t += step) {
      var x = xOf(t);
      ctx.beginPath(); ctx.moveTo(x, TOP); ctx.lineTo(x, y); ctx.stroke();
      ctx.fillText((step < 1 ? t.toFixed(1) : t.toFixed(0)) + " s", x - 10, y + 6);
    }
    ctx.textBaseline = "middle";
  }

  function draw() {
    var width = canvas.parentNode.clientWidth, ratio = window.devicePixelRatio || 1;
    computeLayout(width);
    canvas.style.height = layout.height + "px";
    canvas.width = Math.round(width * ratio); canvas.height = Math.round(layout.height * ratio);
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, width, layout.height);
    ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, width, layout.height);
    marks = 0;
    drawAxis(); drawRate(); drawLatency(); drawRows(); drawFaults();
    if (selecting) band(Math.min(selecting[0], selecting[1]), Math.max(selecting[0], selecting[1]),
      TOP, layout.axis[0], "rgba(0,0,0,.12)");
    var rect = canvas.getBoundingClientRect();
    var root = document.documentElement;
    root.setAttribute("data-chart-drawn", String(marks));
    root.setAttribute("data-chart-rect", [Math.round(rect.left + window.scrollX), Math.round(rect.top + window.scrollY),
      Math.round(rect.width), Math.round(rect.height)].join(","));
    document.getElementById("chart-status").textContent = "drawn: " + marks + " marks, view " +
      view[0].toFixed(2) + "-" + view[1].toFixed(2) + " s";
  }

  function describe(x, y) {
    var t = tOf(x), lines = ["t = " + t.toFixed(3) + " s" + (data.wall_origin ?
      "  (" + new Date((data.wall_origin + t) * 1000).toISOString().slice(11, 23) + " UTC)" : "")];
    var i = Math.floor(t / data.bucket_s);
    Object.keys(data.series).forEach(function (kind) {
      var s = data.series[kind];
      if (i >= 0 && i < data.buckets && s.n[i]) {
        lines.push(kind + ": " + (s.n[i] / data.bucket_s).toFixed(0) + " req/s, " + s.fail[i] + " failed, mean " +
          s.mean[i] + " ms, max " + s.max[i] + " ms");
      }
    });
    data.steps.forEach(function (s) {
      if (s.start <= t && t <= s.end) lines.push("step " + (s.step_id || "") + " " + s.name + " " + (s.host || "") +
        (s.service ? "/" + s.service : "") + (s.to ? " -> " + s.to : "") + " [" + (s.outcome || "running") + "]" +
        (s.error ? " " + s.error : ""));
    });
    data.faults.forEach(function (f) {
      if (Math.abs(xOf(f.t) - x) < 4) lines.push("fault " + f.action + " " + f.host + "/" + f.service + " at " + f.t + " s");
    });
    data.outages.concat(data.gaps).forEach(function (o) {
      if (o.start <= t && t <= o.end) lines.push("outage " + o.label + " " + (o.end - o.start).toFixed(3) + " s: " + o.error);
    });
    if (y >= layout.lanes[0] && y < layout.lanes[1]) {
      var lane = data.lanes[Math.floor((y - layout.lanes[0]) / LANE_H)];
      if (lane) lane.segments.forEach(function (s) {
        if (s.start <= t && t <= s.end) lines.push(lane.host + ": " + s.label + " (" + lane.services.join(", ") + ")");
      });
    }
    var f = data.failures;
    for (var k = 0; k < f.t.length; k++) {
      if (Math.abs(xOf(f.t[k]) - x) < 3) {
        lines.push("failed " + f.strings[f.target[k]] + " at " + f.t[k] + " s (line " + f.line[k] + "): " + f.strings[f.error[k]]);
        if (lines.length > 14) break;
      }
    }
    return lines.join("\n");
  }

  var dragStart = null, selecting = null;
  canvas.addEventListener("mousemove", function (ev) {
    var r = canvas.getBoundingClientRect(), x = ev.clientX - r.left, y = ev.clientY - r.top;
    if (dragStart !== null) { selecting = [dragStart, tOf(x)]; draw(); }
    if (x < LEFT) { tip.style.display = "none"; return; }
    tip.textContent = describe(x, y); tip.style.display = "block";
    tip.style.left = Math.min(x + 14, r.width - 360) + "px"; tip.style.top = (y + 14) + "px";
  });
  canvas.addEventListener("mouseleave", function () { tip.style.display = "none"; });
  canvas.addEventListener("mousedown", function (ev) {
    dragStart = tOf(ev.clientX - canvas.getBoundingClientRect().left);
  });
  window.addEventListener("mouseup", function () {
    if (selecting && Math.abs(xOf(selecting[1]) - xOf(selecting[0])) > 5) {
      zoomTo(Math.min(selecting[0], selecting[1]), Math.max(selecting[0], selecting[1]));
    }
    dragStart = null; selecting = null; draw();
  });
  canvas.addEventListener("wheel", function (ev) {
    ev.preventDefault();
    var t = tOf(ev.clientX - canvas.getBoundingClientRect().left), f = ev.deltaY > 0 ? 1.25 : 0.8;
    zoomTo(t - (t - view[0]) * f, t + (view[1] - t) * f);
  }, { passive: false });
  canvas.addEventListener("dblclick", function () { zoomTo(0, data.duration); });
  function zoomTo(a, b) {
    var full = Math.max(data.duration, 0.001);
    if (b - a < 0.01) { var mid = (a + b) / 2; a = mid - 0.005; b = mid + 0.005; }
    view = [Math.max(-0.05 * full, a), Math.min(full * 1.05, b)]; draw();
  }
  window.rollgateZoom = function (a, b) {
    var pad = Math.max(0.5, (b - a) * 0.5); zoomTo(a - pad, b + pad);
    canvas.scrollIntoView({ behavior: "smooth", block: "center" });
  };
  document.getElementById("reset-zoom").addEventListener("click", function () { zoomTo(0, data.duration); });
  Array.prototype.forEach.call(document.querySelectorAll("input[data-kind]"), function (box) {
    box.addEventListener("change", function () { hidden[box.getAttribute("data-kind")] = !box.checked; draw(); });
  });
  Array.prototype.forEach.call(document.querySelectorAll("button[data-window]"), function (button) {
    button.addEventListener("click", function () {
      var w = button.getAttribute("data-window").split(",").map(Number); window.rollgateZoom(w[0], w[1]);
    });
  });
  window.addEventListener("resize", draw);
  draw();
})();
