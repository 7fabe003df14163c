// The shmq management UI: a client of the management HTTP API and nothing
// else. Every figure shown comes from a poll of /api/...; credentials are
// kept in this tab's sessionStorage and sent as HTTP basic auth. Plain
// JavaScript, no build step, no library: the page loads its own three files
// only (the server's Content-Security-Policy allows nothing else).
'use strict';

(function () {
  // ---------------------------------------------------------------- helpers

  const $ = (selector, root) => (root || document).querySelector(selector);

  /** Builds an element: h('td', {class: 'num', onclick: f}, child, ...).
   * Children are nodes, strings (as text: never parsed as HTML), numbers,
   * arrays of children, or null/undefined/false (skipped). */
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key.startsWith('on')) el.addEventListener(key.slice(2), value);
      else if (key === 'class') el.className = value;
      else if (key === 'text') el.textContent = value;
      else if (key === 'value') el.value = value;
      else if (key === 'checked' || key === 'selected' || key === 'disabled') el[key] = !!value;
      else el.setAttribute(key, value === true ? '' : String(value));
    }
    append(el, children);
    return el;
  }

  function append(el, children) {
    for (const child of children) {
      if (child === null || child === undefined || child === false) continue;
      if (Array.isArray(child)) append(el, child);
      else el.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
    }
  }

  function replace(el, ...children) {
    el.textContent = '';
    append(el, children);
  }

  const enc = encodeURIComponent;
  const num = new Intl.NumberFormat('en-US');

  function fmtNum(n) {
    return typeof n === 'number' ? num.format(n) : '-';
  }

  function fmtRate(r) {
    if (typeof r !== 'number') return '-';
    return (Math.abs(r) >= 100 ? num.format(Math.round(r)) : r.toFixed(1)) + '/s';
  }

  function fmtBytes(b) {
    if (typeof b !== 'number') return '-';
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    while (b >= 1024 && i < units.length - 1) { b /= 1024; i++; }
    return (i === 0 ? b : b.toFixed(1)) + ' ' + units[i];
  }

  /** A value at a dotted path (`message_stats.publish_details.rate`). */
  function at(obj, path) {
    return path.split('.').reduce((o, k) => (o === null || o === undefined ? undefined : o[k]), obj);
  }

  function rate(obj, stat) {
    return at(obj, 'message_stats.' + stat + '_details.rate');
  }

  /** How the UI names an exchange in text, and in a path. */
  const exchangeLabel = (name) => (name === '' ? '(AMQP default)' : name);
  const exchangePath = (name) => (name === '' ? 'amq.default' : name);

  function queueLink(vhost, name) {
    return h('a', {href: '#/queues/' + enc(vhost) + '/' + enc(name)}, name);
  }

  function exchangeLink(vhost, name) {
    return h('a', {href: '#/exchanges/' + enc(vhost) + '/' + enc(exchangePath(name))}, exchangeLabel(name));
  }

  function stateCell(state) {
    return h('td', {class: 'state-' + String(state).replace(/[^a-z]/g, '')}, state);
  }

  function argsText(args) {
    const keys = Object.keys(args || {});
    return keys.length ? keys.map((k) => k + ': ' + JSON.stringify(args[k])).join(', ') : '';
  }

  /** RabbitMQ's feature tags for a queue: D, AD, Excl, and its arguments. */
  function queueFeatures(q) {
    const tags = [];
    const tag = (text, title) => tags.push(h('span', {class: 'tag', title: title}, text));
    if (q.durable) tag('D', 'durable: true');
    if (q.auto_delete) tag('AD', 'auto_delete: true');
    if (q.exclusive) tag('Excl', 'exclusive: true');
    const short = {
      'x-message-ttl': 'TTL', 'x-expires': 'Exp', 'x-max-length': 'Lim', 'x-max-length-bytes': 'Lim B',
      'x-overflow': 'Ovfl', 'x-dead-letter-exchange': 'DLX', 'x-dead-letter-routing-key': 'DLK',
      'x-max-priority': 'Pri', 'x-single-active-consumer': 'SAC', 'x-delivery-limit': 'DLim',
    };
    for (const [key, value] of Object.entries(q.arguments || {})) {
      if (key === 'x-queue-type') continue;
      tag(short[key] || key, key + ': ' + JSON.stringify(value));
    }
    return tags;
  }

  function exchangeFeatures(x) {
    const tags = [];
    if (x.durable) tags.push(h('span', {class: 'tag', title: 'durable: true'}, 'D'));
    if (x.auto_delete) tags.push(h('span', {class: 'tag', title: 'auto_delete: true'}, 'AD'));
    if (x.internal) tags.push(h('span', {class: 'tag', title: 'internal: true'}, 'I'));
    const ae = at(x, 'arguments.alternate-exchange');
    if (ae) tags.push(h('span', {class: 'tag', title: 'alternate-exchange: ' + ae}, 'AE'));
    return tags;
  }

  // ---------------------------------------------------------------- the API

  const store = window.sessionStorage;
  const AUTH_KEY = 'shmq-auth';

  class ApiError extends Error {
    constructor(status, reason) {
      super(reason);
      this.status = status;
    }
  }

  function basic(user, password) {
    const bytes = new TextEncoder().encode(user + ':' + password);
    let binary = '';
    bytes.forEach((b) => { binary += String.fromCharCode(b); });
    return btoa(binary);
  }

  /** One API request; the parsed JSON answer (null if none). Throws an
   * ApiError with RabbitMQ's `reason` on a non-2xx answer; a 401 after
   * login logs out. */
  async function api(method, path, body, auth) {
    const headers = {
      'Authorization': 'Basic ' + (auth || store.getItem(AUTH_KEY) || ''),
      // Asks the server for no WWW-Authenticate challenge: a wrong password
      // shows this page's error, not the browser's password dialog.
      'X-Requested-With': 'XMLHttpRequest',
    };
    const init = {method: method, headers: headers, cache: 'no-store', credentials: 'omit'};
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(path, init);
    } catch (e) {
      throw new ApiError(0, 'the server does not answer (' + e.message + ')');
    }
    const text = await response.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
    if (!response.ok) {
      let reason = data && data.reason !== undefined ? data.reason : response.statusText;
      if (typeof reason !== 'string') reason = JSON.stringify(reason);
      if (response.status === 401 && !auth) logout(reason || 'Login failed');
      throw new ApiError(response.status, reason || ('HTTP ' + response.status));
    }
    return data;
  }

  // ---------------------------------------------------------------- state

  const state = {
    user: null,
    vhosts: [],
    page: null, // the mounted page: {update(), destroy?()}
    generation: 0, // bumped at each navigation: late answers are dropped
    timer: null,
    histories: new Map(), // chart samples by key, kept across pages
  };

  function vhost() {
    return store.getItem('shmq-vhost') || '';
  }

  /** `/api/{what}` or `/api/{what}/{vhost}` for the selected vhost. */
  function scoped(what) {
    return vhost() ? 'api/' + what + '/' + enc(vhost()) : 'api/' + what;
  }

  function refreshSeconds() {
    const s = store.getItem('shmq-refresh');
    return s === null ? 5 : Number(s);
  }

  function showStatus(text) {
    const el = $('#status');
    el.textContent = text || '';
    el.hidden = !text;
  }

  // ---------------------------------------------------------------- charts

  const MAX_SAMPLES = 120;

  /** A line chart of polled samples on a canvas, with a legend that shows
   * the latest values. series: [{key, label}], format: value -> text. */
  function chart(title, historyKey, series, format) {
    if (!state.histories.has(historyKey)) state.histories.set(historyKey, []);
    const samples = state.histories.get(historyKey);
    const canvas = h('canvas', {width: 600, height: 150, 'aria-label': title});
    const latest = series.map(() => h('b', {}, '-'));
    const legend = h('div', {class: 'legend'}, series.map((s, i) =>
      h('div', {'data-series': s.key}, h('i', {class: 'c' + i}), s.label, latest[i])));
    const el = h('div', {class: 'chart'}, h('h3', {}, title), h('div', {class: 'chart-body'}, canvas, legend));
    const colors = ['#e8a33b', '#3b7de8', '#1f9e6e', '#b0439a', '#777'];

    function draw() {
      const width = canvas.clientWidth;
      const height = canvas.clientHeight;
      if (!width || !height) return;
      const ratio = window.devicePixelRatio || 1;
      canvas.width = Math.round(width * ratio);
      canvas.height = Math.round(height * ratio);
      const g = canvas.getContext('2d');
      g.setTransform(ratio, 0, 0, ratio, 0, 0);
      g.clearRect(0, 0, width, height);
      const left = 52, bottom = height - 18, top = 6, right = width - 6;
      let max = 0, min = 0;
      for (const s of samples) {
        for (const k of series) {
          const v = s.values[k.key];
          if (typeof v === 'number') { max = Math.max(max, v); min = Math.min(min, v); }
        }
      }
      const nice = (v) => {
        if (v <= 0) return 0;
        const p = Math.pow(10, Math.floor(Math.log10(v)));
        for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
        return 10 * p;
      };
      max = nice(max) || 1;
      min = min < 0 ? -nice(-min) : 0;
      const y = (v) => bottom - ((v - min) / (max - min)) * (bottom - top);
      g.font = '11px system-ui, sans-serif';
      g.fillStyle = '#66716e';
      g.strokeStyle = '#e3e7e6';
      g.lineWidth = 1;
      g.textAlign = 'right';
      g.textBaseline = 'middle';
      for (let i = 0; i <= 4; i++) {
        const v = min + ((max - min) * i) / 4;
        const yy = Math.round(y(v)) + 0.5;
        g.beginPath(); g.moveTo(left, yy); g.lineTo(right, yy); g.stroke();
        g.fillText(format(v, true), left - 4, yy);
      }
      const now = Date.now();
      const span = Math.max(60000, samples.length ? now - samples[0].t : 0);
      const x = (t) => right - ((now - t) / span) * (right - left);
      g.textAlign = 'center';
      g.textBaseline = 'top';
      for (let i = 0; i <= 4; i++) {
        const ago = (span * i) / 4;
        const text = i === 0 ? 'now' : '-' + Math.round(ago / 1000) + ' s';
        g.fillText(text, Math.max(left + 14, Math.min(right - 14, x(now - ago))), bottom + 4);
      }
      series.forEach((s, i) => {
        g.strokeStyle = colors[i % colors.length];
        g.lineWidth = 2;
        g.beginPath();
        let started = false;
        for (const sample of samples) {
          const v = sample.values[s.key];
          if (typeof v !== 'number') { started = false; continue; }
          const px = x(sample.t), py = y(v);
          if (started) g.lineTo(px, py); else g.moveTo(px, py);
          started = true;
        }
        g.stroke();
        const last = samples[samples.length - 1];
        if (last && typeof last.values[s.key] === 'number') {
          g.fillStyle = colors[i % colors.length];
          g.beginPath();
          g.arc(x(last.t), y(last.values[s.key]), 2.5, 0, 2 * Math.PI);
          g.fill();
        }
      });
    }

    return {
      el: el,
      /** Adds a sample (an object with the series' keys) and redraws. */
      push(values) {
        samples.push({t: Date.now(), values: values});
        while (samples.length > MAX_SAMPLES) samples.shift();
        series.forEach((s, i) => { latest[i].textContent = format(values[s.key]); });
        draw();
      },
      draw: draw,
    };
  }

  const depthSeries = [
    {key: 'ready', label: 'Ready'},
    {key: 'unacked', label: 'Unacked'},
    {key: 'total', label: 'Total'},
  ];
  const rateSeries = [
    {key: 'publish', label: 'Publish'},
    {key: 'deliver_get', label: 'Deliver / get'},
    {key: 'ack', label: 'Ack'},
    {key: 'redeliver', label: 'Redelivered'},
  ];

  function depthSample(obj) {
    return {ready: obj.messages_ready, unacked: obj.messages_unacknowledged, total: obj.messages};
  }

  function rateSample(obj) {
    const out = {};
    for (const s of rateSeries) out[s.key] = rate(obj, s.key) || 0;
    return out;
  }

  const countFormat = (v, axis) => (axis && v >= 10000 ? num.format(v / 1000) + 'k' : fmtNum(axis ? Math.round(v) : v));
  const rateFormat = (v, axis) => (axis ? num.format(Number(v.toFixed(2))) + '/s' : fmtRate(v));

  // ---------------------------------------------------------------- tables

  /** A table whose rows come from a page of the API's paged queries
   * (`?page=&page_size=&name=&sort=&sort_reverse=`), as RabbitMQ's UI
   * lists queues: only one page of rows is ever fetched and drawn, so ten
   * thousand queues cost one page. columns: [{label, sort?, num?,
   * cell(item) -> node or text}]. */
  function pagedTable(id, what, columns, options) {
    const saved = JSON.parse(store.getItem('shmq-table-' + id) || '{}');
    const view = Object.assign({page: 1, pageSize: 100, filter: '', sort: options.sort || 'name', reverse: false}, saved);
    const save = () => store.setItem('shmq-table-' + id, JSON.stringify(view));
    const tbody = h('tbody');
    const info = h('span', {id: id + '-page-info', class: 'muted'});
    const pageLabel = h('span', {id: id + '-page'});
    let pageCount = 1;
    let reload = () => {};
    const go = (page) => { view.page = Math.max(1, Math.min(page, pageCount)); save(); reload(); };
    const heads = columns.map((c) => {
      const th = h('th', {class: (c.num ? 'num ' : '') + (c.sort ? 'sortable' : ''), 'data-sort': c.sort || null}, c.label);
      if (c.sort) {
        th.addEventListener('click', () => {
          if (view.sort === c.sort) view.reverse = !view.reverse;
          else { view.sort = c.sort; view.reverse = !!c.num; }
          save();
          markSorted();
          reload();
        });
      }
      return th;
    });
    function markSorted() {
      heads.forEach((th, i) => {
        const sorted = columns[i].sort && columns[i].sort === view.sort;
        th.classList.toggle('sorted', !!sorted);
        th.classList.toggle('reverse', !!(sorted && view.reverse));
      });
    }
    markSorted();
    let debounce = null;
    const filter = h('input', {
      type: 'search', id: id + '-filter', placeholder: 'Filter by name', value: view.filter,
      oninput: () => {
        clearTimeout(debounce);
        debounce = setTimeout(() => { view.filter = filter.value; view.page = 1; save(); reload(); }, 250);
      },
    });
    const size = h('select', {id: id + '-page-size', onchange: () => { view.pageSize = Number(size.value); view.page = 1; save(); reload(); }},
      [20, 50, 100, 500].map((n) => h('option', {value: n, selected: n === view.pageSize}, n + ' per page')));
    const buttons = {
      first: h('button', {type: 'button', class: 'secondary first', title: 'First page', onclick: () => go(1)}, '«'),
      prev: h('button', {type: 'button', class: 'secondary prev', title: 'Previous page', onclick: () => go(view.page - 1)}, '‹'),
      next: h('button', {type: 'button', class: 'secondary next', title: 'Next page', onclick: () => go(view.page + 1)}, '›'),
      last: h('button', {type: 'button', class: 'secondary last', title: 'Last page', onclick: () => go(pageCount)}, '»'),
    };
    const el = h('div', {class: 'paged', id: id},
      h('div', {class: 'toolbar'}, filter, size,
        h('div', {class: 'pager'}, buttons.first, buttons.prev, pageLabel, buttons.next, buttons.last), info),
      h('div', {class: 'table-wrap'}, h('table', {class: 'list', id: id + '-table'}, h('thead', {}, h('tr', {}, heads)), tbody)));

    async function update() {
      const query = new URLSearchParams({
        page: view.page, page_size: view.pageSize, name: view.filter, sort: view.sort,
        sort_reverse: view.reverse ? 'true' : 'false',
      });
      if (options.columns) query.set('columns', options.columns);
      let result;
      try {
        result = await api('GET', scoped(what) + '?' + query);
      } catch (e) {
        if (e.status === 400 && view.page > 1) { view.page = 1; save(); return update(); }
        throw e;
      }
      pageCount = Math.max(1, result.page_count);
      replace(pageLabel, 'Page ' + result.page + ' of ' + pageCount);
      buttons.first.disabled = buttons.prev.disabled = result.page <= 1;
      buttons.next.disabled = buttons.last.disabled = result.page >= pageCount;
      const filtered = result.filtered_count !== result.total_count ? ' (' + fmtNum(result.filtered_count) + ' match the filter)' : '';
      replace(info, 'Showing ' + fmtNum(result.item_count) + ' of ' + fmtNum(result.total_count) + ' ' + what + filtered);
      replace(tbody, result.items.length
        ? result.items.map((item) => h('tr', {}, columns.map((c) => {
          const value = c.cell(item);
          return value instanceof Node && value.nodeName === 'TD' ? value : h('td', {class: c.num ? 'num' : null}, value);
        })))
        : h('tr', {}, h('td', {class: 'empty', colspan: columns.length}, view.filter ? 'Nothing matches the filter.' : 'None.')));
    }
    reload = () => update().catch((e) => showStatus(e.message));
    return {el: el, update: update};
  }

  /** A table of a whole list the API returns at once, filtered and paged
   * here (bindings, peers, shovels): only one page of rows is drawn. */
  function localTable(id, columns, textOf) {
    const view = {page: 1, pageSize: 100, filter: ''};
    let items = [];
    const tbody = h('tbody');
    const info = h('span', {id: id + '-page-info', class: 'muted'});
    const pageLabel = h('span', {id: id + '-page'});
    const pages = () => Math.max(1, Math.ceil(filtered().length / view.pageSize));
    const go = (page) => { view.page = Math.max(1, Math.min(page, pages())); draw(); };
    const filtered = () => (view.filter ? items.filter((i) => textOf(i).toLowerCase().includes(view.filter.toLowerCase())) : items);
    const filter = h('input', {type: 'search', id: id + '-filter', placeholder: 'Filter',
      oninput: () => { view.filter = filter.value; view.page = 1; draw(); }});
    const prev = h('button', {type: 'button', class: 'secondary prev', onclick: () => go(view.page - 1)}, '‹');
    const next = h('button', {type: 'button', class: 'secondary next', onclick: () => go(view.page + 1)}, '›');
    const el = h('div', {class: 'paged', id: id},
      h('div', {class: 'toolbar'}, filter, h('div', {class: 'pager'}, prev, pageLabel, next), info),
      h('div', {class: 'table-wrap'}, h('table', {class: 'list', id: id + '-table'},
        h('thead', {}, h('tr', {}, columns.map((c) => h('th', {class: c.num ? 'num' : null}, c.label)))), tbody)));

    function draw() {
      const shown = filtered();
      view.page = Math.min(view.page, pages());
      const rows = shown.slice((view.page - 1) * view.pageSize, view.page * view.pageSize);
      replace(pageLabel, 'Page ' + view.page + ' of ' + pages());
      prev.disabled = view.page <= 1;
      next.disabled = view.page >= pages();
      replace(info, 'Showing ' + fmtNum(rows.length) + ' of ' + fmtNum(items.length) +
        (view.filter ? ' (' + fmtNum(shown.length) + ' match the filter)' : ''));
      replace(tbody, rows.length
        ? rows.map((item) => h('tr', {}, columns.map((c) => {
          const value = c.cell(item);
          return value instanceof Node && value.nodeName === 'TD' ? value : h('td', {class: c.num ? 'num' : null}, value);
        })))
        : h('tr', {}, h('td', {class: 'empty', colspan: columns.length}, view.filter ? 'Nothing matches the filter.' : 'None.')));
    }
    return {el: el, set(list) { items = list; draw(); }};
  }

  // ---------------------------------------------------------------- forms

  function field(label, input, id) {
    if (id) input.id = id;
    return [h('label', {for: input.id || null}, label), input];
  }

  function select(id, options, value) {
    return h('select', {id: id || null}, options.map(([v, text]) => h('option', {value: v, selected: v === value}, text)));
  }

  /** Key/value rows that grow by one when the last is used. typed: a type
   * select per row (String/Number/Boolean), as RabbitMQ's headers. */
  function kvRows(id, typed, keyChoices) {
    const list = h('div', {class: 'rows', id: id});
    function row() {
      const key = keyChoices
        ? h('select', {class: 'key'}, h('option', {value: ''}, ''), keyChoices.map((k) => h('option', {value: k}, k)))
        : h('input', {class: 'key', placeholder: 'key'});
      const value = h('input', {class: 'value', placeholder: 'value'});
      const type = typed ? select('', [['string', 'String'], ['number', 'Number'], ['boolean', 'Boolean']], 'string') : null;
      if (type) type.className = 'type';
      const grow = () => { if (list.lastChild === r && (key.value || value.value)) list.appendChild(row()); };
      key.addEventListener('input', grow);
      key.addEventListener('change', grow);
      value.addEventListener('input', grow);
      const r = h('div', {class: 'kv-row'}, key, value, type);
      return r;
    }
    list.appendChild(row());
    return {
      el: list,
      /** The rows as an object; throws on a bad number or boolean. */
      value() {
        const out = {};
        for (const r of list.children) {
          const k = $('.key', r).value.trim();
          const raw = $('.value', r).value;
          if (!k) continue;
          const type = typed ? $('.type', r).value : 'string';
          if (type === 'number') {
            const n = Number(raw);
            if (raw.trim() === '' || !Number.isFinite(n)) throw new Error('header ' + k + ': ' + JSON.stringify(raw) + ' is no number');
            out[k] = n;
          } else if (type === 'boolean') {
            if (raw !== 'true' && raw !== 'false') throw new Error('header ' + k + ': use true or false');
            out[k] = raw === 'true';
          } else {
            out[k] = raw;
          }
        }
        return out;
      },
      clear() { list.textContent = ''; list.appendChild(row()); },
    };
  }

  const PROPERTY_NAMES = ['content_type', 'content_encoding', 'priority', 'correlation_id', 'reply_to', 'expiration',
    'message_id', 'timestamp', 'type', 'user_id', 'app_id'];

  /** The publish form of a queue page (the default exchange, routed by the
   * queue's name) or an exchange page. */
  function publishForm(vh, exchange, fixedKey) {
    const result = h('span', {class: 'result', id: 'publish-result', role: 'status'});
    const key = h('input', {id: 'publish-routing-key', value: fixedKey || ''});
    if (fixedKey !== undefined) key.readOnly = true;
    const mode = select('publish-delivery-mode', [['1', '1 - Non-persistent'], ['2', '2 - Persistent']], '1');
    const headers = kvRows('publish-headers', true);
    const props = kvRows('publish-properties', false, PROPERTY_NAMES);
    const payload = h('textarea', {id: 'publish-payload'});
    const encoding = select('publish-encoding', [['string', 'String'], ['base64', 'Base64']], 'string');
    async function publish(event) {
      event.preventDefault();
      replace(result);
      result.className = 'result';
      let body;
      try {
        const properties = {delivery_mode: Number(mode.value)};
        const given = headers.value();
        if (Object.keys(given).length) properties.headers = given;
        for (const [k, v] of Object.entries(props.value())) {
          properties[k] = k === 'priority' || k === 'timestamp' ? Number(v) : v;
        }
        body = {properties: properties, routing_key: key.value, payload: payload.value, payload_encoding: encoding.value};
      } catch (e) {
        result.classList.add('error');
        replace(result, e.message);
        return;
      }
      try {
        const answer = await api('POST', 'api/exchanges/' + enc(vh) + '/' + enc(exchangePath(exchange)) + '/publish', body);
        result.classList.add(answer.routed ? 'ok' : 'error');
        replace(result, answer.routed ? 'Message published.' : 'Message published, but not routed.');
      } catch (e) {
        result.classList.add('error');
        replace(result, 'Not published: ' + e.message);
      }
    }
    return h('form', {class: 'form', id: 'publish-form', onsubmit: publish},
      field('Routing key', key), field('Delivery mode', mode),
      field('Headers', headers.el), field('Properties', props.el),
      field('Payload', payload), field('Payload encoding', encoding),
      h('div', {class: 'full actions'}, h('button', {type: 'submit', id: 'publish-submit'}, 'Publish message'), result));
  }

  /** A header value as RabbitMQ's UI shows it: tables as nested tables. */
  function headerValue(v) {
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) return headersTable(v);
    if (Array.isArray(v)) return h('span', {}, '[' + v.map((x) => (typeof x === 'object' ? JSON.stringify(x) : String(x))).join(', ') + ']');
    return v === null ? 'null' : String(v);
  }

  function headersTable(obj) {
    return h('table', {class: 'headers'}, Object.entries(obj).map(([k, v]) => h('tr', {}, h('td', {class: 'mono'}, k), h('td', {}, headerValue(v)))));
  }

  /** One message of `POST .../get`. */
  function messageView(m, index) {
    const props = Array.isArray(m.properties) ? {} : m.properties; // RabbitMQ's empty properties are []
    const rows = Object.entries(props).filter(([k]) => k !== 'headers')
      .map(([k, v]) => h('tr', {}, h('th', {}, k), h('td', {class: 'prop-' + k}, String(v))));
    if (props.headers) rows.push(h('tr', {}, h('th', {}, 'headers'), h('td', {class: 'prop-headers'}, headersTable(props.headers))));
    return h('div', {class: 'message'},
      h('h4', {}, 'Message ' + (index + 1)),
      h('p', {class: 'muted'}, 'The server reported ' + fmtNum(m.message_count) + ' messages remaining.'),
      h('table', {class: 'facts'},
        h('tr', {}, h('th', {}, 'Exchange'), h('td', {}, exchangeLabel(m.exchange))),
        h('tr', {}, h('th', {}, 'Routing key'), h('td', {}, m.routing_key)),
        h('tr', {}, h('th', {}, 'Redelivered'), h('td', {}, String(m.redelivered))),
        h('tr', {}, h('th', {}, 'Properties'), h('td', {}, rows.length ? h('table', {class: 'facts'}, rows) : h('span', {class: 'muted'}, 'none'))),
        h('tr', {}, h('th', {}, 'Payload'), h('td', {}, fmtNum(m.payload_bytes) + ' bytes, encoding: ' + m.payload_encoding))),
      h('pre', {class: 'payload'}, m.payload));
  }

  function section(title, open, ...children) {
    return h('details', {class: 'section', open: open}, h('summary', {}, title), children);
  }

  function facts(rows) {
    return h('table', {class: 'facts'}, rows.map(([k, v]) => h('tr', {}, h('th', {}, k), h('td', {}, v))));
  }

  // ---------------------------------------------------------------- pages

  function overviewPage(main) {
    const depth = chart('Queued messages', 'overview-depth', depthSeries, countFormat);
    const rates = chart('Message rates', 'overview-rates', rateSeries, rateFormat);
    const counts = h('div', {class: 'counts', id: 'object-totals'});
    const node = h('div', {id: 'node-facts'});
    const vhosts = h('tbody');
    replace(main,
      h('h1', {}, 'Overview'),
      h('h2', {}, 'Totals'),
      h('div', {class: 'charts'}, depth.el, rates.el),
      h('h2', {}, 'Global counts'), counts,
      h('h2', {}, 'Virtual hosts (namespaces)'),
      h('div', {class: 'table-wrap'}, h('table', {class: 'list', id: 'vhosts-table'},
        h('thead', {}, h('tr', {}, ['Name', 'Namespace', 'Ready', 'Unacked', 'Total', 'Publish', 'Deliver / get']
          .map((t, i) => h('th', {class: i >= 2 ? 'num' : null}, t)))), vhosts)),
      h('h2', {}, 'Node'), node);
    return {
      async update() {
        const [o, vs] = await Promise.all([api('GET', 'api/overview'), api('GET', 'api/vhosts')]);
        const totals = o.queue_totals || {};
        depth.push(depthSample(totals));
        rates.push(rateSample(o));
        const count = (id, label, value) => h('div', {class: 'count', id: id}, h('b', {}, fmtNum(value)), h('span', {}, label));
        replace(counts,
          count('totals-ready', 'Ready', totals.messages_ready),
          count('totals-unacked', 'Unacked', totals.messages_unacknowledged),
          count('totals-messages', 'Total messages', totals.messages),
          count('totals-connections', 'Connections (processes)', o.object_totals.connections),
          count('totals-exchanges', 'Exchanges', o.object_totals.exchanges),
          count('totals-queues', 'Queues', o.object_totals.queues),
          count('totals-consumers', 'Consumers', o.object_totals.consumers));
        replace(vhosts, vs.map((v) => h('tr', {},
          h('td', {}, v.name), h('td', {class: 'mono'}, v.description),
          h('td', {class: 'num'}, fmtNum(v.messages_ready)), h('td', {class: 'num'}, fmtNum(v.messages_unacknowledged)),
          h('td', {class: 'num'}, fmtNum(v.messages)),
          h('td', {class: 'num'}, fmtRate(rate(v, 'publish'))), h('td', {class: 'num'}, fmtRate(rate(v, 'deliver_get'))))));
        replace(node, facts([
          ['Node', o.node],
          ['Product', o.product_name + ' ' + o.product_version],
          ['Management API level', 'RabbitMQ ' + o.management_version],
          ['Listeners', (o.listeners || []).map((l) => l.protocol + ' ' + l.ip_address + ':' + l.port).join(', ')],
          ['Unroutable dropped', fmtNum(at(o, 'message_stats.drop_unroutable')) + ' (' + fmtRate(rate(o, 'drop_unroutable')) + ')'],
        ]));
      },
    };
  }

  const QUEUE_COLUMNS = 'name,vhost,type,durable,auto_delete,exclusive,arguments,state,consumers,messages,messages_ready,' +
    'messages_unacknowledged,message_stats.publish_details.rate,message_stats.deliver_get_details.rate,message_stats.ack_details.rate';

  function queuesPage(main) {
    const table = pagedTable('queues', 'queues', [
      {label: 'Virtual host', sort: 'vhost', cell: (q) => q.vhost},
      {label: 'Name', sort: 'name', cell: (q) => queueLink(q.vhost, q.name)},
      {label: 'Type', cell: (q) => q.type},
      {label: 'Features', cell: (q) => queueFeatures(q)},
      {label: 'State', cell: (q) => stateCell(q.state)},
      {label: 'Consumers', sort: 'consumers', num: true, cell: (q) => fmtNum(q.consumers)},
      {label: 'Ready', sort: 'messages_ready', num: true, cell: (q) => fmtNum(q.messages_ready)},
      {label: 'Unacked', sort: 'messages_unacknowledged', num: true, cell: (q) => fmtNum(q.messages_unacknowledged)},
      {label: 'Total', sort: 'messages', num: true, cell: (q) => fmtNum(q.messages)},
      {label: 'Incoming', sort: 'message_stats.publish_details.rate', num: true, cell: (q) => fmtRate(rate(q, 'publish') || 0)},
      {label: 'Deliver / get', sort: 'message_stats.deliver_get_details.rate', num: true, cell: (q) => fmtRate(rate(q, 'deliver_get') || 0)},
      {label: 'Ack', sort: 'message_stats.ack_details.rate', num: true, cell: (q) => fmtRate(rate(q, 'ack') || 0)},
    ], {columns: QUEUE_COLUMNS});
    const name = h('input', {id: 'new-queue-name', required: true});
    const vh = vhostChoice('new-queue-vhost');
    const durable = select('new-queue-durable', [['true', 'Durable'], ['false', 'Transient']], 'true');
    const autoDelete = select('new-queue-auto-delete', [['false', 'No'], ['true', 'Yes']], 'false');
    const args = kvRows('new-queue-arguments', true);
    const result = h('span', {class: 'result', role: 'status'});
    async function add(event) {
      event.preventDefault();
      try {
        await api('PUT', 'api/queues/' + enc(vh.value) + '/' + enc(name.value),
          {durable: durable.value === 'true', auto_delete: autoDelete.value === 'true', arguments: args.value()});
        result.className = 'result ok';
        replace(result, 'Queue ' + name.value + ' declared.');
        name.value = '';
        args.clear();
        await table.update();
      } catch (e) {
        result.className = 'result error';
        replace(result, e.message);
      }
    }
    replace(main, h('h1', {}, 'Queues'), table.el,
      section('Add a new queue', false, h('form', {class: 'form', onsubmit: add},
        field('Virtual host', vh), field('Name', name), field('Durability', durable), field('Auto delete', autoDelete),
        field('Arguments', args.el),
        h('div', {class: 'full actions'}, h('button', {type: 'submit'}, 'Add queue'), result))));
    return {update: table.update};
  }

  function vhostChoice(id) {
    const names = state.vhosts.map((v) => v.name);
    return select(id, names.map((n) => [n, n]), vhost() || names[0]);
  }

  function queuePage(main, vh, name) {
    const base = 'api/queues/' + enc(vh) + '/' + enc(name);
    const key = 'q\0' + vh + '\0' + name;
    const depth = chart('Queued messages', key + '\0depth', depthSeries, countFormat);
    const rates = chart('Message rates', key + '\0rates', rateSeries, rateFormat);
    const details = h('div', {id: 'queue-details'});
    const consumers = h('tbody');
    const bindings = h('tbody');
    const getResults = h('div', {id: 'get-results'});
    const ackmode = select('get-ackmode', [
      ['ack_requeue_true', 'Nack message requeue true'], ['ack_requeue_false', 'Automatic ack'],
      ['reject_requeue_true', 'Reject requeue true'], ['reject_requeue_false', 'Reject requeue false'],
    ], 'ack_requeue_true');
    const encoding = select('get-encoding', [['auto', 'Automatic string/base64'], ['base64', 'Base64']], 'auto');
    const count = h('input', {id: 'get-count', type: 'number', min: 1, max: 10000, value: 1});
    const truncate = h('input', {id: 'get-truncate', type: 'number', min: 1, value: 50000});
    async function getMessages(event) {
      event.preventDefault();
      replace(getResults);
      try {
        const messages = await api('POST', base + '/get',
          {count: Number(count.value), ackmode: ackmode.value, encoding: encoding.value, truncate: Number(truncate.value)});
        replace(getResults, messages.length ? messages.map(messageView) : h('p', {class: 'muted', id: 'get-empty'}, 'Queue is empty.'));
      } catch (e) {
        replace(getResults, h('p', {class: 'error'}, e.message));
      }
    }
    const actionResult = h('span', {class: 'result', id: 'queue-action-result', role: 'status'});
    async function purge() {
      if (!window.confirm('Purge all ready messages of queue ' + name + '?')) return;
      try {
        await api('DELETE', base + '/contents');
        actionResult.className = 'result ok';
        replace(actionResult, 'Queue ' + name + ' purged.');
        await page.update();
      } catch (e) {
        actionResult.className = 'result error';
        replace(actionResult, e.message);
      }
    }
    const ifUnused = h('input', {type: 'checkbox', id: 'delete-if-unused'});
    const ifEmpty = h('input', {type: 'checkbox', id: 'delete-if-empty'});
    async function remove() {
      if (!window.confirm('Delete queue ' + name + '?')) return;
      const query = new URLSearchParams();
      if (ifUnused.checked) query.set('if-unused', 'true');
      if (ifEmpty.checked) query.set('if-empty', 'true');
      try {
        await api('DELETE', base + (query.toString() ? '?' + query : ''));
        location.hash = '#/queues';
      } catch (e) {
        actionResult.className = 'result error';
        replace(actionResult, e.message);
      }
    }
    const bindFrom = h('input', {id: 'bind-source'});
    const bindKey = h('input', {id: 'bind-key'});
    const bindResult = h('span', {class: 'result', role: 'status'});
    async function bind(event) {
      event.preventDefault();
      try {
        await api('POST', 'api/bindings/' + enc(vh) + '/e/' + enc(bindFrom.value) + '/q/' + enc(name), {routing_key: bindKey.value, arguments: {}});
        bindResult.className = 'result ok';
        replace(bindResult, 'Bound.');
        await page.update();
      } catch (e) {
        bindResult.className = 'result error';
        replace(bindResult, e.message);
      }
    }
    replace(main,
      h('h1', {}, 'Queue ', h('span', {id: 'queue-name'}, name), h('span', {class: 'muted'}, ' in virtual host ' + vh)),
      h('div', {class: 'charts'}, depth.el, rates.el),
      h('h2', {}, 'Details'), details,
      h('h2', {}, 'Consumers'),
      h('div', {class: 'table-wrap'}, h('table', {class: 'list', id: 'consumers-table'}, h('thead', {}, h('tr', {},
        ['Consumer tag', 'Process', 'Prefetch', 'Active', 'Activity', 'Unacked', 'Delivered', 'Acked'].map((t, i) =>
          h('th', {class: i === 2 || i >= 5 ? 'num' : null}, t)))), consumers)),
      h('h2', {}, 'Bindings'),
      h('div', {class: 'table-wrap'}, h('table', {class: 'list', id: 'queue-bindings-table'}, h('thead', {}, h('tr', {},
        ['From', 'Routing key', 'Arguments', ''].map((t) => h('th', {}, t)))), bindings)),
      h('form', {class: 'form', onsubmit: bind}, field('Bind from exchange', bindFrom), field('Routing key', bindKey),
        h('div', {class: 'full actions'}, h('button', {type: 'submit'}, 'Bind'), bindResult)),
      section('Publish message', true, h('p', {class: 'muted'}, 'Through the default exchange, routed by the queue\'s name.'),
        publishForm(vh, '', name)),
      section('Get messages', true,
        h('p', {class: 'muted'}, 'Getting messages is destructive with an ack mode other than requeue.'),
        h('form', {class: 'form', onsubmit: getMessages},
          field('Ack mode', ackmode), field('Encoding', encoding), field('Messages', count), field('Truncate (bytes)', truncate),
          h('div', {class: 'full actions'}, h('button', {type: 'submit', id: 'get-submit'}, 'Get message(s)'))),
        getResults),
      section('Delete or purge', true,
        h('div', {class: 'actions'},
          h('button', {type: 'button', class: 'danger', id: 'purge-button', onclick: purge}, 'Purge messages'),
          h('button', {type: 'button', class: 'danger', id: 'delete-button', onclick: remove}, 'Delete queue'),
          h('label', {}, ifUnused, ' if unused'), h('label', {}, ifEmpty, ' if empty'), actionResult)));

    const page = {
      async update() {
        const [q, cs, bs] = await Promise.all([api('GET', base), api('GET', 'api/consumers/' + enc(vh)), api('GET', base + '/bindings')]);
        depth.push(depthSample(q));
        rates.push(rateSample(q));
        const shmq = q.shmq || {};
        replace(details, facts([
          ['Features', queueFeatures(q).length ? queueFeatures(q) : h('span', {class: 'muted'}, 'none')],
          ['Arguments', argsText(q.arguments) || '-'],
          ['State', h('span', {class: 'state-' + q.state}, q.state)],
          ['Type', q.type],
          ['Consumers', fmtNum(q.consumers)],
          ['Messages', [h('span', {id: 'queue-messages'}, fmtNum(q.messages)), ' (ready ',
            h('span', {id: 'queue-ready'}, fmtNum(q.messages_ready)), ', unacked ',
            h('span', {id: 'queue-unacked'}, fmtNum(q.messages_unacknowledged)), ')']],
          ['Message bytes', fmtBytes(q.message_bytes)],
          ['Memory (rings)', fmtBytes(q.memory) + ' in ' + fmtNum(shmq.rings) + ' ring(s)'],
          ['Producers', fmtNum(shmq.producers)],
          ['Overflow', shmq.overflow],
          ['Dropped / expired / dead-lettered', fmtNum(shmq.dropped) + ' / ' + fmtNum(shmq.expired) + ' / ' + fmtNum(shmq.dead_lettered)],
        ]));
        const mine = cs.filter((c) => c.queue.name === name);
        replace(consumers, mine.length ? mine.map((c) => h('tr', {},
          h('td', {class: 'mono'}, c.consumer_tag), h('td', {}, c.channel_details.name),
          h('td', {class: 'num'}, c.prefetch_count === 0 ? 'unlimited' : fmtNum(c.prefetch_count)),
          h('td', {}, String(c.active)), stateCell(c.activity_status),
          h('td', {class: 'num'}, fmtNum(c.shmq.unacked)), h('td', {class: 'num'}, fmtNum(c.shmq.delivered)),
          h('td', {class: 'num'}, fmtNum(c.shmq.acked))))
          : h('tr', {}, h('td', {class: 'empty', colspan: 8}, 'No consumers.')));
        replace(bindings, bs.map((b) => h('tr', {},
          h('td', {}, exchangeLink(vh, b.source)), h('td', {class: 'mono'}, b.routing_key), h('td', {}, argsText(b.arguments)),
          h('td', {}, b.source === '' ? h('span', {class: 'muted'}, '(implicit)') : unbindButton(vh, b, () => page.update())))));
      },
    };
    return page;
  }

  function unbindButton(vh, b, done) {
    return h('button', {type: 'button', class: 'secondary', onclick: async () => {
      const kind = b.destination_type === 'queue' ? 'q' : 'e';
      try {
        await api('DELETE', 'api/bindings/' + enc(vh) + '/e/' + enc(b.source) + '/' + kind + '/' + enc(b.destination) + '/' + enc(b.properties_key));
        await done();
      } catch (e) {
        showStatus('Unbind failed: ' + e.message);
      }
    }}, 'Unbind');
  }

  function exchangesPage(main) {
    const table = pagedTable('exchanges', 'exchanges', [
      {label: 'Virtual host', sort: 'vhost', cell: (x) => x.vhost},
      {label: 'Name', sort: 'name', cell: (x) => exchangeLink(x.vhost, x.name)},
      {label: 'Type', sort: 'type', cell: (x) => x.type},
      {label: 'Features', cell: (x) => exchangeFeatures(x)},
      {label: 'Message rate in', sort: 'message_stats.publish_in_details.rate', num: true, cell: (x) => fmtRate(rate(x, 'publish_in') || 0)},
      {label: 'Message rate out', sort: 'message_stats.publish_out_details.rate', num: true, cell: (x) => fmtRate(rate(x, 'publish_out') || 0)},
    ], {sort: 'name'});
    const name = h('input', {id: 'new-exchange-name', required: true});
    const vh = vhostChoice('new-exchange-vhost');
    const type = select('new-exchange-type', ['direct', 'fanout', 'headers', 'topic'].map((t) => [t, t]), 'direct');
    const durable = select('new-exchange-durable', [['true', 'Durable'], ['false', 'Transient']], 'true');
    const ae = h('input', {id: 'new-exchange-ae', placeholder: 'optional'});
    const result = h('span', {class: 'result', role: 'status'});
    async function add(event) {
      event.preventDefault();
      try {
        const args = ae.value ? {'alternate-exchange': ae.value} : {};
        await api('PUT', 'api/exchanges/' + enc(vh.value) + '/' + enc(name.value), {type: type.value, durable: durable.value === 'true', arguments: args});
        result.className = 'result ok';
        replace(result, 'Exchange ' + name.value + ' declared.');
        await table.update();
      } catch (e) {
        result.className = 'result error';
        replace(result, e.message);
      }
    }
    replace(main, h('h1', {}, 'Exchanges'), table.el,
      section('Add a new exchange', false, h('form', {class: 'form', onsubmit: add},
        field('Virtual host', vh), field('Name', name), field('Type', type), field('Durability', durable), field('Alternate exchange', ae),
        h('div', {class: 'full actions'}, h('button', {type: 'submit'}, 'Add exchange'), result))));
    return {update: table.update};
  }

  function exchangePage(main, vh, pathName) {
    const name = pathName === 'amq.default' ? '' : pathName;
    const base = 'api/exchanges/' + enc(vh) + '/' + enc(pathName);
    const key = 'x\0' + vh + '\0' + name;
    const rates = chart('Message rates', key + '\0rates', [{key: 'in', label: 'Publish (in)'}, {key: 'out', label: 'Publish (out)'}], rateFormat);
    const details = h('div', {id: 'exchange-details'});
    const sourceRows = h('tbody');
    const destRows = h('tbody');
    const destType = select('bind-destination-type', [['q', 'To queue'], ['e', 'To exchange']], 'q');
    const dest = h('input', {id: 'bind-destination'});
    const bindKey = h('input', {id: 'bind-key'});
    const bindArgs = kvRows('bind-arguments', true);
    const bindResult = h('span', {class: 'result', role: 'status'});
    async function bind(event) {
      event.preventDefault();
      try {
        await api('POST', 'api/bindings/' + enc(vh) + '/e/' + enc(pathName) + '/' + destType.value + '/' + enc(dest.value),
          {routing_key: bindKey.value, arguments: bindArgs.value()});
        bindResult.className = 'result ok';
        replace(bindResult, 'Bound.');
        await page.update();
      } catch (e) {
        bindResult.className = 'result error';
        replace(bindResult, e.message);
      }
    }
    const deleteResult = h('span', {class: 'result', role: 'status'});
    async function remove() {
      if (!window.confirm('Delete exchange ' + name + '?')) return;
      try {
        await api('DELETE', base);
        location.hash = '#/exchanges';
      } catch (e) {
        deleteResult.className = 'result error';
        replace(deleteResult, e.message);
      }
    }
    const bindingHead = (first) => h('thead', {}, h('tr', {}, [first, 'Routing key', 'Arguments', ''].map((t) => h('th', {}, t))));
    const builtin = name === '' || name.startsWith('amq.');
    replace(main,
      h('h1', {}, 'Exchange ', h('span', {id: 'exchange-name'}, exchangeLabel(name)), h('span', {class: 'muted'}, ' in virtual host ' + vh)),
      h('div', {class: 'charts'}, rates.el),
      h('h2', {}, 'Details'), details,
      h('h2', {}, 'Bindings from this exchange'),
      h('div', {class: 'table-wrap'}, h('table', {class: 'list', id: 'source-bindings-table'}, bindingHead('To'), sourceRows)),
      name === '' ? null : h('form', {class: 'form', onsubmit: bind},
        field('Destination', h('div', {class: 'kv-row'}, destType, dest)), field('Routing key', bindKey), field('Arguments', bindArgs.el),
        h('div', {class: 'full actions'}, h('button', {type: 'submit', id: 'bind-submit'}, 'Bind'), bindResult)),
      h('h2', {}, 'Bindings to this exchange'),
      h('div', {class: 'table-wrap'}, h('table', {class: 'list', id: 'destination-bindings-table'}, bindingHead('From'), destRows)),
      section('Publish message', true, publishForm(vh, name)),
      builtin ? null : section('Delete this exchange', false, h('div', {class: 'actions'},
        h('button', {type: 'button', class: 'danger', id: 'delete-exchange-button', onclick: remove}, 'Delete exchange'), deleteResult)));

    const bindingRow = (b, other) => h('tr', {},
      h('td', {}, other), h('td', {class: 'mono'}, b.routing_key), h('td', {}, argsText(b.arguments)),
      h('td', {}, b.source === '' ? h('span', {class: 'muted'}, '(implicit)') : unbindButton(vh, b, () => page.update())));
    const destLink = (b) => (b.destination_type === 'queue' ? queueLink(vh, b.destination) : exchangeLink(vh, b.destination));
    const page = {
      async update() {
        const [x, src, dst] = await Promise.all([api('GET', base), api('GET', base + '/bindings/source'), api('GET', base + '/bindings/destination')]);
        rates.push({in: rate(x, 'publish_in') || 0, out: rate(x, 'publish_out') || 0});
        replace(details, facts([
          ['Type', x.type],
          ['Features', exchangeFeatures(x).length ? exchangeFeatures(x) : h('span', {class: 'muted'}, 'none')],
          ['Published in / routed out', fmtNum(at(x, 'message_stats.publish_in') || 0) + ' / ' + fmtNum(at(x, 'message_stats.publish_out') || 0)],
        ]));
        const shown = src.slice(0, 500);
        replace(sourceRows, shown.length ? shown.map((b) => bindingRow(b, destLink(b))) : h('tr', {}, h('td', {class: 'empty', colspan: 4}, 'No bindings.')),
          src.length > shown.length ? h('tr', {}, h('td', {class: 'empty', colspan: 4}, 'and ' + fmtNum(src.length - shown.length) + ' more (see Bindings)')) : null);
        replace(destRows, dst.length ? dst.map((b) => bindingRow(b, exchangeLink(vh, b.source))) : h('tr', {}, h('td', {class: 'empty', colspan: 4}, 'No bindings.')));
      },
    };
    return page;
  }

  function bindingsPage(main) {
    const table = localTable('bindings', [
      {label: 'Virtual host', cell: (b) => b.vhost},
      {label: 'Source', cell: (b) => exchangeLink(b.vhost, b.source)},
      {label: 'Destination', cell: (b) => (b.destination_type === 'queue' ? queueLink(b.vhost, b.destination) : exchangeLink(b.vhost, b.destination))},
      {label: 'Type', cell: (b) => b.destination_type},
      {label: 'Routing key', cell: (b) => h('td', {class: 'mono'}, b.routing_key)},
      {label: 'Arguments', cell: (b) => argsText(b.arguments)},
    ], (b) => [b.source, b.destination, b.routing_key].join(' '));
    replace(main, h('h1', {}, 'Bindings'), h('p', {class: 'muted'}, 'Every binding, the default exchange\'s implicit one of each queue included (as RabbitMQ lists them).'), table.el);
    return {async update() { table.set(await api('GET', scoped('bindings'))); }};
  }

  function peersPage(main) {
    const table = localTable('peers', [
      {label: 'Virtual host', cell: (p) => p.vhost},
      {label: 'Process', cell: (p) => p.name},
      {label: 'Command', cell: (p) => h('td', {class: 'mono'}, p.command || '-')},
      {label: 'State', cell: (p) => stateCell(p.state)},
      {label: 'Consumers', num: true, cell: (p) => fmtNum(p.consumers)},
      {label: 'Producers', num: true, cell: (p) => fmtNum(p.producers)},
      {label: 'Queues', cell: (p) => {
        const names = [...new Set(p.queues.map((q) => q.name))];
        return [names.slice(0, 5).map((q, i) => [i ? ', ' : '', queueLink(p.vhost, q)]), names.length > 5 ? ' and ' + (names.length - 5) + ' more' : ''];
      }},
      {label: 'Published', num: true, cell: (p) => fmtNum(p.published)},
      {label: 'Delivered', num: true, cell: (p) => fmtNum(p.delivered)},
      {label: 'Acked', num: true, cell: (p) => fmtNum(p.acked)},
    ], (p) => [p.name, p.command, p.state].concat(p.queues.map((q) => q.name)).join(' '));
    replace(main, h('h1', {}, 'Peers'),
      h('p', {class: 'muted'}, 'Processes attached to the namespaces (shmq has no connections: each process is a peer), with the queue handles they hold.'),
      table.el);
    return {async update() { table.set(await api('GET', scoped('shmq/peers'))); }};
  }

  function shovelsPage(main) {
    const endpoint = (s, side) => {
      const target = s[side + '_queue'] !== undefined ? 'queue ' + s[side + '_queue']
        : s[side + '_exchange'] !== undefined ? 'exchange ' + s[side + '_exchange'] + (s[side + '_exchange_key'] !== undefined ? ' / ' + s[side + '_exchange_key'] : '') : '';
      return [h('span', {class: 'mono'}, s[side + '_uri'] || '-'), target ? h('br') : null, target];
    };
    const table = localTable('shovels', [
      {label: 'Virtual host', cell: (s) => s.vhost},
      {label: 'Name', cell: (s) => s.name},
      {label: 'State', cell: (s) => stateCell(s.state)},
      {label: 'Source', cell: (s) => endpoint(s, 'src')},
      {label: 'Destination', cell: (s) => endpoint(s, 'dest')},
      {label: 'Forwarded', num: true, cell: (s) => fmtNum(s.forwarded)},
      {label: 'Reason / last error', cell: (s) => h('td', {class: 'error wrap'}, s.reason || (s.shmq && s.shmq.last_error) || '')},
    ], (s) => [s.name, s.state, s.src_uri, s.dest_uri].join(' '));
    replace(main, h('h1', {}, 'Shovels'),
      h('p', {class: 'muted'}, 'Shovels declared with shmq shovel declare; a shmq shovel run process moves their messages.'), table.el);
    return {async update() { table.set(await api('GET', scoped('shovels'))); }};
  }

  // ---------------------------------------------------------------- routing

  const routes = [
    [/^$/, 'overview', overviewPage],
    [/^queues$/, 'queues', queuesPage],
    [/^queues\/([^/]+)\/([^/]+)$/, 'queues', queuePage],
    [/^exchanges$/, 'exchanges', exchangesPage],
    [/^exchanges\/([^/]+)\/([^/]+)$/, 'exchanges', exchangePage],
    [/^bindings$/, 'bindings', bindingsPage],
    [/^peers$/, 'peers', peersPage],
    [/^shovels$/, 'shovels', shovelsPage],
  ];

  function navigate() {
    if (!state.user) return;
    const path = location.hash.replace(/^#\/?/, '');
    let found = null;
    for (const [pattern, tab, page] of routes) {
      const m = path.match(pattern);
      if (m) {
        try { found = [tab, page, m.slice(1).map(decodeURIComponent)]; } catch (e) { found = null; }
        break;
      }
    }
    const main = $('#main');
    state.generation++;
    showStatus('');
    if (!found) {
      state.page = null;
      replace(main, h('h1', {}, 'Not found'), h('p', {}, 'No page ' + location.hash + '. ', h('a', {href: '#/'}, 'Overview')));
      return;
    }
    const [tab, page, args] = found;
    for (const a of document.querySelectorAll('#tabs a')) a.classList.toggle('active', a.dataset.tab === tab);
    state.page = page(main, ...args);
    document.title = (tab[0].toUpperCase() + tab.slice(1)) + ' - shmq management';
    poll();
  }

  /** Updates the mounted page now, then again after the refresh interval. */
  async function poll() {
    clearTimeout(state.timer);
    const generation = state.generation;
    const page = state.page;
    if (!page) return;
    try {
      await page.update();
      if (generation === state.generation) {
        showStatus('');
        replace($('#updated'), new Date().toLocaleTimeString());
      }
    } catch (e) {
      if (generation === state.generation && state.user) {
        showStatus(e.status === 404 ? 'Not found: it may have been deleted. (' + e.message + ')' : e.message);
      }
    }
    if (generation !== state.generation || !state.user) return;
    const seconds = refreshSeconds();
    if (seconds > 0) state.timer = setTimeout(poll, seconds * 1000);
  }

  // ---------------------------------------------------------------- login

  function showLogin(error) {
    $('#app').hidden = true;
    $('#login').hidden = false;
    const el = $('#login-error');
    el.textContent = error || '';
    el.hidden = !error;
    $('#login-username').focus();
  }

  function logout(reason) {
    store.removeItem(AUTH_KEY);
    state.user = null;
    state.page = null;
    state.generation++;
    clearTimeout(state.timer);
    replace($('#main'));
    showLogin(reason);
  }

  async function start(auth) {
    const [me, overview, vhosts] = await Promise.all([
      api('GET', 'api/whoami', undefined, auth), api('GET', 'api/overview', undefined, auth), api('GET', 'api/vhosts', undefined, auth),
    ]);
    store.setItem(AUTH_KEY, auth);
    state.user = me.name;
    state.vhosts = vhosts;
    replace($('#top-user'), me.name);
    replace($('#top-node'), overview.node);
    replace($('#top-version'), overview.product_name + ' ' + overview.product_version);
    const vs = $('#vhost-select');
    replace(vs, h('option', {value: ''}, 'All'), vhosts.map((v) => h('option', {value: v.name}, v.name)));
    if (!vhosts.some((v) => v.name === vhost())) store.removeItem('shmq-vhost');
    vs.value = vhost();
    $('#refresh-select').value = String(refreshSeconds());
    $('#login').hidden = true;
    $('#app').hidden = false;
    navigate();
  }

  document.addEventListener('DOMContentLoaded', () => {
    $('#login-form').addEventListener('submit', async (event) => {
      event.preventDefault();
      const button = $('#login-submit');
      button.disabled = true;
      try {
        await start(basic($('#login-username').value, $('#login-password').value));
        $('#login-password').value = '';
      } catch (e) {
        showLogin(e.status === 401 ? e.message : 'Cannot log in: ' + e.message);
      } finally {
        button.disabled = false;
      }
    });
    $('#logout').addEventListener('click', () => logout(''));
    $('#vhost-select').addEventListener('change', (e) => {
      if (e.target.value) store.setItem('shmq-vhost', e.target.value); else store.removeItem('shmq-vhost');
      navigate();
    });
    $('#refresh-select').addEventListener('change', (e) => {
      store.setItem('shmq-refresh', e.target.value);
      poll();
    });
    window.addEventListener('hashchange', navigate);
    const auth = store.getItem(AUTH_KEY);
    if (auth) start(auth).catch((e) => logout(e.status === 401 ? e.message : ''));
    else showLogin('');
  });
})();
