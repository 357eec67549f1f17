// The dashboard's traffic charts: a site's requests and bandwidth over time per edge, the
// visitors the redirectors sent to each edge and why, its status classes, top pages, referrers
// and countries, from the redirector's api/stats, for the range chosen, refreshed every 15 s.
// Every value from the network is put in the page as text.
'use strict';

(function () {
  const SVG = 'http://www.w3.org/2000/svg'; // the SVG namespace name, not a resource
  const byId = (id) => document.getElementById(id);
  const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b', '#17becf'];
  const REFRESH_MS = 15000;

  function svg(tag, attrs, text) {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function num(n) {
    const units = ['', 'k', 'M', 'G', 'T'];
    let i = 0;
    while (n >= 1000 && i < units.length - 1) { n /= 1000; i++; }
    return (i === 0 ? String(Math.round(n)) : n.toFixed(n < 10 ? 1 : 0)) + units[i];
  }

  // lineChart draws one polyline per series ({name, points: [[t, v]]}) over [from, until].
  function lineChart(el, series, from, until, unit) {
    el.replaceChildren();
    const W = 600, H = 160, L = 40, B = 20, T = 8;
    let top = 1;
    for (const s of series) for (const [, v] of s.points) top = Math.max(top, v);
    const x = (t) => L + (W - L - 4) * (t - from) / Math.max(1, until - from);
    const y = (v) => H - B - (H - B - T) * v / top;
    el.append(svg('line', {class: 'axis', x1: L, y1: H - B, x2: W, y2: H - B}), svg('line', {class: 'axis', x1: L, y1: T, x2: L, y2: H - B}));
    el.append(svg('text', {x: 2, y: T + 10}, num(top) + unit), svg('text', {x: 2, y: H - B}, '0'));
    el.append(svg('text', {x: L, y: H - 4}, new Date(from * 1000).toLocaleString()));
    el.append(svg('text', {x: W - 4, y: H - 4, 'text-anchor': 'end'}, new Date(until * 1000).toLocaleString()));
    series.forEach((s, i) => {
      const color = COLORS[i % COLORS.length];
      const pts = s.points.map(([t, v]) => x(t).toFixed(1) + ',' + y(v).toFixed(1)).join(' ');
      const line = svg('polyline', {points: pts, stroke: color, 'data-series': s.name});
      line.append(svg('title', {}, s.name));
      el.append(line);
      for (const [t, v] of s.points) { // a dot per point: a series of one point draws no line
        const dot = svg('circle', {cx: x(t).toFixed(1), cy: y(v).toFixed(1), r: 3, fill: color});
        dot.append(svg('title', {}, s.name + ': ' + num(v) + unit + ' at ' + new Date(t * 1000).toLocaleString()));
        el.append(dot);
      }
      el.append(svg('text', {x: W - 4, y: T + 12 + 12 * i, 'text-anchor': 'end', fill: color}, s.name));
    });
  }

  // statusBar draws the share of each status class.
  function statusBar(el, status) {
    el.replaceChildren();
    const total = status.reduce((a, b) => a + b, 0);
    const classes = ['2xx', '3xx', '4xx', '5xx'], colors = ['#2ca02c', '#1f77b4', '#ff7f0e', '#d62728'];
    let at = 0;
    classes.forEach((c, i) => {
      if (!status[i]) return;
      const w = 600 * status[i] / total;
      const r = svg('rect', {x: at, y: 0, width: w, height: 24, fill: colors[i], 'data-class': c});
      r.append(svg('title', {}, c + ': ' + status[i]));
      el.append(r, svg('text', {x: at + 4, y: 36}, c + ' ' + num(status[i])));
      at += w;
    });
  }

  function fillTable(id, counts) {
    const body = byId(id).tBodies[0];
    body.replaceChildren();
    for (const c of counts || []) {
      const tr = document.createElement('tr');
      tr.dataset.key = c.k;
      const k = document.createElement('td'), n = document.createElement('td');
      k.textContent = c.k;
      n.textContent = String(c.n);
      n.className = 'num';
      tr.append(k, n);
      body.append(tr);
    }
  }

  // fillRedirects lists where the redirectors sent the site's visitors, and why.
  function fillRedirects(redirects) {
    const body = byId('traffic-redirects').tBodies[0];
    body.replaceChildren();
    for (const r of redirects || []) {
      const tr = document.createElement('tr');
      tr.dataset.edge = r.edge;
      tr.dataset.reason = r.reason;
      const cells = [edgeNames[r.edge] || r.edge.slice(0, 12), r.reason, String(r.n)].map((text) => {
        const td = document.createElement('td');
        td.textContent = text;
        return td;
      });
      cells[2].className = 'num';
      tr.append(...cells);
      body.append(tr);
    }
  }

  // edgeNames maps node ids to the names the snapshot gives them.
  let edgeNames = {};

  function render(r) {
    const series = Object.entries(r.edges || {}).map(([id, ps]) => ({
      name: edgeNames[id] || id.slice(0, 12),
      points: ps.map((p) => [p.t, p.requests]),
    }));
    series.sort((a, b) => a.name.localeCompare(b.name));
    lineChart(byId('traffic-requests'), series, r.from, r.until, '');
    lineChart(byId('traffic-bytes'), [{name: 'all edges', points: (r.points || []).map((p) => [p.t, p.bytes])}], r.from, r.until, 'B');
    const redirects = Object.entries(r.redirect_edges || {}).map(([id, ps]) => ({
      name: edgeNames[id] || id.slice(0, 12),
      points: ps.map((p) => [p.t, p.n]),
    }));
    redirects.sort((a, b) => a.name.localeCompare(b.name));
    lineChart(byId('traffic-redirects-chart'), redirects, r.from, r.until, '');
    fillRedirects(r.redirects);
    statusBar(byId('traffic-status'), r.total.status);
    fillTable('traffic-paths', r.paths);
    fillTable('traffic-referrers', r.referrers);
    fillTable('traffic-countries', r.countries);
    const t = r.total;
    const summary = byId('traffic-summary');
    summary.classList.toggle('empty', t.requests === 0);
    summary.textContent = t.requests === 0 ? 'No traffic reported for this site in this range.' :
      num(t.requests) + ' requests, ' + num(t.bytes) + 'B sent, ' + num(t.not_modified) + ' cache validations, about ' +
      num(r.visitors) + ' unique visitors';
    byId('traffic').dataset.requests = String(t.requests);
    byId('traffic-updated').textContent = 'updated ' + new Date().toLocaleTimeString();
  }

  async function refreshSites() {
    const resp = await fetch('api/snapshot', {cache: 'no-store'});
    if (!resp.ok) return;
    const snap = await resp.json();
    edgeNames = {};
    for (const e of snap.edges || []) edgeNames[e.node] = e.name || e.url;
    const sel = byId('traffic-site'), chosen = sel.value;
    const names = (snap.sites || []).map((s) => s.name);
    if (names.length === 0) names.push('default');
    if (names.join() !== Array.from(sel.options, (o) => o.value).join()) {
      sel.replaceChildren(...names.map((n) => { const o = document.createElement('option'); o.value = o.textContent = n; return o; }));
      if (names.includes(chosen)) sel.value = chosen;
    }
  }

  async function refresh() {
    try {
      await refreshSites();
      const q = new URLSearchParams({site: byId('traffic-site').value || 'default', since: byId('traffic-range').value});
      const resp = await fetch('api/stats?' + q, {cache: 'no-store'});
      if (resp.ok) render(await resp.json());
    } catch (err) {
      byId('traffic-updated').textContent = 'not updated: ' + err.message;
    }
  }

  document.addEventListener('DOMContentLoaded', () => {
    byId('traffic-site').addEventListener('change', refresh);
    byId('traffic-range').addEventListener('change', refresh);
    refresh();
    setInterval(refresh, REFRESH_MS);
  });
})();
