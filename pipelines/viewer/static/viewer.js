// fifa-data viewer: a static page over data/index.js and data/pNNNNN.js (written by `fifa-data view`).
// Every string from the data reaches the page through textContent or a DOM property, never as markup.
(function () {
  'use strict';

  const PALETTE = ['#e6194b', '#3cb44b', '#ffe119', '#4363d8', '#f58231', '#911eb4', '#46f0f0', '#f032e6',
    '#bcf60c', '#fabebe', '#008080', '#e6beff', '#9a6324', '#800000', '#aaffc3', '#808000'];
  const IMG_SRC = /^img\/[0-9a-f]{20}\.jpg$/;
  const MULTI = { split: 1, task: 1 };
  const FACET_ORDER = ['task', 'split', 'method', 'status', 'label', 'category'];
  const $ = (id) => document.getElementById(id);

  const state = {
    index: null, loaded: {}, pages: new Map(), filtered: [], view: 0, selected: null,
    filters: {}, search: '', reviewFilter: '', warnFilter: '',
    review: { reviewer: null, decisions: {}, seen: {} }, reviewMode: false, blind: false,
    shown: new Set(), hover: -1, useSource: false, maskCache: new Map(), sample: null,
  };

  // ------------------------------------------------------------------ data files
  window.fifaViewerData = function (kind, n, payload) { state.loaded[kind + ':' + n] = payload; };

  function loadScript(src, key) {
    return new Promise((resolve, reject) => {
      const s = document.createElement('script');
      s.src = src;
      s.onload = () => { const v = state.loaded[key]; delete state.loaded[key]; v ? resolve(v) : reject(new Error(src)); };
      s.onerror = () => reject(new Error('cannot load ' + src));
      document.head.appendChild(s);
    });
  }

  function loadPage(p) {
    if (!state.pages.has(p)) {
      const name = 'data/p' + String(p).padStart(5, '0') + '.js';
      state.pages.set(p, loadScript(name, 'page:' + p).then((d) => d.samples));
    }
    return state.pages.get(p);
  }

  async function sampleAt(i) {
    const ps = state.index.page_size;
    const samples = await loadPage(Math.floor(i / ps));
    return samples[i % ps];
  }

  // ------------------------------------------------------------------ DOM helpers
  function el(tag, props, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (k === 'text') e.textContent = v;
      else if (k === 'class') e.className = v;
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else if (k === 'dataset') Object.assign(e.dataset, v);
      else e[k] = v;
    }
    for (const c of children) if (c !== null && c !== undefined) e.append(c);  // strings become text nodes
    return e;
  }
  const str = (v) => (v === null || v === undefined || v === '') ? '(none)' : String(v);
  const badge = (text, cls) => el('span', { class: 'badge ' + (cls || ''), text: text });

  // ------------------------------------------------------------------ review state (localStorage)
  const key = (what) => 'fifa-viewer:' + state.index.site_id + ':' + what;

  function loadReview() {
    try {
      const r = JSON.parse(localStorage.getItem(key('review')) || 'null');
      if (r && typeof r.decisions === 'object') state.review = r;
    } catch (e) { /* a damaged entry starts a fresh review */ }
    if (!state.review.seen || typeof state.review.seen !== 'object') state.review.seen = {};
    state.reviewMode = localStorage.getItem(key('mode')) === '1';
    state.blind = localStorage.getItem(key('blind')) === '1';
  }
  function saveReview() { localStorage.setItem(key('review'), JSON.stringify(state.review)); }

  function decide(sid, decision, note) {
    const d = state.review.decisions;
    if (decision === null) delete d[sid];
    else {
      d[sid] = { decision: decision, note: note || '', at: new Date().toISOString() };
      const seen = state.review.seen[sid];
      if (seen !== undefined) { d[sid].seen = seen; d[sid].blind = true; }  // noted blind, before the annotation
    }
    saveReview();
    renderReviewCount();
    renderList();
    if (state.sample && state.sample.id === sid) renderReviewPanel();
  }

  function reviewFile() {
    const entries = Object.entries(state.review.decisions)
      .map(([sid, d]) => Object.assign({ sample_id: sid, decision: d.decision, note: d.note || '', at: d.at },
        d.blind ? { seen: String(d.seen || ''), blind: true } : {}))
      .sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0));
    return { version: 1, reviewer: state.review.reviewer || null, decisions: entries };
  }

  function download() {
    if (!state.review.reviewer) {  // decision files name their reviewer: agreement figures need it
      flash('enter your name as reviewer before downloading');
      $('reviewer').focus();
      $('reviewer').classList.add('missing');
      return;
    }
    const blob = new Blob([JSON.stringify(reviewFile(), null, 2) + '\n'], { type: 'application/json' });
    const a = el('a', { href: URL.createObjectURL(blob), download: 'review-' + state.index.site_id + '.json' });
    document.body.append(a);
    a.click();
    setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
  }

  function importFile(file) {
    const reader = new FileReader();
    reader.onload = () => {
      try {
        const obj = JSON.parse(reader.result);
        if (!obj || obj.version !== 1 || !Array.isArray(obj.decisions)) throw new Error('not a version 1 review file');
        let n = 0;
        for (const e of obj.decisions) {
          if (!e || typeof e.sample_id !== 'string' || !['accepted', 'rejected'].includes(e.decision)) continue;
          state.review.decisions[e.sample_id] = { decision: e.decision, note: String(e.note || ''), at: String(e.at || new Date().toISOString()) };
          n++;
        }
        if (!state.review.reviewer && typeof obj.reviewer === 'string') state.review.reviewer = obj.reviewer;
        for (const e of obj.decisions) {
          if (e && e.blind && typeof e.sample_id === 'string' && state.review.decisions[e.sample_id]) {
            Object.assign(state.review.decisions[e.sample_id], { seen: String(e.seen || ''), blind: true });
            state.review.seen[e.sample_id] = String(e.seen || '');
          }
        }
        saveReview();
        $('reviewer').value = state.review.reviewer || '';
        applyFilters();
        flash(n + ' decisions imported');
      } catch (err) { flash('import failed: ' + err.message); }
    };
    reader.readAsText(file);
  }

  function flash(text) { $('review-count').textContent = text; setTimeout(renderReviewCount, 2500); }

  function renderReviewCount() {
    const vals = Object.values(state.review.decisions);
    const acc = vals.filter((d) => d.decision === 'accepted').length;
    $('review-count').textContent = acc + ' accepted, ' + (vals.length - acc) + ' rejected';
  }

  // ------------------------------------------------------------------ filters
  function buildFilters() {
    const bar = $('filters');
    const facets = state.index.facets;
    for (const f of FACET_ORDER) {
      const values = facets[f] || [];
      if (!values.length) continue;
      const sel = el('select', { id: 'filter-' + f, ariaLabel: f, onchange: () => { state.filters[f] = sel.value; applyFilters(); } },
        el('option', { value: '', text: f + ': all' }));
      values.map((v, code) => [str(v), code]).sort((a, b) => a[0].localeCompare(b[0]))
        .forEach(([text, code]) => sel.append(el('option', { value: String(code), text: text })));
      bar.append(sel);
    }
    const rev = el('select', { id: 'filter-review', onchange: () => { state.reviewFilter = rev.value; applyFilters(); } },
      el('option', { value: '', text: 'review: all' }), el('option', { value: 'unreviewed', text: 'unreviewed' }),
      el('option', { value: 'accepted', text: 'accepted' }), el('option', { value: 'rejected', text: 'rejected' }));
    const warn = el('select', { id: 'filter-warnings', onchange: () => { state.warnFilter = warn.value; applyFilters(); } },
      el('option', { value: '', text: 'warnings: all' }), el('option', { value: '1', text: 'with warnings' }),
      el('option', { value: '0', text: 'without warnings' }));
    bar.append(rev, warn);
    $('search').addEventListener('input', (e) => { state.search = e.target.value; applyFilters(); });
  }

  function matches(i) {
    const s = state.index.samples;
    for (const [f, v] of Object.entries(state.filters)) {
      if (v === '') continue;
      const code = Number(v);
      if (MULTI[f] ? !s[f][i].includes(code) : s[f][i] !== code) return false;
    }
    if (state.search && !s.id[i].includes(state.search)) return false;
    if (state.warnFilter !== '' && String(s.warn[i]) !== state.warnFilter) return false;
    if (state.reviewFilter) {
      const d = state.review.decisions[s.id[i]];
      if ((d ? d.decision : 'unreviewed') !== state.reviewFilter) return false;
    }
    return true;
  }

  function applyFilters(keepView) {
    const n = state.index.samples.id.length;
    state.filtered = [];
    for (let i = 0; i < n; i++) if (matches(i)) state.filtered.push(i);
    if (!keepView) state.view = 0;
    state.view = Math.max(0, Math.min(state.view, numViews() - 1));
    renderList();
  }

  const numViews = () => Math.max(1, Math.ceil(state.filtered.length / state.index.page_size));

  // ------------------------------------------------------------------ list
  let listToken = 0;
  async function renderList() {
    const token = ++listToken;
    const ps = state.index.page_size;
    const positions = state.filtered.slice(state.view * ps, (state.view + 1) * ps);
    const samples = await Promise.all(positions.map(sampleAt));
    if (token !== listToken) return;
    const ol = $('samples');
    ol.replaceChildren();
    samples.forEach((s) => {
      const d = state.review.decisions[s.id];
      const li = el('li', { class: 'item' + (state.selected === s.id ? ' selected' : ''), tabIndex: 0,
        onclick: () => select(s) },
        thumb(s), el('span', { class: 'sid', text: s.id }),
        el('span', { class: 'tags' }, badge(str(s.label), 'label-' + str(s.label)), badge(str(s.method)),
          s.status ? badge(s.status, 'status-' + s.status) : null,
          s.warnings.length ? badge('!', 'warn') : null,
          d ? badge(d.decision, 'review-' + d.decision) : null));
      li.dataset.sid = s.id;
      ol.append(li);
    });
    if (!samples.length) ol.append(el('li', { class: 'muted', text: 'no sample matches the filters' }));
    $('page-info').textContent = 'page ' + (state.view + 1) + ' / ' + numViews();
    $('prev').disabled = state.view === 0;
    $('next').disabled = state.view >= numViews() - 1;
    $('count').textContent = state.filtered.length + ' of ' + state.index.samples.id.length + ' samples';
    const keep = samples.find((s) => s.id === state.selected);
    if (keep) { if (!state.sample || state.sample.id !== keep.id) select(keep); } else if (samples.length) select(samples[0]);
    else $('detail').replaceChildren(el('p', { class: 'muted', text: 'no sample selected' }));
    writeHash();
    document.body.dataset.rendered = String(token);
  }

  function thumb(s) {
    if (!s.img || !IMG_SRC.test(s.img.src)) return el('span', { class: 'thumb none' });
    return el('img', { class: 'thumb', src: s.img.src, alt: '', loading: 'lazy' });
  }

  function go(view) { state.view = Math.max(0, Math.min(view, numViews() - 1)); state.selected = null; renderList(); }

  function step(delta) {
    const items = [...document.querySelectorAll('#samples li.item')];
    const at = items.findIndex((li) => li.dataset.sid === state.selected);
    const next = at + delta;
    if (next >= 0 && next < items.length) items[next].click();
    else if (next >= items.length && state.view < numViews() - 1) go(state.view + 1);
    else if (next < 0 && state.view > 0) go(state.view - 1);
  }

  // ------------------------------------------------------------------ masks
  function rleRuns(s) {
    const runs = [];
    let p = 0;
    while (p < s.length) {
      let x = 0, k = 0, more = 1;
      while (more && p < s.length) {
        const c = s.charCodeAt(p) - 48;
        x |= (c & 0x1f) << (5 * k);
        more = c & 0x20;
        p++; k++;
        if (!more && (c & 0x10)) x |= -1 << (5 * k);
      }
      if (runs.length > 2) x += runs[runs.length - 2];
      runs.push(x);
    }
    return runs;
  }

  function maskCanvas(i) {
    const cacheKey = state.sample.id + '\u0000' + i;
    if (state.maskCache.has(cacheKey)) return state.maskCache.get(cacheKey);
    const m = state.sample.masks[i];
    const h = m.size[0], w = m.size[1], n = h * w;
    const col = new Uint8Array(n);
    let pos = 0, on = 0;
    for (const r of rleRuns(m.counts)) {
      if (on) col.fill(1, pos, Math.min(pos + r, n));
      pos += r; on ^= 1;
      if (pos >= n) break;
    }
    const c = el('canvas', { width: w, height: h });
    const ctx = c.getContext('2d');
    const img = ctx.createImageData(w, h);
    const px = new Uint32Array(img.data.buffer);
    const hex = PALETTE[i % PALETTE.length];
    const rgba = (255 << 24) | (parseInt(hex.slice(5, 7), 16) << 16) | (parseInt(hex.slice(3, 5), 16) << 8) | parseInt(hex.slice(1, 3), 16);
    for (let x = 0; x < w; x++) {  // COCO runs are column-major
      const base = x * h;
      for (let y = 0; y < h; y++) if (col[base + y]) px[y * w + x] = rgba;
    }
    ctx.putImageData(img, 0, 0);
    if (state.maskCache.size > 256) state.maskCache.clear();
    state.maskCache.set(cacheKey, c);
    return c;
  }

  function drawOverlay() {
    const canvas = document.querySelector('#detail canvas.overlay');
    if (!canvas) return;
    const ctx = canvas.getContext('2d');
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    const hot = state.hover;
    for (const i of state.shown) {
      if (i === hot) continue;
      ctx.globalAlpha = hot >= 0 ? 0.3 : 0.5;
      ctx.drawImage(maskCanvas(i), 0, 0, canvas.width, canvas.height);
    }
    if (hot >= 0 && state.sample.masks[hot]) {
      ctx.globalAlpha = 0.85;
      ctx.drawImage(maskCanvas(hot), 0, 0, canvas.width, canvas.height);
    }
    ctx.globalAlpha = 1;
    for (const b of state.boxes) {
      ctx.strokeStyle = b.hot ? '#ffffff' : '#ffe119';
      ctx.lineWidth = Math.max(2, canvas.width / 200);
      ctx.strokeRect(b.box[0], b.box[1], b.box[2] - b.box[0], b.box[3] - b.box[1]);
    }
    document.querySelectorAll('#detail [data-mask]').forEach((e) => {
      const i = Number(e.dataset.mask);
      e.classList.toggle('hot', i === hot);
      if (e.type === 'checkbox') e.checked = state.shown.has(i);
    });
  }

  function setHover(i) { state.hover = i; drawOverlay(); }

  function toggleMask(i, on) {
    if (on === undefined) on = !state.shown.has(i);
    if (on) state.shown.add(i); else state.shown.delete(i);
    drawOverlay();
  }

  // ------------------------------------------------------------------ detail
  function phrase(tok) {
    const [text, mask, node] = tok;
    const span = el('span', { class: 'phrase' + (mask < 0 ? ' unlinked' : ''), text: text, tabIndex: 0,
      title: str(node) + (mask < 0 ? ' (no mask)' : '') });
    if (mask >= 0) {
      span.dataset.mask = String(mask);
      span.style.borderColor = PALETTE[mask % PALETTE.length];
      span.addEventListener('mouseenter', () => setHover(mask));
      span.addEventListener('mouseleave', () => setHover(-1));
      span.addEventListener('focus', () => setHover(mask));
      span.addEventListener('blur', () => setHover(-1));
      span.addEventListener('click', () => toggleMask(mask));
    }
    return span;
  }

  const tokens = (toks) => el('span', {}, ...toks.map((t) => (typeof t === 'string' ? t : phrase(t))));

  function chip(label, mask) {
    return phrase([label, mask, state.sample.masks[mask] ? state.sample.masks[mask].node : null]);
  }

  function stage(s) {
    const wrap = el('div', { class: 'stage' });
    const pic = s.useSource && s.source ? s.source : s.img;
    if (!pic || !IMG_SRC.test(pic.src)) {
      wrap.append(el('div', { class: 'noimg', text: 'image not available' }));
      return wrap;
    }
    wrap.style.aspectRatio = pic.w + ' / ' + pic.h;
    wrap.append(el('img', { src: pic.src, alt: 'image of ' + s.id }),
      el('canvas', { class: 'overlay', width: s.img.w, height: s.img.h }));
    return wrap;
  }

  function maskToggles(s) {
    const box = el('fieldset', { class: 'toggles' }, el('legend', { text: 'masks (' + s.masks.length + ')' }));
    if (!s.masks.length) box.append(el('span', { class: 'muted', text: 'no masks' }));
    s.masks.forEach((m, i) => {
      const cb = el('input', { type: 'checkbox', id: 'mask-' + i, checked: state.shown.has(i), onchange: () => toggleMask(i, cb.checked) });
      cb.dataset.mask = String(i);
      const sw = el('span', { class: 'swatch' });
      sw.style.background = PALETTE[i % PALETTE.length];
      const lab = el('label', { class: 'toggle', htmlFor: 'mask-' + i,
        onmouseenter: () => setHover(i), onmouseleave: () => setHover(-1) },
      cb, sw, el('span', { text: m.label }), el('span', { class: 'muted', text: ' ' + m.kind + (m.node ? ' · ' + m.node : '') }));
      lab.dataset.mask = String(i);
      box.append(lab);
    });
    const all = el('button', { type: 'button', id: 'mask-all', text: 'all', onclick: () => { s.masks.forEach((_, i) => state.shown.add(i)); drawOverlay(); } });
    const none = el('button', { type: 'button', id: 'mask-none', text: 'none', onclick: () => { state.shown.clear(); drawOverlay(); } });
    box.append(el('div', {}, all, none));
    if (s.source) {
      const cb = el('input', { type: 'checkbox', id: 'show-source', checked: !!s.useSource,
        onchange: () => { s.useSource = cb.checked; renderDetail(s); } });
      box.append(el('label', { class: 'toggle' }, cb, el('span', { text: 'show the pristine source image' })));
    }
    return box;
  }

  function infoTable(s) {
    const rows = [['label', s.label], ['method', s.method], ['category', s.category], ['group', s.group],
      ['splits', s.splits.join(', ')], ['tasks', s.tasks.join(', ')]];
    if (s.ann) {
      rows.push(['status', s.ann.status], ['explainer', s.ann.explainer], ['grounded', s.ann.grounded]);
      if (typeof s.ann.mask_fraction === 'number') rows.push(['artifact area', (100 * s.ann.mask_fraction).toFixed(1) + '%']);
      if (s.ann.error) rows.push(['error', (s.ann.error_code ? s.ann.error_code + ': ' : '') + s.ann.error]);
    }
    return el('dl', { class: 'info' }, ...rows.flatMap(([k, v]) => [el('dt', { text: k }), el('dd', { text: str(v) })]));
  }

  function qaRow(q, s) {
    const body = el('div', { class: 'turns' });
    for (const t of q.turns) body.append(el('div', { class: 'turn ' + (t.r === 'assistant' ? 'assistant' : 'user') },
      el('span', { class: 'role', text: t.r }), tokens(t.t)));
    const chips = q.extra.map((i, k) => chip('mask ' + (k + 1) + ': ' + s.masks[i].label, i));
    if (q.query && typeof q.query.m === 'number' && q.query.m >= 0) chips.push(chip('query mask', q.query.m));
    if (q.query && q.query.box) {
      const b = { box: q.query.box, hot: false };
      const c = el('span', { class: 'phrase', tabIndex: 0, text: 'query box [' + q.query.box.map((v) => Math.round(v)).join(', ') + ']' });
      c.addEventListener('mouseenter', () => { state.boxes.push(b); b.hot = true; drawOverlay(); });
      c.addEventListener('mouseleave', () => { state.boxes = state.boxes.filter((x) => x !== b); drawOverlay(); });
      chips.push(c);
    }
    if (chips.length) body.append(el('div', { class: 'chips' }, ...chips));
    return el('details', { class: 'qa' }, el('summary', {}, badge(str(q.task)), ' ', badge(str(q.split)), ' ',
      el('span', { class: 'muted', text: q.from + ' ' + q.id })), body);
  }

  function renderReviewPanel() {
    const panel = document.querySelector('#detail .review');
    if (!panel) return;
    const s = state.sample;
    const d = state.review.decisions[s.id];
    const note = el('textarea', { id: 'note', rows: 2, placeholder: 'note (why rejected, what is wrong)', value: d ? d.note : '' });
    note.addEventListener('change', () => { const cur = state.review.decisions[s.id]; if (cur) decide(s.id, cur.decision, note.value); });
    const now = el('span', { id: 'decision', class: 'badge ' + (d ? 'review-' + d.decision : ''), text: d ? d.decision : 'unreviewed' });
    panel.replaceChildren(el('h3', { text: 'review' }), now,
      el('button', { type: 'button', id: 'accept', text: 'accept (a)', onclick: () => decide(s.id, 'accepted', note.value) }),
      el('button', { type: 'button', id: 'reject', text: 'reject (r)', onclick: () => decide(s.id, 'rejected', note.value) }),
      el('button', { type: 'button', id: 'clear', text: 'clear', onclick: () => decide(s.id, null) }), note);
    panel.hidden = !state.reviewMode;
  }

  // blind review: an undecided sample shows only its image until the reviewer has noted what they see
  const hidden = (s) => state.reviewMode && state.blind && !state.review.decisions[s.id] &&
    state.review.seen[s.id] === undefined;

  function blindPanel(s) {
    const seen = el('textarea', { id: 'seen', rows: 3, placeholder: 'what do you see? (which regions look manipulated, and how)' });
    const reveal = el('button', { type: 'button', id: 'reveal', text: 'show the annotation', disabled: true,
      onclick: () => { state.review.seen[s.id] = seen.value.trim(); saveReview(); renderDetail(s); } });
    seen.addEventListener('input', () => { reveal.disabled = !seen.value.trim(); });
    return el('div', { class: 'blind' }, el('h3', { text: 'blind review' }),
      el('p', { class: 'muted', text: 'The artifact mask, the regions and the explanation stay hidden until you have noted what you see.' }),
      seen, reveal);
  }

  function renderDetail(s) {
    state.sample = s;
    state.hover = -1;
    state.boxes = [];
    if (hidden(s)) {
      state.shown = new Set();
      const head = el('div', { class: 'head' }, el('h2', { id: 'sample-id', text: s.id }));
      const pic = stage(s);
      const canvas = pic.querySelector('canvas');
      if (canvas) canvas.remove();  // no mask can be drawn over the image
      $('detail').replaceChildren(head, el('div', { class: 'cols' }, el('div', { class: 'left' }, pic),
        el('div', { class: 'right' }, blindPanel(s))));
      return;
    }
    const head = el('div', { class: 'head' }, el('h2', { id: 'sample-id', text: s.id }),
      badge(str(s.label), 'label-' + str(s.label)), badge(str(s.method)), s.status ? badge(s.status, 'status-' + s.status) : null);
    const seenText = state.review.seen[s.id];
    const noted = seenText !== undefined && state.reviewMode ? el('p', { id: 'seen-note', class: 'small' },
      el('strong', { text: 'you noted (blind): ' }), seenText) : null;
    const text = el('div', { class: 'explanation' }, noted, el('h3', { text: 'explanation' }),
      s.text ? el('p', { id: 'explanation' }, tokens(s.text)) : el('p', { class: 'muted', text: 'no grounded explanation' }),
      s.text_from ? el('p', { class: 'muted small', text: 'from ' + s.text_from }) : null);
    const warn = s.warnings.length ? el('ul', { class: 'warnings' }, ...s.warnings.map((w) => el('li', { text: w }))) : null;
    const qa = s.qa.length ? el('div', { class: 'qa-list' }, el('h3', { text: 'QA rows (' + s.qa.length + ')' }), ...s.qa.map((q) => qaRow(q, s))) : null;
    $('detail').replaceChildren(head,
      el('div', { class: 'cols' }, el('div', { class: 'left' }, stage(s), maskToggles(s)),
        el('div', { class: 'right' }, el('div', { class: 'review', hidden: true }), text, warn, infoTable(s), qa)));
    renderReviewPanel();
    drawOverlay();
  }

  function select(s) {
    if (!state.sample || state.sample.id !== s.id) state.shown = new Set();
    state.selected = s.id;
    document.querySelectorAll('#samples li.item').forEach((li) => li.classList.toggle('selected', li.dataset.sid === s.id));
    renderDetail(s);
    writeHash();
  }

  // ------------------------------------------------------------------ location hash (view and sample survive reload)
  function writeHash() {
    const h = '#view=' + state.view + (state.selected !== null ? '&sample=' + encodeURIComponent(state.selected) : '');
    if (location.hash !== h) history.replaceState(null, '', h);
  }
  function readHash() {
    const p = new URLSearchParams(location.hash.slice(1));
    state.view = Number(p.get('view')) || 0;
    state.selected = p.get('sample');
  }

  function renderAbout() {
    const meta = Object.entries(state.index.meta || {});
    if (!meta.length) return;
    $('list').append(el('details', { id: 'about', class: 'about' },
      el('summary', { text: 'about this ' + state.index.kind }),
      el('dl', { class: 'info' }, ...meta.flatMap(([k, v]) => [el('dt', { text: k }), el('dd', { text: str(v) })]))));
  }

  // ------------------------------------------------------------------ start
  function onKey(e) {
    if (e.ctrlKey || e.metaKey || e.altKey || /^(INPUT|TEXTAREA|SELECT)$/.test(e.target.tagName)) return;
    const s = state.sample;
    if (e.key === 'j' || e.key === 'ArrowDown') step(1);
    else if (e.key === 'k' || e.key === 'ArrowUp') step(-1);
    else if (e.key === 'n') go(state.view + 1);
    else if (e.key === 'p') go(state.view - 1);
    else if (state.reviewMode && s && !hidden(s) && (e.key === 'a' || e.key === 'r')) {
      const note = $('note');
      decide(s.id, e.key === 'a' ? 'accepted' : 'rejected', note ? note.value : '');
    } else return;
    e.preventDefault();
  }

  function setReviewMode(on) {
    const was = state.reviewMode;
    state.reviewMode = on;
    localStorage.setItem(key('mode'), on ? '1' : '0');
    $('review-bar').hidden = !on;
    const panel = document.querySelector('#detail .review');
    if (panel) panel.hidden = !on;
    if (was !== on && state.blind && state.sample) renderDetail(state.sample);
  }

  function setBlind(on) {
    state.blind = on;
    localStorage.setItem(key('blind'), on ? '1' : '0');
    if (state.sample) renderDetail(state.sample);
  }

  async function start() {
    try {
      state.index = await loadScript('data/index.js', 'index:0');
    } catch (e) {
      $('detail').replaceChildren(el('p', { class: 'warnings', text: 'cannot load data/index.js: is this a site written by fifa-data view?' }));
      return;
    }
    document.title = state.index.title + ' · fifa-data viewer';
    $('title').textContent = state.index.title;
    loadReview();
    $('review-mode').checked = state.reviewMode;
    $('review-mode').addEventListener('change', (e) => setReviewMode(e.target.checked));
    setReviewMode(state.reviewMode);
    $('reviewer').value = state.review.reviewer || '';
    $('reviewer').addEventListener('change', (e) => {
      state.review.reviewer = e.target.value.trim() || null;
      e.target.classList.toggle('missing', !state.review.reviewer);
      saveReview();
    });
    $('blind').checked = state.blind;
    $('blind').addEventListener('change', (e) => setBlind(e.target.checked));
    $('download').addEventListener('click', download);
    $('import').addEventListener('change', (e) => { if (e.target.files[0]) importFile(e.target.files[0]); e.target.value = ''; });
    $('prev').addEventListener('click', () => go(state.view - 1));
    $('next').addEventListener('click', () => go(state.view + 1));
    document.addEventListener('keydown', onKey);
    buildFilters();
    renderAbout();
    renderReviewCount();
    readHash();
    applyFilters(true);
    document.body.dataset.ready = '1';
  }

  document.addEventListener('DOMContentLoaded', start);
}());
