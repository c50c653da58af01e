/*
 * mesh load report: draws the charts as SVG from the view JSON that mesh embedded in the page
 * (element #report-view). Names in it come from peers (X-Served-By, event names), so text only
 * ever goes in through textContent, never as markup.
 */
(function () {
  'use strict';
  var NS = 'http://www.w3.org/2000/svg';
  var COLORS = 10;
  var view = JSON.parse(document.getElementById('report-view').textContent);
  var EMPTY = {
    rate: 'No requests were recorded.',
    latency: 'No response times were recorded.',
    codes: 'No responses were recorded.',
    errors: 'No errors.',
    served: 'No X-Served-By headers were seen.'
  };

  function svg(name, attrs, parent) {
    var e = document.createElementNS(NS, name);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (parent) parent.appendChild(e);
    return e;
  }

  function html(name, cls, parent, text) {
    var e = document.createElement(name);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    if (parent) parent.appendChild(e);
    return e;
  }

  /* A step of 1, 2 or 5 times a power of ten giving about n ticks over range. */
  function niceStep(range, n) {
    var raw = range / Math.max(n, 1);
    var p = Math.pow(10, Math.floor(Math.log10(raw)));
    var f = raw / p;
    return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * p;
  }

  function fmt(v) {
    if (v === null || v === undefined) return '–';
    var a = Math.abs(v);
    if (a >= 1e6) return (v / 1e6).toFixed(a >= 1e7 ? 0 : 1) + 'M';
    if (a >= 1e4) return (v / 1e3).toFixed(a >= 1e5 ? 0 : 1) + 'k';
    if (a >= 100 || v === Math.round(v)) return String(Math.round(v));
    return String(parseFloat(v.toFixed(a >= 10 ? 1 : 2)));
  }

  function fmtTime(s) {
    if (s < 120 && s === Math.round(s)) return s + 's';
    if (s < 120) return s.toFixed(1) + 's';
    var m = Math.floor(s / 60), r = Math.round(s - m * 60);
    return m + 'm' + (r < 10 ? '0' : '') + r + 's';
  }

  /* The x range covers the buckets, the phases and the events, so no marker falls off. */
  function xRange() {
    var lo = Infinity, hi = -Infinity, i;
    var t = view.t;
    for (i = 0; i < t.length; i++) {
      lo = Math.min(lo, t[i]);
      hi = Math.max(hi, t[i]);
    }
    view.phases.forEach(function (p) {
      lo = Math.min(lo, p.start);
      hi = Math.max(hi, p.end);
    });
    view.events.forEach(function (e) {
      lo = Math.min(lo, e.t);
      hi = Math.max(hi, e.t);
    });
    if (!isFinite(lo)) return [0, 1];
    return hi > lo ? [lo, hi] : [lo, lo + 1];
  }

  function yMax(series) {
    var m = 0;
    series.forEach(function (s) {
      s.values.forEach(function (v) {
        if (v !== null && v > m) m = v;
      });
    });
    return m > 0 ? m : 1;
  }

  /* One path per series; a null value breaks the line instead of drawing it at zero. */
  function seriesPath(values, X, Y) {
    var d = '', pen = false, i;
    for (i = 0; i < values.length; i++) {
      if (values[i] === null) {
        pen = false;
        continue;
      }
      d += (pen ? 'L' : 'M') + X(view.t[i]).toFixed(1) + ' ' + Y(values[i]).toFixed(1);
      pen = true;
    }
    return d;
  }

  function drawBands(g, X, top, h) {
    view.phases.forEach(function (p, i) {
      var x0 = X(p.start), x1 = X(p.end);
      if (x1 - x0 < 1) return;
      svg('rect', { x: x0, y: top, width: x1 - x0, height: h, 'class': 'band' + (i % 2) }, g);
      if (x1 - x0 > 44) {
        var label = svg('text', { x: x0 + 3, y: top - 5, 'class': 'bandlabel' }, g);
        label.textContent = p.name;
        /* Cut a long name to its band so neighbours stay readable. */
        var room = x1 - x0 - 6;
        while (label.textContent.length > 2 && label.getComputedTextLength() > room)
          label.textContent = label.textContent.slice(0, -2) + '…';
      }
    });
  }

  function drawEvents(g, X, top, h) {
    view.events.forEach(function (e) {
      var x = X(e.t);
      svg('line', { x1: x, x2: x, y1: top, y2: top + h, 'class': 'event' }, g);
      var label = svg('text', {
        x: x + 4, y: top + 4, 'class': 'eventlabel',
        transform: 'rotate(90 ' + (x + 4) + ' ' + (top + 4) + ')'
      }, g);
      label.textContent = e.name;
    });
  }

  function drawAxes(g, X, Y, xr, ymax, m, w, h) {
    var ystep = niceStep(ymax, h < 180 ? 3 : 5), v;
    for (v = 0; v <= ymax * 1.0001; v += ystep) {
      svg('line', { x1: m.l, x2: m.l + w, y1: Y(v), y2: Y(v), 'class': 'grid' }, g);
      svg('text', { x: m.l - 6, y: Y(v) + 4, 'text-anchor': 'end', 'class': 'axis' }, g)
        .textContent = fmt(v);
    }
    var xstep = niceStep(xr[1] - xr[0], Math.max(2, Math.floor(w / 80)));
    for (v = Math.ceil(xr[0] / xstep) * xstep; v <= xr[1] + 1e-9; v += xstep) {
      svg('text', { x: X(v), y: m.t + h + 16, 'text-anchor': 'middle', 'class': 'axis' }, g)
        .textContent = fmtTime(v);
    }
  }

  function nearestIndex(t, want) {
    var best = 0, i;
    for (i = 1; i < t.length; i++)
      if (Math.abs(t[i] - want) < Math.abs(t[best] - want)) best = i;
    return best;
  }

  function attachHover(box, root, chart, X, m, w, h, xr) {
    var line = svg('line', { y1: m.t, y2: m.t + h, 'class': 'hover', visibility: 'hidden' }, root);
    var tip = html('div', 'tip', box);
    tip.style.display = 'none';
    var area = svg('rect', { x: m.l, y: m.t, width: w, height: h, fill: 'transparent' }, root);
    function move(ev) {
      var r = root.getBoundingClientRect();
      var px = (ev.touches ? ev.touches[0].clientX : ev.clientX) - r.left;
      var i = nearestIndex(view.t, xr[0] + (px - m.l) / w * (xr[1] - xr[0]));
      var x = X(view.t[i]);
      line.setAttribute('x1', x);
      line.setAttribute('x2', x);
      line.setAttribute('visibility', 'visible');
      tip.textContent = '';
      html('div', '', tip, 't = ' + fmtTime(view.t[i]));
      chart.series.forEach(function (s) {
        html('div', '', tip, s.name + ': ' + fmt(s.values[i]));
      });
      tip.style.display = 'block';
      var left = x + 12;
      if (left + tip.offsetWidth > box.clientWidth) left = Math.max(0, x - 12 - tip.offsetWidth);
      tip.style.left = left + 'px';
    }
    function leave() {
      line.setAttribute('visibility', 'hidden');
      tip.style.display = 'none';
    }
    area.addEventListener('mousemove', move);
    area.addEventListener('touchstart', move, { passive: true });
    area.addEventListener('mouseleave', leave);
  }

  function draw(box, legend, chart) {
    box.textContent = '';
    legend.textContent = '';
    if (!chart.series.length || !view.t.length) {
      html('div', 'empty', box, EMPTY[chart.id] || 'No data.');
      return;
    }
    var W = Math.max(box.clientWidth, 260), H = W < 480 ? 190 : 250;
    var m = { l: 46, r: 10, t: view.phases.length ? 20 : 8, b: 24 };
    var w = W - m.l - m.r, h = H - m.t - m.b;
    var xr = xRange(), ymax = yMax(chart.series) * 1.05;
    var X = function (v) { return m.l + (v - xr[0]) / (xr[1] - xr[0]) * w; };
    var Y = function (v) { return m.t + h - v / ymax * h; };
    var root = svg('svg', {
      viewBox: '0 0 ' + W + ' ' + H, role: 'img',
      'aria-label': chart.title + ' (' + chart.unit + ')'
    }, box);
    drawBands(root, X, m.t, h);
    drawAxes(root, X, Y, xr, ymax, m, w, h);
    chart.series.forEach(function (s, i) {
      var cls = 's' + (i % COLORS);
      var d = seriesPath(s.values, X, Y);
      svg('path', { d: d, 'class': 'line ' + cls }, root);
      if (view.t.length === 1)
        svg('circle', { cx: X(view.t[0]), cy: Y(s.values[0] || 0), r: 3, 'class': cls }, root);
      var item = html('span', '', legend);
      html('i', cls, item);
      item.appendChild(document.createTextNode(s.name));
    });
    drawEvents(root, X, m.t, h);
    attachHover(box, root, chart, X, m, w, h, xr);
  }

  function drawAll() {
    view.charts.forEach(function (chart) {
      var section = document.getElementById('chart-' + chart.id);
      if (!section) return;
      draw(section.querySelector('.plot'), section.querySelector('.legend'), chart);
    });
  }

  var pending = null;
  window.addEventListener('resize', function () {
    clearTimeout(pending);
    pending = setTimeout(drawAll, 150);
  });
  drawAll();
})();
