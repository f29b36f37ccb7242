// The analysts' results page. Plain browser JavaScript, served as is (no build step).
//
// The read key is asked for once per tab and kept in sessionStorage: it goes out
// only in the Authorization header of fetch calls to this origin, never in a URL
// (which ends up in history, logs and Referer headers). Everything shown comes
// from the JSON API and is put in the page with textContent, never as HTML:
// experiment ids and variant keys are whatever tracking clients sent.

const KEY_STORAGE = 'tally.readKey';
const SVG = 'http://www.w3.org/2000/svg';
const ALPHAS = ['0.01', '0.05', '0.1'];
const COLORS = ['#2563eb', '#d97706', '#059669', '#db2777', '#7c3aed', '#0891b2', '#65a30d', '#dc2626'];

const $ = (id) => document.getElementById(id);

class AuthError extends Error {}
class ApiError extends Error {}

// ---------------------------------------------------------------- formatting

const intFormat = new Intl.NumberFormat('en-US');
const fmt = {
  int: (n) => intFormat.format(n),
  pct: (x, digits = 2) => `${(x * 100).toFixed(digits)}%`,
  signedPct: (x, digits = 2) => `${x > 0 ? '+' : ''}${(x * 100).toFixed(digits)}%`,
  signedPp: (x) => `${x > 0 ? '+' : ''}${(x * 100).toFixed(2)} pp`,
  // Three significant digits; tiny p-values in exponent form rather than as 0.000.
  p: (x) => (x !== 0 && x < 0.001 ? x.toExponential(2) : String(Number(x.toPrecision(3)))),
  time: (iso) => new Date(iso).toISOString().replace('T', ' ').replace(/:\d\d\.\d+Z$/, ' UTC'),
};

// ---------------------------------------------------------------- DOM helpers

/** An element with attributes and children (strings become text nodes). */
function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value !== null && value !== undefined && value !== false) node.setAttribute(name, value === true ? '' : String(value));
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

function svg(tag, attributes = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value !== null && value !== undefined) node.setAttribute(name, String(value));
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

/** A table cell whose `data-value` is the exact number from the API (or empty for null), shown formatted. */
function numberCell(field, value, format, extra = {}) {
  return el(
    'td',
    { class: 'num', 'data-field': field, 'data-value': value === null || value === undefined ? '' : String(value), ...extra },
    value === null || value === undefined ? '–' : format(value),
  );
}

function show(section) {
  for (const id of ['key-section', 'list-section', 'results-section']) $(id).hidden = id !== section;
}

function setStatus(text) {
  $('status').textContent = text;
  $('status').hidden = text === '';
}

// ---------------------------------------------------------------- the API

function readKey() {
  return sessionStorage.getItem(KEY_STORAGE);
}

async function api(path) {
  const key = readKey();
  if (!key) throw new AuthError('Enter the project’s read key.');
  const response = await fetch(path, {
    headers: { authorization: `Bearer ${key}`, accept: 'application/json' },
    cache: 'no-store',
    credentials: 'omit',
    referrerPolicy: 'no-referrer',
  });
  const body = await response.json().catch(() => null);
  if (response.status === 401 || response.status === 403) throw new AuthError(body?.message ?? 'The key was refused.');
  if (!response.ok) throw new ApiError(body?.message ?? `The API answered ${response.status}.`);
  return body;
}

const experimentPath = (id, rest) => `/v1/experiments/${encodeURIComponent(id)}/${rest}`;

// ---------------------------------------------------------------- the key form

function askForKey(message) {
  sessionStorage.removeItem(KEY_STORAGE);
  $('forget-key').hidden = true;
  show('key-section');
  setStatus('');
  $('key-error').textContent = message ?? '';
  $('key-error').hidden = !message;
  $('read-key').value = '';
  $('read-key').focus();
}

$('key-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const key = $('read-key').value.trim();
  if (key === '') return;
  sessionStorage.setItem(KEY_STORAGE, key);
  $('read-key').value = '';
  void load();
});

$('forget-key').addEventListener('click', () => askForKey());

// ---------------------------------------------------------------- routing

/** The experiment id of a `/experiments/<id>` URL (percent-decoded), or null for the list. */
function experimentIdOfPage() {
  const match = /^\/experiments\/(.+?)\/?$/.exec(location.pathname);
  if (!match) return null;
  try {
    return decodeURIComponent(match[1]);
  } catch {
    return null;
  }
}

async function load() {
  if (!readKey()) return askForKey();
  $('forget-key').hidden = false;
  setStatus('Loading…');
  try {
    const id = experimentIdOfPage();
    if (id === null) await loadList();
    else await loadExperiment(id);
    setStatus('');
  } catch (error) {
    if (error instanceof AuthError) return askForKey(error.message);
    setStatus(error instanceof ApiError ? error.message : `Something went wrong: ${error.message}`);
  }
}

// ---------------------------------------------------------------- the list

async function loadList() {
  const { experiments } = await api('/v1/experiments');
  const body = $('experiments').tBodies[0];
  body.replaceChildren(
    ...experiments.map((e) =>
      el(
        'tr',
        { 'data-experiment': e.experimentId },
        el('td', {}, el('a', { href: `/experiments/${encodeURIComponent(e.experimentId)}` }, e.experimentId)),
        numberCell('exposedSessions', e.exposedSessions, fmt.int),
        numberCell('excludedSessions', e.excludedSessions, fmt.int),
        el('td', {}, e.variants.map((v) => `${v.variantKey} (${fmt.int(v.sessions)})`).join(', ')),
        el('td', {}, fmt.time(e.lastExposureAt)),
      ),
    ),
  );
  if (experiments.length === 0) body.append(el('tr', {}, el('td', { colspan: 5 }, 'No experiment has exposures yet.')));
  show('list-section');
}

// ---------------------------------------------------------------- one experiment

function pageOptions() {
  const query = new URLSearchParams(location.search);
  return {
    goal: query.get('goal') || '',
    control: query.get('control') || '',
    alpha: query.get('alpha') || '',
    interval: query.get('interval') || '',
  };
}

/** The options live in the page's query string (shareable, and free of secrets); the key never does. */
function setPageOptions(options) {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(options)) if (value) query.set(name, value);
  const search = query.toString();
  history.replaceState(null, '', `${location.pathname}${search ? `?${search}` : ''}`);
}

$('options').addEventListener('submit', (event) => {
  event.preventDefault();
  setPageOptions({
    goal: $('opt-goal').value.trim(),
    control: $('opt-control').value,
    alpha: $('opt-alpha').value === '0.05' ? '' : $('opt-alpha').value,
    interval: $('opt-interval').value,
  });
  void load();
});
for (const id of ['opt-control', 'opt-alpha', 'opt-interval']) {
  $(id).addEventListener('change', () => $('options').requestSubmit());
}

async function loadExperiment(id) {
  const options = pageOptions();
  const query = new URLSearchParams();
  if (options.goal) query.set('goal', options.goal);
  if (options.control) query.set('control', options.control);
  if (options.alpha) query.set('alpha', options.alpha);
  const seriesQuery = new URLSearchParams(options.goal ? { goal: options.goal } : {});

  const [results, settings, daily] = await Promise.all([
    api(experimentPath(id, `results?${query}`)),
    api(experimentPath(id, 'settings')),
    api(experimentPath(id, `timeseries?${new URLSearchParams({ ...Object.fromEntries(seriesQuery), interval: options.interval || 'day' })}`)),
  ]);
  // "auto": by day, unless the experiment has run for no more than about three days; then by hour.
  let series = daily;
  if (!options.interval && Math.max(0, ...daily.variants.map((v) => v.points.length)) <= 4) {
    series = await api(experimentPath(id, `timeseries?${new URLSearchParams({ ...Object.fromEntries(seriesQuery), interval: 'hour' })}`));
  }

  document.title = `${settings.name ?? id} · Tally`;
  $('title').textContent = settings.name ?? id;
  $('subtitle').textContent =
    `${settings.name ? `${id} · ` : ''}${results.goal === null ? 'conversions of any goal' : `goal “${results.goal}”`} · ` +
    `numbers as of ${fmt.time(results.asOf)}`;

  renderOptions(results, settings, options, series.interval);
  renderAlerts(results);
  renderVariants(results);
  renderChart(series);
  show('results-section');
}

function renderOptions(results, settings, options, interval) {
  $('opt-goal').value = options.goal;
  const configured = settings.control ? `configured (${settings.control})` : 'none configured';
  $('opt-control').replaceChildren(
    el('option', { value: '' }, `default: ${configured}`),
    ...results.variants.map((v) => el('option', { value: v.variantKey }, v.variantKey)),
  );
  $('opt-control').value = options.control;
  const alphas = ALPHAS.includes(String(results.alpha)) ? ALPHAS : [...ALPHAS, String(results.alpha)];
  $('opt-alpha').replaceChildren(...alphas.map((a) => el('option', { value: a }, `${a} (${fmt.pct(1 - Number(a), 0)} intervals)`)));
  $('opt-alpha').value = String(results.alpha);
  $('opt-interval').value = options.interval;
  $('opt-interval').title = `Showing ${interval}ly cohorts`;
}

function renderAlerts(results) {
  const alerts = [];
  const { srm, multipleExposure, baseline } = results;
  if (srm.flagged) {
    const shares = srm.variants
      .map((v) => `${v.variantKey}: ${v.observedShare === null ? '–' : fmt.pct(v.observedShare, 1)} of sessions, expected ${fmt.pct(v.expectedShare, 1)}`)
      .join('; ');
    alerts.push(
      el(
        'div',
        { class: 'alert', role: 'alert', id: 'srm-warning' },
        el('strong', {}, 'Sample ratio mismatch. '),
        `The sessions are not split as ${srm.weightsSource === 'settings' ? 'the configured weights say' : 'expected (equal shares)'}` +
          `${srm.pValue === null ? '' : ` (p = ${fmt.p(srm.pValue)}, flagged below ${srm.threshold})`}: ${shares}. ` +
          `${srm.reason ? `${srm.reason} ` : ''}Assignment or tracking is likely broken; do not trust the comparisons until it is explained.`,
      ),
    );
  }
  if (multipleExposure.excludedSessions > 0) {
    alerts.push(
      el(
        'div',
        { class: multipleExposure.flagged ? 'alert' : 'note', id: 'multiple-exposure' },
        el('strong', {}, multipleExposure.flagged ? 'Many sessions saw several variants. ' : 'Note: '),
        `${fmt.int(multipleExposure.excludedSessions)} of ${fmt.int(multipleExposure.exposedSessions)} exposed sessions ` +
          `(${fmt.pct(multipleExposure.share ?? 0, 1)}) saw more than one variant and are counted in none.` +
          (multipleExposure.flagged ? ' Assignment is not sticky: the variants may no longer be comparable.' : ''),
      ),
    );
  }
  if (baseline.variantKey === null && baseline.reason) {
    alerts.push(el('div', { class: 'note', id: 'no-control' }, baseline.reason));
  }
  $('alerts').replaceChildren(...alerts);
}

function renderVariants(results) {
  const comparisons = results.variants.map((v) => v.comparison).filter(Boolean);
  // One scale for every interval bar, symmetric around 0 so that left of the line is worse.
  const extent = Math.max(
    0.01,
    ...comparisons.flatMap((c) => (c.relativeLift.ci ? [Math.abs(c.relativeLift.ci.lower), Math.abs(c.relativeLift.ci.upper)] : [])),
    ...comparisons.map((c) => Math.abs(c.relativeLift.value ?? 0)),
  );
  $('variants').tBodies[0].replaceChildren(
    ...results.variants.map((v) => {
      const c = v.comparison;
      const isControl = v.variantKey === results.baseline.variantKey;
      return el(
        'tr',
        { 'data-variant': v.variantKey, class: isControl ? 'control' : null },
        el('th', { scope: 'row' }, v.variantKey, isControl ? el('span', { class: 'tag' }, 'control') : null),
        numberCell('sessions', v.sessions, fmt.int),
        numberCell('convertedSessions', v.convertedSessions, fmt.int),
        numberCell('conversionRate', v.conversionRate, (x) => fmt.pct(x)),
        numberCell('absoluteLift', c ? c.absoluteLift.value : null, fmt.signedPp, c?.absoluteLift.reason ? { title: c.absoluteLift.reason } : {}),
        liftCell(c, extent),
        numberCell('pValue', c ? c.relativeLift.pValue ?? c.absoluteLift.pValue : null, fmt.p),
        numberCell('chanceToWin', c ? c.bayesian.chanceToWin : null, (x) => fmt.pct(x, 1), c?.bayesian.reason ? { title: c.bayesian.reason } : {}),
        decisionCell(c, v.comparisonReason, isControl),
      );
    }),
  );
  const level = fmt.pct(1 - results.alpha, 0);
  $('method').textContent =
    `Lifts against ${results.baseline.variantKey === null ? 'no control' : `“${results.baseline.variantKey}”`} with ${level} intervals ` +
    `(Welch’s t test; p-value of the relative lift, or of the absolute one where the relative cannot be computed). ` +
    `Chance to win: Bayesian, flat prior. A decision needs ${fmt.int(results.minimums.sessions)} sessions and ` +
    `${fmt.int(results.minimums.conversions)} converted sessions in each arm. Each variant is compared with the control on its own.`;
}

function liftCell(c, extent) {
  const lift = c?.relativeLift;
  if (!lift || lift.value === null) {
    return el('td', { 'data-field': 'relativeLift', 'data-value': '', class: 'muted' }, c ? (lift?.reason ?? '–') : '–');
  }
  const ci = lift.ci;
  const text = `${fmt.signedPct(lift.value, 1)}${ci ? ` (${fmt.signedPct(ci.lower, 1)} to ${fmt.signedPct(ci.upper, 1)})` : ''}`;
  return el(
    'td',
    {
      'data-field': 'relativeLift',
      'data-value': String(lift.value),
      'data-ci-lower': ci ? String(ci.lower) : '',
      'data-ci-upper': ci ? String(ci.upper) : '',
      class: 'lift',
    },
    intervalBar(lift, c.decision, extent),
    el('span', { class: 'lift-text' }, text),
  );
}

/** A horizontal bar from the interval's lower to upper bound, a dot at the estimate, a line at 0. */
function intervalBar(lift, decision, extent) {
  const width = 160;
  const height = 18;
  const x = (value) => ((Math.max(-extent, Math.min(extent, value)) + extent) / (2 * extent)) * width;
  const color = decision === 'win' ? '#059669' : decision === 'lose' ? '#dc2626' : '#6b7280';
  return svg(
    'svg',
    { class: 'interval', width, height, viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': `interval of the relative lift` },
    svg('line', { x1: x(0), x2: x(0), y1: 0, y2: height, stroke: '#9ca3af', 'stroke-width': 1 }),
    lift.ci
      ? svg('rect', {
          class: 'interval-bar',
          x: x(lift.ci.lower),
          y: height / 2 - 3,
          width: Math.max(1, x(lift.ci.upper) - x(lift.ci.lower)),
          height: 6,
          rx: 3,
          fill: color,
          'fill-opacity': 0.35,
        })
      : null,
    svg('circle', { cx: x(lift.value), cy: height / 2, r: 4, fill: color }),
  );
}

function decisionCell(c, reason, isControl) {
  if (!c) {
    return el('td', { 'data-field': 'decision', 'data-value': '', class: 'muted' }, isControl ? 'baseline' : (reason ?? '–'));
  }
  const slug = c.decision.replace(/ /g, '-');
  return el(
    'td',
    { 'data-field': 'decision', 'data-value': c.decision },
    el('span', { class: `badge ${slug}` }, c.decision),
    el('div', { class: 'reason' }, c.decisionReason),
  );
}

// ---------------------------------------------------------------- the chart

/** Cumulative conversion rate of each variant over its cohorts' first-exposure buckets, as inline SVG. */
function renderChart(series) {
  const figure = $('chart');
  const lines = series.variants.filter((v) => v.points.length > 0);
  if (lines.length === 0) {
    figure.replaceChildren(el('p', { class: 'muted' }, 'No assigned session yet.'));
    return;
  }
  const width = 760;
  const height = 300;
  const margin = { top: 16, right: 20, bottom: 40, left: 56 };
  const times = lines.flatMap((v) => v.points.map((p) => Date.parse(p.bucket)));
  let t0 = Math.min(...times);
  let t1 = Math.max(...times);
  if (t0 === t1) {
    const step = series.interval === 'hour' ? 3_600_000 : 86_400_000;
    t0 -= step / 2;
    t1 += step / 2;
  }
  const top = Math.max(0.01, ...lines.flatMap((v) => v.points.map((p) => p.cumulativeConversionRate))) * 1.1;
  const x = (t) => margin.left + ((t - t0) / (t1 - t0)) * (width - margin.left - margin.right);
  const y = (rate) => height - margin.bottom - (rate / top) * (height - margin.top - margin.bottom);

  const grid = [];
  for (let i = 0; i <= 4; i++) {
    const rate = (top / 4) * i;
    grid.push(
      svg('line', { x1: margin.left, x2: width - margin.right, y1: y(rate), y2: y(rate), stroke: '#e5e7eb' }),
      svg('text', { x: margin.left - 6, y: y(rate) + 4, 'text-anchor': 'end', class: 'axis' }, fmt.pct(rate, 1)),
    );
  }
  const ticks = [...new Set([t0, (t0 + t1) / 2, t1])].map((t) =>
    svg('text', { x: x(t), y: height - margin.bottom + 18, 'text-anchor': 'middle', class: 'axis' }, fmt.time(new Date(t).toISOString())),
  );
  const paths = lines.map((v, i) => {
    const color = COLORS[i % COLORS.length];
    const points = v.points.map((p) => [x(Date.parse(p.bucket)), y(p.cumulativeConversionRate)]);
    const last = v.points[v.points.length - 1];
    return svg(
      'g',
      { class: 'series', 'data-variant': v.variantKey, 'data-last-rate': String(last.cumulativeConversionRate) },
      svg('polyline', { points: points.map((pt) => pt.join(',')).join(' '), fill: 'none', stroke: color, 'stroke-width': 2 }),
      ...v.points.map((p, j) =>
        svg(
          'circle',
          { cx: points[j][0], cy: points[j][1], r: 3, fill: color },
          svg(
            'title',
            {},
            `${v.variantKey}, first exposed by ${fmt.time(p.bucket)}: ${fmt.int(p.cumulativeConvertedSessions)} of ` +
              `${fmt.int(p.cumulativeSessions)} sessions converted (${fmt.pct(p.cumulativeConversionRate)})`,
          ),
        ),
      ),
    );
  });
  const chart = svg(
    'svg',
    { viewBox: `0 0 ${width} ${height}`, class: 'chart', role: 'img', 'aria-label': 'Cumulative conversion rate per variant over time' },
    ...grid,
    svg('line', { x1: margin.left, x2: width - margin.right, y1: y(0), y2: y(0), stroke: '#9ca3af' }),
    ...ticks,
    ...paths,
  );
  const legend = el(
    'figcaption',
    { class: 'legend' },
    ...lines.map((v, i) => el('span', { class: `swatch c${i % COLORS.length}` }, v.variantKey)),
    el('span', { class: 'muted' }, ` · sessions by the ${series.interval} of their first exposure; each point counts every session exposed up to it`),
  );
  figure.replaceChildren(chart, legend);
}

void load();
