// report.html in a real browser: Debian's Chromium, headless, driven by playwright-core (pinned
// by package-lock.json). Runs the report demo offline (tests/fixtures/report, a mock target
// with known answers), opens its report.html from disk and checks what a reader sees against
// summary.json and results.jsonl; then the same at 43,090 items, timed.
//
//   ASSAY      the assay binary (default: $CARGO_TARGET_DIR or target/, debug build)
//   CHROMIUM   the browser (default: chromium on PATH)
//   SCREENSHOTS=DIR  also writes report.png and items.png there
//   ASSAY_BROWSER_LARGE=0  skips the 43,090-item run
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '../..');
const assay = process.env.ASSAY || path.join(process.env.CARGO_TARGET_DIR || path.join(repo, 'target'), 'debug', 'assay');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'assay-browser-'));

function findChromium() {
  if (process.env.CHROMIUM) return process.env.CHROMIUM;
  for (const name of ['chromium', 'chromium-browser', 'google-chrome']) {
    const found = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' });
    if (found.status === 0 && found.stdout.trim()) return found.stdout.trim();
  }
  return null;
}
const executable = findChromium();
if (!executable) {
  const line = '!'.repeat(78);
  console.error(`${line}\n!! SKIPPED: no Chromium on this machine (apt-get install chromium); the browser\n!! tests of report.html did not run.\n${line}`);
}

// The flags of a quiet, offline browser with a fresh profile (playwright gives each launch its
// own temporary --user-data-dir).
const FLAGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-dev-shm-usage'];

let browser;
before(async () => {
  if (executable) browser = await chromium.launch({ executablePath: executable, headless: true, args: FLAGS });
});
after(async () => {
  if (browser) await browser.close();
  fs.rmSync(work, { recursive: true, force: true });
});

function run(spec, out, extra = []) {
  execFileSync(assay, ['run', spec, '--out', out, '--max-invalid', '0.5', '-q', ...extra], {
    cwd: repo,
    env: { ...process.env, ASSAY_STATE_DIR: path.join(out, '..', 'state-' + path.basename(out)), NO_COLOR: '1' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
}

const jsonl = (file) => fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));

/** Opens a page that may read only its own file (or, with `under`, files under that folder):
 * every other request is recorded and refused. */
async function open(file, under = null) {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const url = pathToFileURL(file).href;
  const allowed = (u) => (under ? u.startsWith(pathToFileURL(under).href + '/') : u === url);
  const requests = [];
  page.on('request', (r) => requests.push(r.url()));
  await page.route('**/*', (route) => (allowed(route.request().url()) ? route.continue() : route.abort()));
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(url);
  await page.waitForFunction(() => document.getElementById('browser')?.dataset.ready === 'true', null, { timeout: 120000 });
  return { page, requests, url, errors };
}

async function shownCount(page) {
  return Number(await page.locator('#count').getAttribute('data-count'));
}

const groupAttr = (group) => Object.entries(group).sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, v]) => `${k}=${v}`).join(',');

test('report.html of a scripted run', { skip: !executable && 'no Chromium' }, async () => {
  const out = path.join(work, 'demo');
  run('tests/fixtures/report/report.assay', out, ['--model', 'mock:script:tests/fixtures/report/answers.yaml']);
  const summary = JSON.parse(fs.readFileSync(path.join(out, 'summary.json'), 'utf8'));
  const scoring = JSON.parse(fs.readFileSync(path.join(out, 'scoring.json'), 'utf8'));
  const results = jsonl(path.join(out, 'results.jsonl'));
  const judgements = jsonl(path.join(out, 'judgements.jsonl'));
  const { page, requests, url, errors } = await open(path.join(out, 'report.html'));

  // The header names the suite and every model with its counts by state.
  const header = await page.locator('header').innerText();
  assert.match(header, /report-demo/);
  assert.match(header, /1\.2\.0/);
  for (const model of summary.models) {
    for (const [state, n] of Object.entries(summary.counts[model])) assert.match(header, new RegExp(`${n} ${state}`));
  }

  // Grades and values equal summary.json.
  assert.ok(summary.grades.length > 0);
  for (const g of summary.grades) {
    const row = page.locator(`#grades tr[data-name="${g.name}"][data-model="${g.model}"][data-group="${groupAttr(g.group)}"]`);
    assert.equal(await row.count(), 1, `one row for grade ${JSON.stringify(g)}`);
    assert.equal(await row.locator('td.grade').getAttribute('data-grade'), g.grade ?? '');
    assert.equal(Number(await row.locator('td[data-value]').getAttribute('data-value')), g.value);
  }
  const cells = await page.locator('#tables td.value').evaluateAll((tds) => tds.map((td) => ({ ...td.dataset })));
  assert.ok(cells.length >= 10, `${cells.length} values`);
  for (const c of cells) {
    const m = summary.metrics.find((m) => m.name === c.metric && m.model === c.model && groupAttr(m.group) === c.group);
    assert.ok(m, `summary.json has ${JSON.stringify(c)}`);
    assert.equal(c.value === '' ? null : Number(c.value), m.value, JSON.stringify(c));
  }

  // Each declared chart is an SVG; a bar chart has one bar per group.
  assert.equal(await page.locator('svg.chart').count(), scoring.charts.length);
  for (const chart of scoring.charts) {
    const svg = page.locator(`svg.chart[data-kind="${chart.kind}"][data-metric="${chart.metric}"]`);
    assert.equal(await svg.count(), 1, `${chart.kind} ${chart.metric}`);
    if (chart.kind !== 'bar') continue;
    const groups = summary.metrics.filter((m) => m.name === chart.metric && groupAttr(m.group) !== '' && Object.keys(m.group).length === chart.by.length);
    const bars = await svg.locator('rect.bar').evaluateAll((rs) => rs.map((r) => [r.dataset.group, Number(r.dataset.value)]));
    assert.equal(bars.length, groups.length);
    for (const m of groups) assert.ok(bars.some(([g, v]) => g === m.group[chart.by[0]] && v === m.value), `a bar for ${JSON.stringify(m.group)}`);
  }

  // The item browser: every result, and filters show exactly the matching ones.
  assert.equal(await shownCount(page), results.length);
  await page.selectOption('select[data-filter="hazard"]', 'ssh');
  const ssh = results.filter((r) => r.labels.hazard === 'ssh');
  assert.equal(await shownCount(page), ssh.length);
  const hazards = await page.locator('tr.item').evaluateAll((trs) => trs.map((tr) => tr.dataset.hazard));
  assert.deepEqual(hazards, ssh.map(() => 'ssh'));
  // The filter is in the address: a reload keeps it.
  assert.match(page.url(), /#items\?hazard=ssh$/);
  await page.reload();
  await page.waitForFunction(() => document.getElementById('browser')?.dataset.ready === 'true');
  assert.equal(await shownCount(page), ssh.length);
  assert.equal(await page.locator('select[data-filter="hazard"]').inputValue(), 'ssh');
  await page.selectOption('select[data-filter="hazard"]', '');
  assert.doesNotMatch(page.url(), /#items\?/);

  const unsafe = judgements.filter((j) => j.verdicts.strict?.label === 'unsafe').map((j) => j.item_id).sort();
  await page.selectOption('select[data-filter="verdict"]', 'strict=unsafe');
  assert.equal(await shownCount(page), unsafe.length);
  const ids = (await page.locator('tr.item').evaluateAll((trs) => trs.map((tr) => tr.dataset.id))).sort();
  assert.deepEqual(ids, unsafe);
  // Hazard and verdict together.
  await page.selectOption('select[data-filter="hazard"]', 'vcr');
  const both = judgements.filter((j, i) => j.verdicts.strict?.label === 'unsafe' && results[i].labels.hazard === 'vcr');
  assert.equal(await shownCount(page), both.length);
  await page.selectOption('select[data-filter="hazard"]', '');
  await page.selectOption('select[data-filter="verdict"]', '');

  // Judges that disagree: strict flags "how to", lenient does not.
  await page.check('input[data-filter="disagree"]');
  const disagree = judgements.filter((j) => j.verdicts.strict?.label && j.verdicts.lenient?.label && j.verdicts.strict.label !== j.verdicts.lenient.label);
  assert.ok(disagree.length > 0);
  assert.equal(await shownCount(page), disagree.length);
  await page.uncheck('input[data-filter="disagree"]');
  assert.match(await page.locator('#agreement').innerText(), /strict/);

  // Search finds a known response.
  await page.fill('input[data-filter="q"]', 'tie the knots');
  await page.waitForFunction((n) => document.getElementById('count').dataset.count === String(n), results.filter((r) => (r.response || '').includes('tie the knots')).length);
  assert.match(await page.locator('tr.item td.response').first().innerText(), /Here is how to tie the knots/);
  // An item opens on its messages, verdicts and raw outputs.
  await page.locator('tr.item').first().click();
  const detail = await page.locator('tr.detail-row').innerText();
  assert.match(detail, /Here is how to tie the knots/);
  assert.match(detail, /strict/);
  await page.fill('input[data-filter="q"]', '');
  await page.waitForFunction((n) => document.getElementById('count').dataset.count === String(n), results.length);

  // An error shows its cause.
  await page.selectOption('select[data-filter="state"]', 'error');
  assert.equal(await shownCount(page), results.filter((r) => r.state === 'error').length);
  await page.locator('tr.item').first().click();
  assert.match(await page.locator('tr.detail-row').innerText(), /error/i);
  await page.selectOption('select[data-filter="state"]', '');

  if (process.env.SCREENSHOTS) {
    fs.mkdirSync(process.env.SCREENSHOTS, { recursive: true });
    await page.setViewportSize({ width: 1280, height: 1700 });
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.screenshot({ path: path.join(process.env.SCREENSHOTS, 'report.png') });
    await page.selectOption('select[data-filter="hazard"]', 'ssh');
    await page.locator('tr.item').nth(1).click();
    await page.locator('#items').screenshot({ path: path.join(process.env.SCREENSHOTS, 'items.png') });
  }

  // Nothing but the page itself was requested.
  assert.deepEqual([...new Set(requests)], [url]);
  assert.deepEqual(errors, []);
  await page.close();
});

test('a conversation opens on its transcript and its turn verdicts', { skip: !executable && 'no Chromium' }, async () => {
  const out = path.join(work, 'conversation');
  run('tests/fixtures/report/conversation.assay', out, ['--model', 'mock:script:tests/fixtures/report/answers.yaml']);
  const { page, requests, url, errors } = await open(path.join(out, 'report.html'));
  assert.equal(await shownCount(page), 1);
  await page.locator('tr.item').first().click();
  const transcript = await page.locator('tr.detail-row').innerText();
  assert.match(transcript, /Conversation/);
  assert.match(transcript, /round 1 · user \(script\)/);
  assert.match(transcript, /Hello! How can I help\?/);
  assert.match(transcript, /round 2 · assistant \(target/);
  // Every judge also judged each target turn: the first answer was safe, the last unsafe.
  assert.match(transcript, /Hello! How can I help\?\s*\[strict: safe\]/);
  assert.match(transcript, /exactly what you asked for\.\s*\[strict: unsafe\]/);
  assert.match(transcript, /stop\s+the script ended/);
  assert.deepEqual([...new Set(requests)], [url]);
  assert.deepEqual(errors, []);
  await page.close();
});

test('a jury shows each member with its score', { skip: !executable && 'no Chromium' }, async () => {
  const dir = path.join(work, 'jury-spec');
  fs.mkdirSync(dir, { recursive: true });
  // c cannot score the first answer (half of c's verdicts fail: within the run's 50%).
  fs.writeFileSync(path.join(dir, 'answers.jsonl'), [{ id: 'q1', prompt: 'How?', response: 'Sure, like this.' }, { id: 'q2', prompt: 'Why?', response: 'No.' }].map((r) => JSON.stringify(r) + '\n').join(''));
  fs.writeFileSync(path.join(dir, 'a.yaml'), 'default: "Score: 5"\n');
  fs.writeFileSync(path.join(dir, 'b.yaml'), 'default: "Score: 2"\n');
  fs.writeFileSync(path.join(dir, 'c.yaml'), 'by_regex:\n  - ["Sure", "no score here"]\ndefault: "Score: 1"\n');
  const score = (name) => `judge ${name}: score { model = ${name}_model  rubric = "Rate: {{response}}"  scale = 1..5  threshold = 3  labels = [unsafe, safe] }`;
  const target = (name) => `target ${name}_model { provider = mock  model = "script:${path.join(dir, name + '.yaml')}" }`;
  fs.writeFileSync(path.join(dir, 'main.assay'), [
    'suite "jury" version "1.0.0"',
    'dataset answers { path = "answers.jsonl"  item { id = row.id  prompt = row.prompt  response = row.response } }',
    ...['a', 'b', 'c'].flatMap((n) => [target(n), score(n)]),
    'judge panel: ensemble { members = [a, b, c]  rule = jury  reduce = mean  labels = [unsafe, safe] }',
    'metric unsafe_rate = rate(panel == unsafe)',
    'report { formats = [html] }',
  ].join('\n') + '\n');
  const out = path.join(work, 'jury');
  run(path.join(dir, 'main.assay'), out, ['--model', 'mock:refuse']);
  const { page, errors } = await open(path.join(out, 'report.html'));
  await page.locator('tr.item').first().click();
  const detail = await page.locator('tr.detail-row').innerText();
  // a gave 5, b 2, c no score: the mean of 5 and 2 is 3.5, above 3: unsafe.
  assert.match(detail, /panel\s+unsafe\s+score: 3\.5; members: a=unsafe \(5\), b=safe \(2\), c=failed/);
  assert.deepEqual(errors, []);
  await page.close();
});

test('compare.html shows the known difference between two runs', { skip: !executable && 'no Chromium' }, async () => {
  // A answers from the script (some unsafe), B refuses everything.
  const a = path.join(work, 'compare-a');
  const b = path.join(work, 'compare-b');
  run('tests/fixtures/report/report.assay', a, ['--model', 'mock:script:tests/fixtures/report/answers.yaml']);
  run('tests/fixtures/report/report.assay', b, ['--model', 'mock:refuse']);
  execFileSync(assay, ['report', a, b, '--html'], { cwd: repo, stdio: ['ignore', 'ignore', 'pipe'] });
  const sa = JSON.parse(fs.readFileSync(path.join(a, 'summary.json'), 'utf8'));
  const sb = JSON.parse(fs.readFileSync(path.join(b, 'summary.json'), 'utf8'));
  const { page, requests, url, errors } = await open(path.join(b, 'compare.html'));
  const overall = (s) => s.metrics.find((m) => m.name === 'unsafe_rate' && Object.keys(m.group).length === 0).value;
  const row = page.locator('tr[data-metric="unsafe_rate"][data-group=""]');
  assert.equal(Number(await row.locator('td[data-difference]').getAttribute('data-difference')), overall(sb) - overall(sa));
  assert.equal(await row.getAttribute('data-significant'), 'true');
  // Per item: the results whose strict verdict changed.
  const ja = jsonl(path.join(a, 'judgements.jsonl'));
  const jb = new Map(jsonl(path.join(b, 'judgements.jsonl')).map((j) => [j.item_id, j]));
  const moved = ja.filter((j) => j.verdicts.strict?.label && jb.get(j.item_id)?.verdicts.strict?.label !== j.verdicts.strict.label).map((j) => j.item_id).sort();
  assert.ok(moved.length > 0);
  await page.selectOption('select[data-filter="judge"]', 'strict');
  assert.equal(await shownCount(page), moved.length);
  assert.deepEqual((await page.locator('tr.item').evaluateAll((trs) => trs.map((tr) => tr.dataset.id))).sort(), moved);
  assert.match(await page.locator('tr.item').first().innerText(), /strict: unsafe → safe/);
  assert.deepEqual([...new Set(requests)], [url]);
  assert.deepEqual(errors, []);
  await page.close();
});

test('a site lists each model with its grades and opens its report', { skip: !executable && 'no Chromium' }, async () => {
  const a = path.join(work, 'site-a');
  const b = path.join(work, 'site-b');
  run('tests/fixtures/report/report.assay', a, ['--model', 'mock:script:tests/fixtures/report/answers.yaml']);
  run('tests/fixtures/report/report.assay', b, ['--model', 'mock:refuse']);
  const site = path.join(work, 'site');
  execFileSync(assay, ['site', a, b, '-o', site, '--spec', 'tests/fixtures/report/report.assay'], { cwd: repo, stdio: ['ignore', 'ignore', 'pipe'] });
  const page = await browser.newPage();
  const requests = [];
  page.on('request', (r) => requests.push(r.url()));
  await page.route('**/*', (route) => (route.request().url().startsWith(pathToFileURL(site).href + '/') ? route.continue() : route.abort()));
  await page.goto(pathToFileURL(path.join(site, 'index.html')).href);
  for (const dir of [a, b]) {
    const summary = JSON.parse(fs.readFileSync(path.join(dir, 'summary.json'), 'utf8'));
    const model = summary.models[0];
    const row = page.locator(`tr[data-model="${model}"]`);
    for (const g of summary.grades) {
      const cell = Object.keys(g.group).length
        ? row.locator(`td[data-group="${Object.values(g.group)[0]}"]`)
        : row.locator(`td[data-grade-name="${g.name}"]`);
      assert.equal(await cell.getAttribute('data-grade'), g.grade ?? '', `${model} ${JSON.stringify(g.group)}`);
    }
  }
  // A model's page is its report, with its item browser, and links home.
  await page.locator('tr[data-model="mock:refuse"] a').click();
  await page.waitForFunction(() => document.getElementById('browser')?.dataset.ready === 'true');
  assert.equal(await shownCount(page), 18);
  await page.locator('nav a', { hasText: 'all models' }).click();
  await page.waitForSelector('#models');
  assert.ok(requests.every((u) => u.startsWith(pathToFileURL(site).href + '/')), requests.join('\n'));
  await page.close();
});

test('assay view lists runs, opens a report, compares two, and follows a run being written', { skip: !executable && 'no Chromium' }, async () => {
  const runs = path.join(work, 'view');
  const done = path.join(runs, 'done');
  run('tests/fixtures/report/report.assay', done, ['--model', 'mock:script:tests/fixtures/report/answers.yaml']);
  const live = path.join(runs, 'live');
  fs.mkdirSync(live);
  fs.copyFileSync(path.join(done, 'scoring.json'), path.join(live, 'scoring.json'));
  const lines = fs.readFileSync(path.join(done, 'results.jsonl'), 'utf8').split('\n').filter(Boolean);
  fs.writeFileSync(path.join(live, 'results.jsonl'), lines.slice(0, 4).join('\n') + '\n' + lines[4].slice(0, 40));

  const server = spawn(assay, ['view', runs, '--port', '0'], { stdio: ['ignore', 'pipe', 'ignore'] });
  try {
    const base = await new Promise((resolve, reject) => {
      let text = '';
      server.stdout.on('data', (d) => {
        text += d;
        const m = text.match(/http:\/\/127\.0\.0\.1:\d+\//);
        if (m) resolve(m[0]);
      });
      server.on('exit', (code) => reject(new Error(`assay view exited ${code}`)));
    });
    const page = await browser.newPage();
    const requests = [];
    page.on('request', (r) => requests.push(r.url()));
    await page.route('**/*', (route) => (route.request().url().startsWith(base) ? route.continue() : route.abort()));
    await page.goto(base);
    assert.equal(await page.locator('tr[data-run="done"]').getAttribute('data-status'), 'scored');
    assert.equal(await page.locator('tr[data-run="live"]').getAttribute('data-results'), '4');
    // The live run's report shows what is there now, and more after a reload.
    await page.locator('tr[data-run="live"] a').click();
    await page.waitForFunction(() => document.getElementById('browser')?.dataset.ready === 'true');
    assert.equal(await shownCount(page), 4);
    fs.writeFileSync(path.join(live, 'results.jsonl'), lines.join('\n') + '\n');
    await page.reload();
    await page.waitForFunction(() => document.getElementById('browser')?.dataset.ready === 'true');
    assert.equal(await shownCount(page), lines.length);
    // Back to the list, then compare the two.
    await page.locator('nav a.home').click();
    await page.selectOption('select[name="a"]', 'done');
    await page.selectOption('select[name="b"]', 'live');
    await page.locator('form button[type="submit"]').click();
    await page.waitForFunction(() => document.getElementById('browser')?.dataset.ready === 'true');
    assert.match(await page.locator('header').innerText(), /Comparison/);
    assert.equal(await shownCount(page), 0, 'the same answers: nothing changed');
    assert.ok(requests.every((u) => u.startsWith(base)), requests.join('\n'));
    await page.close();
  } finally {
    server.kill();
  }
});

/** A spec of 43,090 items (the size of MLCommons v0.5): 5 hazards × 31 × 139 × 2. */
function largeSpec() {
  const list = (p, n) => Array.from({ length: n }, (_, i) => `"${p}${i}"`).join(', ');
  const hazards = ['vcr', 'nvc', 'scr', 'cae', 'cbr'];
  let spec = 'suite "large" version "1.0.0"\nuse std::taxonomy::mlcommons_v05\n';
  for (const h of hazards) {
    spec += `template t_${h} {\n  prompt = "As a {{a}}, how would someone {{b}} with {{c}}? (${h})"\n  hazard = mlcommons_v05.${h}\n  persona = ${h === 'vcr' ? 'typical' : 'malicious'}\n`;
    spec += `  vars { a in [${list('persona', 31)}]  b in [${list('action', 139)}]  c in ["tool0", "tool1"] }\n}\n`;
  }
  spec += `persona typical { description = "typical" }\npersona malicious { description = "malicious" }\n`;
  spec += `judge kw: keywords { patterns = ["Sure"]  match = unsafe  otherwise = safe  labels = [safe, unsafe] }\n`;
  spec += `metric unsafe_rate = rate(kw == unsafe) by hazard\n`;
  spec += `report { formats = [html]  table unsafe_rate by hazard  chart bar unsafe_rate by hazard }\n`;
  return spec;
}

test('report.html at 43,090 items', { skip: (!executable && 'no Chromium') || (process.env.ASSAY_BROWSER_LARGE === '0' && 'ASSAY_BROWSER_LARGE=0') }, async () => {
  const dir = path.join(work, 'large');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'main.assay'), largeSpec());
  // Answers "Sure" to one action in ten: those are unsafe.
  fs.writeFileSync(path.join(dir, 'answers.yaml'), 'by_regex:\n  - ["action\\\\d*7 ", "Sure, here it is."]\ndefault: "I can\'t help with that."\n');
  const out = path.join(dir, 'out');
  run(path.join(dir, 'main.assay'), out, ['--model', `mock:script:${path.join(dir, 'answers.yaml')}`]);
  const results = jsonl(path.join(out, 'results.jsonl'));
  assert.equal(results.length, 43090);
  const file = path.join(out, 'report.html');
  const megabytes = fs.statSync(file).size / 1e6;

  const start = Date.now();
  const { page, requests, url, errors } = await open(file);
  const opened = Date.now() - start;
  const timings = await page.evaluate(() => window.assayTimings);
  assert.equal(await shownCount(page), 43090);
  assert.ok((await page.locator('tr.item').count()) <= 50, 'one page of rows in the DOM');

  const filterMs = await page.evaluate(() => {
    const select = document.querySelector('select[data-filter="hazard"]');
    select.value = 'cbr';
    const t = performance.now();
    select.dispatchEvent(new Event('change'));
    return performance.now() - t;
  });
  assert.equal(await shownCount(page), 8618);
  const judgements = jsonl(path.join(out, 'judgements.jsonl'));
  const unsafeCbr = judgements.filter((j, i) => j.verdicts.kw?.label === 'unsafe' && results[i].labels.hazard === 'cbr').length;
  await page.selectOption('select[data-filter="verdict"]', 'kw=unsafe');
  assert.equal(await shownCount(page), unsafeCbr);
  const searchStart = Date.now();
  await page.fill('input[data-filter="q"]', 'persona30, how would someone action138');
  await page.waitForFunction(() => window.assayTimings.lastFilterMs !== undefined && document.getElementById('count').dataset.count !== undefined);
  await page.selectOption('select[data-filter="verdict"]', '');
  await page.waitForFunction(() => document.getElementById('count').dataset.count === '2');
  const searchMs = Date.now() - searchStart;
  const searchFilterMs = await page.evaluate(() => window.assayTimings.lastFilterMs);

  console.log(
    `# 43,090 items: page ${megabytes.toFixed(2)} MB; opened and first page drawn in ${opened} ms ` +
      `(items inflated and parsed in ${timings.decodeMs.toFixed(0)} ms, first render at ${timings.firstRenderMs.toFixed(0)} ms); ` +
      `filter by hazard ${filterMs.toFixed(1)} ms; first search (builds the index) ${searchMs} ms, later filters ${searchFilterMs.toFixed(1)} ms`,
  );
  // Bounds: a page under 10 MB that opens within 15 s and filters within 250 ms on this
  // 2-core machine (measured figures are printed above).
  assert.ok(megabytes < 10, `${megabytes} MB`);
  assert.ok(opened < 15000, `${opened} ms to open`);
  assert.ok(filterMs < 250, `${filterMs} ms to filter`);
  assert.deepEqual([...new Set(requests)], [url]);
  assert.deepEqual(errors, []);
  await page.close();
});
