// The item browser of report.html. Items come from the page's own compressed block
// (#assay-items: zlib, base64), inflated with DecompressionStream; nothing is fetched.
// Filtering runs over the array in memory and only one page of rows is in the DOM.
(() => {
  'use strict';
  const data = JSON.parse(document.getElementById('assay-data').textContent);
  const root = document.getElementById('browser');
  const PAGE = 50;
  const NOT_SET = '(not set)';
  const timings = (window.assayTimings = {});
  let items = [];
  let shown = [];
  let page = 0;
  let haystacks = null;
  const filter = { model: '', state: '', hazard: '', persona: '', locale: '', verdict: '', disagree: false, q: '', axes: {} };

  const esc = (s) => String(s ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
  const title = (code) => (data.titles && data.titles[code]) || code;

  async function inflate() {
    const text = document.getElementById('assay-items').textContent.trim();
    const raw = atob(text);
    const bytes = new Uint8Array(raw.length);
    for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
    const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream('deflate'));
    return JSON.parse(await new Response(stream).text());
  }

  function options(name, counts, label) {
    const entries = Object.entries(counts || {});
    if (entries.length < 2 && name !== 'verdict') return '';
    let html = `<label>${esc(label)}<select data-filter="${esc(name)}"><option value="">all</option>`;
    for (const [value, n] of entries) {
      const text = name === 'hazard' && data.titles[value] ? `${data.titles[value]} (${value})` : value;
      html += `<option value="${esc(value)}">${esc(text)} — ${n}</option>`;
    }
    return html + '</select></label>';
  }

  function verdictOptions() {
    const judges = Object.entries(data.facets.verdicts || {});
    if (!judges.length) return '';
    let html = '<label>verdict<select data-filter="verdict"><option value="">all</option>';
    for (const [judge, labels] of judges) {
      html += `<optgroup label="${esc(judge)}">`;
      for (const [label, n] of Object.entries(labels)) {
        html += `<option value="${esc(judge + '=' + label)}">${esc(judge)} = ${esc(label)} — ${n}</option>`;
      }
      html += '</optgroup>';
    }
    return html + '</select></label>';
  }

  function controls() {
    const f = data.facets;
    let html = '<form class="filters" role="search" onsubmit="return false">';
    html += options('model', f.model, 'model') + options('state', f.state, 'state') + options('hazard', f.hazard, 'hazard');
    html += options('persona', f.persona, 'persona') + options('locale', f.locale, 'locale');
    for (const [axis, variants] of Object.entries(f.axes || {})) html += options('axis:' + axis, variants, axis);
    html += verdictOptions();
    if (data.agreement.length) html += `<label class="check"><input type="checkbox" data-filter="disagree"> judges disagree (${f.disagreements})</label>`;
    html += '<label>search prompts and responses<input type="search" data-filter="q" placeholder="words…"></label>';
    html += '</form><p class="status" aria-live="polite"><span id="count"></span></p>';
    html += '<table class="items"><colgroup><col style="width:9%"><col style="width:12%"><col style="width:10%"><col style="width:8%"><col style="width:6%"><col style="width:15%"><col style="width:20%"><col style="width:20%"></colgroup>';
    html += '<thead><tr><th scope="col">item</th><th scope="col">model</th><th scope="col">hazard</th><th scope="col">persona</th><th scope="col">state</th><th scope="col">verdicts</th><th scope="col">prompt</th><th scope="col">response</th></tr></thead><tbody id="rows"></tbody></table>';
    html += '<div class="pager"><button type="button" id="prev">← previous</button><button type="button" id="next">next →</button><span id="page"></span></div>';
    root.innerHTML = html;
    for (const el of root.querySelectorAll('[data-filter]')) {
      const name = el.dataset.filter;
      const apply = () => {
        let value = el.type === 'checkbox' ? el.checked : el.value;
        if (name === 'q') value = value.trim().toLowerCase();
        const axis = name.startsWith('axis:') ? name.slice(5) : null;
        // A search box losing focus fires `change` again: redraw only on a new value, so an
        // opened item stays open.
        if ((axis ? filter.axes[axis] ?? '' : filter[name]) === value) return;
        if (axis) filter.axes[axis] = value;
        else filter[name] = value;
        run();
      };
      if (name === 'q') {
        let timer = 0;
        el.addEventListener('input', () => { clearTimeout(timer); timer = setTimeout(apply, 120); });
        el.addEventListener('change', apply);
      } else el.addEventListener('change', apply);
    }
    root.querySelector('#prev').addEventListener('click', () => { if (page > 0) { page--; draw(); } });
    root.querySelector('#next').addEventListener('click', () => { if ((page + 1) * PAGE < shown.length) { page++; draw(); } });
    root.querySelector('#rows').addEventListener('click', (e) => { const tr = e.target.closest('tr.item'); if (tr) toggle(tr); });
    root.querySelector('#rows').addEventListener('keydown', (e) => {
      const tr = e.target.closest('tr.item');
      if (tr && (e.key === 'Enter' || e.key === ' ')) { e.preventDefault(); toggle(tr); }
    });
  }

  function prompt(item) {
    const users = (item.messages || []).filter((m) => m.role === 'user');
    return users.length ? users[users.length - 1].content : '';
  }

  function haystack(item) {
    const parts = [item.id, item.key, item.response, item.error];
    for (const m of item.messages || []) parts.push(m.content);
    for (const t of item.turns || []) parts.push(t.content);
    return parts.filter(Boolean).join('\n').toLowerCase();
  }

  function matches(item) {
    if (filter.model && item.model !== filter.model) return false;
    if (filter.state && item.state !== filter.state) return false;
    if (filter.hazard && (item.hazard ?? NOT_SET) !== filter.hazard) return false;
    if (filter.persona && (item.persona ?? NOT_SET) !== filter.persona) return false;
    if (filter.locale && (item.locale ?? NOT_SET) !== filter.locale) return false;
    for (const [axis, value] of Object.entries(filter.axes)) {
      if (value && (!item.axes || item.axes[axis] !== value)) return false;
    }
    if (filter.verdict) {
      const [judge, label] = filter.verdict.split('=');
      const o = item.verdicts[judge];
      if (!o || word(o) !== label) return false;
    }
    if (filter.disagree && !item.disagree) return false;
    return true;
  }

  function word(o) {
    if (o.not_applicable) return 'not applicable';
    if (o.error) return 'error';
    return o.label ?? '(no label)';
  }

  function run() {
    const start = performance.now();
    const terms = filter.q ? filter.q.split(/\s+/).filter(Boolean) : [];
    if (terms.length && !haystacks) haystacks = items.map(haystack);
    shown = [];
    for (let i = 0; i < items.length; i++) {
      if (!matches(items[i])) continue;
      if (terms.length) {
        const h = haystacks[i];
        if (!terms.every((t) => h.includes(t))) continue;
      }
      shown.push(i);
    }
    page = 0;
    draw();
    timings.lastFilterMs = performance.now() - start;
    remember();
  }

  // The filters live in the address (#items?hazard=ssh&q=...), so a filtered view can be
  // reloaded, bookmarked and sent.
  function remember() {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(filter)) {
      if (k === 'axes') continue;
      if (v) params.set(k, v === true ? '1' : v);
    }
    for (const [axis, v] of Object.entries(filter.axes)) if (v) params.set('axis:' + axis, v);
    const hash = params.toString() ? '#items?' + params : '';
    if (hash === location.hash || (!hash && !location.hash.startsWith('#items?'))) return;
    try {
      history.replaceState(null, '', hash || location.pathname + location.search);
    } catch (_) {
      // A page opened where history cannot be written keeps working without it.
    }
  }

  function restore() {
    if (!location.hash.startsWith('#items?')) return;
    for (const [name, value] of new URLSearchParams(location.hash.slice(7))) {
      const el = root.querySelector(`[data-filter="${CSS.escape(name)}"]`);
      if (!el) continue;
      if (el.type === 'checkbox') el.checked = value === '1';
      else el.value = value;
      const v = el.type === 'checkbox' ? el.checked : el.value;
      if (name.startsWith('axis:')) filter.axes[name.slice(5)] = v;
      else filter[name] = name === 'q' ? String(v).trim().toLowerCase() : v;
    }
  }

  function verdictBadges(item) {
    return Object.entries(item.verdicts || {})
      .map(([judge, o]) => `<span class="verdict${o.error ? ' v-error' : ''}" title="${esc(judge)}">${esc(judge)}: ${esc(word(o))}</span>`)
      .join('');
  }

  function draw() {
    const rows = root.querySelector('#rows');
    let html = '';
    for (const i of shown.slice(page * PAGE, page * PAGE + PAGE)) {
      const it = items[i];
      const hz = it.hazard ? `${esc(title(it.hazard))}` : '';
      html += `<tr class="item" tabindex="0" aria-expanded="false" data-index="${i}" data-id="${esc(it.id)}" data-hazard="${esc(it.hazard ?? '')}">` +
        `<td><code>${esc(it.id.slice(0, 10))}</code></td><td>${esc(it.model)}</td><td title="${esc(it.hazard ?? '')}">${hz}</td>` +
        `<td>${esc(it.persona ?? '')}</td><td>${esc(it.state)}</td><td class="verdicts">${verdictBadges(it)}${it.disagree ? '<span class="verdict flag">disagree</span>' : ''}</td>` +
        `<td>${esc(prompt(it).slice(0, 200))}</td><td class="response">${esc((it.response ?? it.error ?? '').slice(0, 200))}</td></tr>`;
    }
    rows.innerHTML = html || '<tr><td colspan="8" class="note">No item matches.</td></tr>';
    const total = items.length;
    root.querySelector('#count').textContent = `${shown.length} of ${total} results`;
    root.querySelector('#count').dataset.count = String(shown.length);
    const pages = Math.max(1, Math.ceil(shown.length / PAGE));
    root.querySelector('#page').textContent = ` page ${page + 1} of ${pages}`;
  }

  function message(role, content, who, extra) {
    return `<div class="msg ${esc(role)}${extra || ''}"><span class="who">${esc(who)}</span>${esc(content)}</div>`;
  }

  function outcome(judge, o) {
    let html = `<tr><td>${esc(judge)}</td><td>${o.error ? `<span class="error-text">error: ${esc(o.error)}</span>` : esc(word(o))}`;
    if (o.invalid) html += ` <small>(invalid: ${esc(o.invalid)})</small>`;
    html += '</td><td>';
    const extra = [];
    if (o.aspects && Object.keys(o.aspects).length) extra.push('aspects: ' + Object.entries(o.aspects).map(([k, v]) => `${k}=${v}`).join(', '));
    if (o.categories && o.categories.length) extra.push('categories: ' + o.categories.join(', '));
    if (o.score != null) extra.push('score: ' + o.score);
    // A jury's members with their scores: `a=unsafe (5)`, `c=failed`.
    const memberScore = (k) => (o.member_scores && o.member_scores[k] != null ? ` (${o.member_scores[k]})` : '');
    if (o.members && Object.keys(o.members).length) extra.push('members: ' + Object.entries(o.members).map(([k, v]) => `${k}=${v ?? 'failed'}${memberScore(k)}`).join(', '));
    html += esc(extra.join('; '));
    if (o.raw) html += `<details><summary>raw output</summary><pre class="raw">${esc(o.raw)}</pre></details>`;
    return html + '</td></tr>';
  }

  function detail(it) {
    let html = '<div class="detail-body">';
    const labels = [['item', it.id], ['key', it.key], ['expect', it.expect + (it.answer ? ` (${it.answer})` : '')], ['gold', it.gold], ['sub-hazard', it.sub_hazard], ['locale', it.locale], ['latency', it.latency_ms != null ? it.latency_ms + ' ms' : null], ['stop', it.stop]];
    for (const [axis, v] of Object.entries(it.axes || {})) labels.push([axis, v]);
    html += '<p>' + labels.filter(([, v]) => v).map(([k, v]) => `<strong>${esc(k)}</strong> ${esc(v)}`).join(' · ') + '</p>';
    if (it.turns && it.turns.length) {
      html += '<h4>Conversation</h4>';
      for (const m of it.messages || []) if (m.role === 'system') html += message('system', m.content, 'system');
      it.turns.forEach((t, index) => {
        const who = `round ${t.turn}${t.node ? ' · branch ' + t.node : ''} · ${t.role} (${t.by}${t.model ? ': ' + t.model : ''})${t.dropped ? ' · dropped: ' + t.dropped : ''}`;
        let extra = Object.entries(t.verdicts || {}).map(([j, o]) => `${j}: ${word(o)}`);
        const post = (it.turn_verdicts || []).find((v) => v.index === index);
        if (post) extra = extra.concat(Object.entries(post.verdicts).map(([j, o]) => `${j}: ${word(o)}`));
        html += message(t.role, t.content + (extra.length ? `\n[${extra.join(', ')}]` : ''), who, t.dropped ? ' dropped' : '');
      });
    } else {
      html += '<h4>Messages</h4>';
      for (const m of it.messages || []) html += message(m.role, m.content, m.role);
      if (it.response != null) html += message('assistant', it.response, 'response');
    }
    if (it.error) html += `<p class="error-text"><strong>${esc(it.state)}:</strong> ${esc(it.error)}</p>`;
    const verdicts = Object.entries(it.verdicts || {});
    if (verdicts.length) {
      html += '<h4>Judges</h4><table class="verdicts"><thead><tr><th>judge</th><th>verdict</th><th>details</th></tr></thead><tbody>';
      for (const [j, o] of verdicts) html += outcome(j, o);
      html += '</tbody></table>';
    }
    return html + '</div>';
  }

  function toggle(tr) {
    const next = tr.nextElementSibling;
    if (next && next.classList.contains('detail-row')) {
      next.remove();
      tr.setAttribute('aria-expanded', 'false');
      return;
    }
    const it = items[Number(tr.dataset.index)];
    const row = document.createElement('tr');
    row.className = 'detail-row';
    row.innerHTML = `<td class="detail" colspan="8">${detail(it)}</td>`;
    tr.after(row);
    tr.setAttribute('aria-expanded', 'true');
  }

  window.assayReady = (async () => {
    const start = performance.now();
    try {
      items = await inflate();
    } catch (e) {
      root.innerHTML = `<p class="error-text">The items could not be read: ${esc(e)}</p>`;
      throw e;
    }
    timings.decodeMs = performance.now() - start;
    controls();
    restore();
    run();
    timings.firstRenderMs = performance.now() - start;
    root.dataset.ready = 'true';
  })();
})();
