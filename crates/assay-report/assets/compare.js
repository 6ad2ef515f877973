// The changed-items browser of compare.html: the results whose state or verdict differs
// between run A and run B, from the page's own compressed block; one page of rows at a time.
(() => {
  'use strict';
  const data = JSON.parse(document.getElementById('assay-data').textContent);
  const root = document.getElementById('browser');
  const PAGE = 50;
  let items = [];
  let shown = [];
  let page = 0;
  const filter = { judge: '', hazard: '', q: '' };
  const esc = (s) => String(s ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);

  async function inflate() {
    const raw = atob(document.getElementById('assay-items').textContent.trim());
    const bytes = new Uint8Array(raw.length);
    for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
    const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream('deflate'));
    return JSON.parse(await new Response(stream).text());
  }

  function select(name, values, label) {
    let html = `<label>${esc(label)}<select data-filter="${name}"><option value="">all</option>`;
    for (const v of values) html += `<option value="${esc(v)}">${esc(name === 'hazard' && data.titles[v] ? `${data.titles[v]} (${v})` : v)}</option>`;
    return html + '</select></label>';
  }

  function controls() {
    const judges = [...new Set(items.flatMap((it) => it.changed))].sort();
    const hazards = [...new Set(items.map((it) => it.hazard))].sort();
    root.innerHTML = '<form class="filters" role="search" onsubmit="return false">' + select('judge', judges, 'changed') + select('hazard', hazards, 'hazard') +
      '<label>search prompts and responses<input type="search" data-filter="q" placeholder="words…"></label></form>' +
      '<p class="status" aria-live="polite"><span id="count"></span></p>' +
      '<table class="items"><colgroup><col style="width:10%"><col style="width:12%"><col style="width:18%"><col style="width:20%"><col style="width:20%"><col style="width:20%"></colgroup>' +
      '<thead><tr><th scope="col">item</th><th scope="col">hazard</th><th scope="col">verdicts A → B</th><th scope="col">prompt</th><th scope="col">A</th><th scope="col">B</th></tr></thead><tbody id="rows"></tbody></table>' +
      '<div class="pager"><button type="button" id="prev">← previous</button><button type="button" id="next">next →</button><span id="page"></span></div>';
    for (const el of root.querySelectorAll('[data-filter]')) {
      const apply = () => {
        const v = el.dataset.filter === 'q' ? el.value.trim().toLowerCase() : el.value;
        if (filter[el.dataset.filter] === v) return;
        filter[el.dataset.filter] = v;
        run();
      };
      el.addEventListener(el.dataset.filter === 'q' ? 'input' : 'change', apply);
    }
    root.querySelector('#prev').addEventListener('click', () => { if (page > 0) { page--; draw(); } });
    root.querySelector('#next').addEventListener('click', () => { if ((page + 1) * PAGE < shown.length) { page++; draw(); } });
  }

  function run() {
    const terms = filter.q ? filter.q.split(/\s+/) : [];
    shown = [];
    items.forEach((it, i) => {
      if (filter.judge && !it.changed.includes(filter.judge)) return;
      if (filter.hazard && it.hazard !== filter.hazard) return;
      if (terms.length) {
        const h = [it.id, it.prompt, it.a.response, it.b.response, it.b.error].filter(Boolean).join('\n').toLowerCase();
        if (!terms.every((t) => h.includes(t))) return;
      }
      shown.push(i);
    });
    page = 0;
    draw();
  }

  function moves(it) {
    return it.changed.map((j) => j === 'state'
      ? `<span class="verdict flag">state: ${esc(it.a.state)} → ${esc(it.b.state)}</span>`
      : `<span class="verdict flag">${esc(j)}: ${esc(it.a.verdicts[j])} → ${esc(it.b.verdicts[j])}</span>`).join(' ');
  }

  function draw() {
    let html = '';
    for (const i of shown.slice(page * PAGE, page * PAGE + PAGE)) {
      const it = items[i];
      html += `<tr class="item" data-id="${esc(it.id)}" data-changed="${esc(it.changed.join(' '))}"><td><code>${esc(it.id.slice(0, 10))}</code></td>` +
        `<td>${esc(data.titles[it.hazard] || it.hazard)}</td><td class="verdicts">${moves(it)}</td>` +
        `<td class="detail">${esc(it.prompt)}</td><td class="detail">${esc(it.a.response ?? '')}</td><td class="detail">${esc(it.b.response ?? it.b.error ?? '')}</td></tr>`;
    }
    root.querySelector('#rows').innerHTML = html || '<tr><td colspan="6" class="note">No changed item matches.</td></tr>';
    const count = root.querySelector('#count');
    count.textContent = `${shown.length} of ${items.length} changed results`;
    count.dataset.count = String(shown.length);
    root.querySelector('#page').textContent = ` page ${page + 1} of ${Math.max(1, Math.ceil(shown.length / PAGE))}`;
  }

  window.assayReady = (async () => {
    items = await inflate();
    controls();
    run();
    root.dataset.ready = 'true';
  })();
})();
