// The dashboard's script: it renders the snapshots the server pushes on api/events (falling back
// to polling api/snapshot where EventSource is missing). Every value from the network is put in
// the page as text, never as markup: edges choose what their heartbeats say.
'use strict';

(function () {
  const SVG = 'http://www.w3.org/2000/svg'; // the SVG namespace name, not a resource
  const byId = (id) => document.getElementById(id);

  // h builds an element: h('td', {class: 'num'}, 'text', child, …). Strings become text nodes.
  function h(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v !== undefined && v !== null && v !== false) e.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of children) {
      if (c === null || c === undefined || c === false) continue;
      e.append(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c);
    }
    return e;
  }

  function svg(tag, attrs) {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
    return e;
  }

  const shortID = (id) => (id || '').slice(0, 12);

  function bytes(n) {
    const units = ['B', 'KB', 'MB', 'GB', 'TB'];
    let i = 0;
    while (n >= 1000 && i < units.length - 1) { n /= 1000; i++; }
    return (i === 0 ? String(Math.round(n)) : n.toFixed(n < 10 ? 1 : 0)) + ' ' + units[i];
  }

  function age(ms) {
    if (ms < 0) ms = 0;
    if (ms < 60000) return (ms / 1000).toFixed(1) + ' s ago';
    if (ms < 3600000) return Math.floor(ms / 60000) + ' min ago';
    return Math.floor(ms / 3600000) + ' h ago';
  }

  const date = (s) => new Date(s).toLocaleString();

  // safeURL returns u if it is an http(s) URL, for links; anything else is shown, not linked.
  function safeURL(u) {
    try {
      const p = new URL(u);
      return p.protocol === 'http:' || p.protocol === 'https:' ? p.href : null;
    } catch (e) {
      return null;
    }
  }

  function edgeCell(e) {
    const url = safeURL(e.url);
    const name = url ? h('a', {href: url, rel: 'noopener noreferrer'}, e.name) : h('span', {}, e.name);
    return h('td', {},
      name,
      e.draining ? h('span', {}, ' ', h('span', {class: 'badge draining'}, 'draining')) : null,
      h('small', {title: e.node}, h('code', {}, e.node.slice(0, 8)), e.version ? ' · ' + e.version : ''));
  }

  function stateCell(e) {
    return h('td', {},
      h('span', {class: 'badge ' + e.state}, e.state),
      e.reason ? h('small', {}, e.reason) : null,
      h('small', {}, e.eligible ? 'gets visitors' : 'no visitors: ' + (e.excluded || 'excluded')));
  }

  function locationCell(e) {
    const l = e.location;
    if (!l) return h('td', {class: 'empty'}, 'unknown');
    const place = [l.country, l.continent].filter(Boolean).join(', ');
    return h('td', {}, place || '—', h('small', {class: 'num'}, l.lat.toFixed(2) + ', ' + l.lon.toFixed(2)));
  }

  function deployCell(e, current) {
    if (!e.deploy) return h('td', {class: 'empty'}, 'none yet');
    let badge;
    if (!e.current) badge = h('span', {class: 'badge old'}, current ? 'old' : 'no current');
    else if (e.synced) badge = h('span', {class: 'badge synced'}, 'current, synced');
    else badge = h('span', {class: 'badge syncing'}, 'current, syncing');
    let sites = null;
    if (e.sites) {
      const lagging = (e.lagging || []).length + (e.lagging_more || 0);
      sites = h('small', {title: e.sites_digest || ''}, e.sites + (e.sites === 1 ? ' site' : ' sites') +
        (lagging ? ', lagging: ' + (e.lagging || []).join(', ') + (e.lagging_more ? ' and ' + e.lagging_more + ' more' : '') : ', all current'));
    }
    return h('td', {}, h('code', {title: e.deploy}, shortID(e.deploy)), h('small', {}, badge), sites);
  }

  function loadCell(e) {
    const l = e.load;
    return h('td', {class: 'num'},
      l.rps.toFixed(1) + ' req/s',
      h('small', {}, 'CPU ' + Math.round(l.cpu * 100) + ' % · ' + bytes(l.bps) + '/s'),
      l.err5xx > 0 ? h('small', {class: 'bad'}, (l.err5xx * 100).toFixed(1) + ' % 5xx') : null);
  }

  function certCell(e, now) {
    if (!e.cert_expiry) return h('td', {class: 'empty'}, 'none (HTTP)');
    const left = (new Date(e.cert_expiry) - now) / 86400000;
    const cls = left < 0 ? 'bad' : left < 14 ? 'warn' : null;
    const note = left < 0 ? 'expired' : Math.floor(left) + ' days left';
    return h('td', {}, new Date(e.cert_expiry).toLocaleDateString(), h('small', {class: cls}, note));
  }

  function renderEdges(snap) {
    const now = new Date(snap.time);
    const rows = snap.edges.map((e) => h('tr', {'data-node': e.node, 'data-state': e.state},
      edgeCell(e), stateCell(e), locationCell(e), deployCell(e, snap.current_deploy), loadCell(e),
      h('td', {class: 'num'}, age(e.heartbeat_age_ms)), certCell(e, now)));
    byId('edges').tBodies[0].replaceChildren(...rows);
    byId('no-edges').hidden = snap.edges.length > 0;
  }

  function renderMap(snap) {
    const dots = [];
    for (const e of snap.edges) {
      if (!e.map) continue;
      const g = svg('g', {'data-node': e.node});
      const c = svg('circle', {cx: e.map.x, cy: e.map.y, r: 24, class: e.state});
      const title = svg('title', {});
      title.textContent = e.name + ': ' + e.state;
      c.append(title);
      // Labels of edges near the right edge of the map go to the left of their dot.
      const right = e.map.x > 2900;
      const label = svg('text', {x: right ? e.map.x - 34 : e.map.x + 34, y: e.map.y + 14, 'text-anchor': right ? 'end' : 'start'});
      label.textContent = e.name;
      g.append(c, label);
      dots.push(g);
    }
    // Dead edges first, so that a live edge at the same place is drawn on top.
    const rank = {dead: 0, suspect: 1, alive: 2};
    dots.sort((a, b) => rank[a.firstChild.getAttribute('class')] - rank[b.firstChild.getAttribute('class')]);
    byId('dots').replaceChildren(...dots);
  }

  function renderDeploys(snap) {
    const rows = snap.deploys.map((d) => {
      const serving = snap.edges.filter((e) => e.deploy === d.id && e.synced && e.state === 'alive').length;
      return h('tr', {'data-deploy': d.id, 'data-current': d.current ? 'true' : 'false'},
        h('td', {}, h('code', {title: d.id}, shortID(d.id)), ' ',
          d.current ? h('span', {class: 'badge current'}, 'current') : null),
        h('td', {}, d.read ? date(d.created) : 'reading…'),
        h('td', {class: 'num'}, d.read ? String(d.files) : ''),
        h('td', {class: 'num'}, d.read ? bytes(d.bytes) : ''),
        h('td', {class: 'num'}, serving + (serving === 1 ? ' edge' : ' edges')));
    });
    byId('deploys').tBodies[0].replaceChildren(...rows);
    byId('no-deploys').hidden = snap.deploys.length > 0;
  }

  // renderSites lists each site: its hosts, current deploy, the edges its visitors go to (by
  // name) and the deploys its current pointer named, newest first.
  function renderSites(snap) {
    const names = new Map(snap.edges.map((e) => [e.node, e.name]));
    const sites = snap.sites || [];
    const rows = sites.map((s) => h('tr', {'data-site': s.name, 'data-serving': String(s.serving.length)},
      h('td', {}, s.name),
      h('td', {}, s.implicit ? h('small', {}, 'every host no other site claims') : s.hosts.join(', ')),
      s.current_deploy ? h('td', {}, h('code', {title: s.current_deploy}, shortID(s.current_deploy)))
        : h('td', {class: 'empty'}, 'nothing published'),
      h('td', {}, s.serving.length ? s.serving.map((n) => names.get(n) || n.slice(0, 8)).join(', ') : h('span', {class: 'bad'}, 'no edge')),
      h('td', {}, ...s.history.map((id, i) => h('code', {title: id}, (i ? ' ' : '') + shortID(id))))));
    byId('sites').tBodies[0].replaceChildren(...rows);
    byId('no-sites').hidden = sites.length > 0;
  }

  // renderCerts lists every certificate: the names it covers, its issuer, its expiry (flagged
  // when it needs attention), the edges serving it and those lacking it, and its last error.
  function renderCerts(snap) {
    const names = new Map(snap.edges.map((e) => [e.node, e.name]));
    const edgeNames = (ids) => ids.map((n) => names.get(n) || n.slice(0, 8)).join(', ');
    const now = new Date(snap.time);
    const certs = snap.certs || [];
    const rows = certs.map((c) => {
      let expires;
      if (c.partial) {
        expires = h('td', {class: 'empty'}, 'record not held by the redirector');
      } else if (!c.not_after) {
        expires = h('td', {}, h('span', {class: 'bad'}, 'no valid certificate'));
      } else {
        const left = (new Date(c.not_after) - now) / 86400000;
        expires = h('td', {}, new Date(c.not_after).toLocaleDateString(),
          h('small', {class: c.warn ? 'warn' : null}, Math.floor(left) + ' days left'),
          c.overdue ? h('small', {class: 'bad'}, 'not renewed since ' + new Date(c.renew_after).toLocaleString()) : null);
      }
      return h('tr', {'data-cert': c.name, 'data-warn': c.warn ? 'true' : 'false', 'data-serving': String(c.serving.length)},
        h('td', {}, c.names.join(', '), h('small', {}, c.source === 'table' ? 'from the table' : 'an edge\'s own')),
        h('td', {}, c.issuer || ''),
        expires,
        h('td', {}, c.serving.length ? edgeNames(c.serving) : h('span', {class: 'bad'}, 'no edge'),
          c.lacking.length ? h('small', {class: 'bad'}, 'lacking: ' + edgeNames(c.lacking)) : null),
        c.error ? h('td', {class: 'bad'}, c.error, c.error_at ? h('small', {}, new Date(c.error_at).toLocaleString()) : null)
          : h('td', {class: 'empty'}, 'none'));
    });
    const down = byId('issuer-down');
    down.hidden = !(snap.issuer && snap.issuer.down);
    if (!down.hidden) {
      down.textContent = 'No issuer holds the lease since ' + new Date(snap.issuer.expires).toLocaleString() +
        ': certificates are not renewed until one does.';
    }
    byId('certs').tBodies[0].replaceChildren(...rows);
    byId('no-certs').hidden = certs.length > 0;
  }

  function renderSummary(snap) {
    const count = {alive: 0, suspect: 0, dead: 0};
    for (const e of snap.edges) count[e.state] = (count[e.state] || 0) + 1;
    const total = snap.edges.length;
    let text = total + (total === 1 ? ' edge: ' : ' edges: ') +
      count.alive + ' alive, ' + count.suspect + ' suspect, ' + count.dead + ' dead';
    text += snap.current_deploy ? ' · current deploy ' + shortID(snap.current_deploy) : ' · nothing published';
    byId('summary').textContent = text;
    document.title = 'dt: ' + count.alive + '/' + total + ' edges alive';
    const r = snap.redirector;
    byId('redirector').textContent = 'Redirector node ' + r.node.slice(0, 8) + ' · ' + r.peers +
      (r.peers === 1 ? ' peer' : ' peers') + ' · ' + r.objects + ' objects · updated ' +
      new Date(snap.time).toLocaleTimeString();
  }

  function render(snap) {
    renderSummary(snap);
    renderMap(snap);
    renderEdges(snap);
    renderSites(snap);
    renderCerts(snap);
    renderDeploys(snap);
  }

  function setConn(state) {
    const c = byId('conn');
    c.dataset.state = state;
    c.textContent = state;
  }

  function poll() {
    fetch('api/snapshot', {cache: 'no-store'})
      .then((r) => { if (!r.ok) throw new Error(r.statusText); return r.json(); })
      .then((snap) => { setConn('live'); render(snap); })
      .catch(() => setConn('reconnecting'))
      .finally(() => setTimeout(poll, 2000));
  }

  function connect() {
    if (!window.EventSource) {
      poll();
      return;
    }
    // EventSource reconnects by itself after the server's "retry" delay.
    const es = new EventSource('api/events');
    es.addEventListener('snapshot', (ev) => {
      setConn('live');
      render(JSON.parse(ev.data));
    });
    es.addEventListener('error', () => setConn('reconnecting'));
  }

  connect();
})();
