"""The HTML report's one script: filters, a VM's findings on a click of its name, rows of large reports
rendered from their JSON on demand, and the print path (every finding of the filter, expanded).

Progressive enhancement only: a report with its rows inline is complete without it. It reads data-*
attributes and the report's own JSON block, and inserts only HTML that hvguard rendered and escaped (a row
template with the escaped VM name and target put back). Allowed by the CSP by its hash.
"""

from __future__ import annotations

SCRIPT = r"""
(function () {
  'use strict';
  var box = document.getElementById('filters');
  var form = document.getElementById('filter-form');
  if (!box || !form) { return; }
  box.hidden = false;
  var PAGE = 300, VPAGE = 200;
  var LABEL = {pass: 'PASS', fail: 'FAIL', warn: 'WARN', manual: 'MANUAL', not_applicable: 'N/A',
    error: 'ERROR', waived: 'WAIVED'};
  var ORDER = ['error', 'fail', 'warn', 'manual', 'waived', 'pass', 'not_applicable'];
  var src = document.getElementById('hvguard-data');
  var data = src ? JSON.parse(src.textContent) : null;
  var all = function (sel, root) {
    return Array.prototype.slice.call((root || document).querySelectorAll(sel));
  };
  var measures = all('details.measure');
  var sections = all('section.msection');
  var boxes = all('input[name=status]', form);
  var section = document.getElementById('f-section');
  var target = document.getElementById('f-target');
  var subject = document.getElementById('f-subject');
  var out = document.getElementById('filter-count');
  var note = document.getElementById('print-note');
  var none = document.getElementById('none-shown');
  var vmBody = document.getElementById('vm-body');
  var vmMore = document.getElementById('vm-more');
  var exact = null;      // the subject a VM link selected: its findings only, not every name containing it
  var printing = false;
  var saved = [];
  var vLimit = VPAGE;
  all('.nojs').forEach(function (p) { p.hidden = true; });

  function esc(s) {
    return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
      .replace(/"/g, '&quot;').replace(/'/g, '&#x27;');
  }
  function fill(tpl, su, tg) {
    // the reverse of how hvguard cut the row: the target back first, then the VM name
    var name = su.indexOf('vm:') === 0 ? su.slice(3) : su;
    return tpl.split('\u0002').join(esc(tg)).split('\u0001').join(esc(name));
  }

  var groups = measures.map(function (m) {
    return {el: m, id: m.dataset.measure, sec: m.dataset.section, recs: [], shown: [],
      tbody: m.querySelector('tbody'), limit: PAGE, rendered: false, more: null};
  });
  var vms = [];
  if (data) {
    groups.forEach(function (g) {
      (data.m[g.id] || []).forEach(function (r) {
        g.recs.push({st: data.t[r[0]][0], sec: g.sec, tg: data.g[r[2]], su: data.s[r[1]], t: r[0], el: null});
      });
      var p = document.createElement('p');
      p.className = 'more';
      p.hidden = true;
      g.el.appendChild(p);
      g.more = p;
    });
    (data.v || []).forEach(function (r) {
      vms.push({sts: data.t[r[0]][0].split(' '), tg: data.g[r[2]], su: data.s[r[1]], t: r[0], el: null});
    });
  } else {
    groups.forEach(function (g) {
      all('tr.finding', g.el).forEach(function (tr) {
        var d = tr.dataset;
        g.recs.push({st: d.status, sec: d.section, tg: d.target, su: d.subject, el: tr});
      });
    });
    all('tr.vm').forEach(function (tr) {
      var d = tr.dataset;
      vms.push({sts: d.statuses.split(' '), tg: d.target, su: d.subject, el: tr});
    });
  }
  var total = groups.reduce(function (n, g) { return n + g.recs.length; }, 0);

  function moreButton(p, left, what, onClick) {
    p.textContent = '';
    p.hidden = !left;
    if (!left) { return; }
    var b = document.createElement('button');
    b.type = 'button';
    b.textContent = 'Show ' + Math.min(left, what === 'VMs' ? VPAGE : PAGE) + ' more ' + what + ' (' + left +
      ' not shown yet)';
    b.addEventListener('click', onClick);
    p.appendChild(b);
  }
  function renderMeasure(g) {
    if (!data) { return; }
    var n = printing ? g.shown.length : Math.min(g.limit, g.shown.length);
    var html = [];
    for (var i = 0; i < n; i++) { var r = g.shown[i]; html.push(fill(data.t[r.t][1], r.su, r.tg)); }
    g.tbody.innerHTML = html.join('');
    g.rendered = true;
    moreButton(g.more, g.shown.length - n, 'findings', function () { g.limit += PAGE; renderMeasure(g); });
  }
  function renderVms(shown) {
    if (!data || !vmBody) { return; }
    var n = printing ? shown.length : Math.min(vLimit, shown.length);
    var html = [];
    for (var i = 0; i < n; i++) { var r = shown[i]; html.push(fill(data.t[r.t][1], r.su, r.tg)); }
    vmBody.innerHTML = html.join('');
    moreButton(vmMore, shown.length - n, 'VMs', function () { vLimit += VPAGE; apply(); });
  }

  function apply() {
    var want = {};
    boxes.forEach(function (b) { want[b.value] = b.checked; });
    var sec = section.value, tgt = target.value, q = subject.value.trim().toLowerCase();
    var ok = function (st, s, tg, su) {
      return want[st] && (!sec || s === sec) && (!tgt || tg === tgt) &&
        (exact ? su === exact : (!q || su.toLowerCase().indexOf(q) >= 0));
    };
    var shown = 0, omitted = {};
    groups.forEach(function (g) {
      g.shown = [];
      g.recs.forEach(function (r) {
        var yes = ok(r.st, r.sec, r.tg, r.su);
        if (r.el) { r.el.hidden = !yes; }
        if (yes) { g.shown.push(r); } else { omitted[r.st] = (omitted[r.st] || 0) + 1; }
      });
      shown += g.shown.length;
      g.el.hidden = !g.shown.length;
      if (data) {
        if (g.el.open || printing) { renderMeasure(g); }
        else if (g.rendered) { g.tbody.innerHTML = ''; g.rendered = false; g.more.hidden = true; }
      }
    });
    sections.forEach(function (s) { s.hidden = !s.querySelector('details.measure:not([hidden])'); });
    none.hidden = shown > 0;
    var who = function (su) { return exact ? su === exact : (!q || su.toLowerCase().indexOf(q) >= 0); };
    var vshown = vms.filter(function (r) {
      var yes = (!tgt || r.tg === tgt) && who(r.su) && r.sts.some(function (s) { return want[s]; });
      if (r.el) { r.el.hidden = !yes; }
      return yes;
    });
    renderVms(vshown);
    out.textContent = 'Showing ' + shown + ' of ' + total + ' findings and ' + vshown.length + ' of ' +
      vms.length + ' VMs.';
    var picked = ORDER.filter(function (s) { return want[s]; }).map(function (s) { return LABEL[s]; });
    var scope = [picked.length ? 'status ' + picked.join(', ') : 'no status'];
    if (sec) { scope.push('section ' + sec); }
    if (tgt) { scope.push('target ' + tgt); }
    if (exact || q) { scope.push('subject ' + (exact || q)); }
    var left = ORDER.filter(function (s) { return omitted[s]; }).map(function (s) {
      return omitted[s] + ' ' + LABEL[s];
    });
    note.textContent = 'This print shows the ' + shown + ' findings of the filter (' + scope.join('; ') +
      '), each with its evidence and remediation. ' +
      (left.length ? left.join(', ') + ' findings omitted from this print.' : 'No finding is omitted.');
  }

  function showAll() {
    boxes.forEach(function (b) { b.checked = true; });
    section.value = '';
    target.value = '';
    subject.value = '';
    exact = null;
  }
  form.addEventListener('input', function (e) { if (e.target === subject) { exact = null; } apply(); });
  form.addEventListener('change', apply);
  form.addEventListener('submit', function (e) { e.preventDefault(); apply(); });
  form.addEventListener('reset', function () { exact = null; window.setTimeout(apply, 0); });
  document.getElementById('f-attention').addEventListener('click', function () {
    boxes.forEach(function (b) { b.checked = b.dataset.attention === 'yes'; });
    apply();
  });
  document.getElementById('f-all').addEventListener('click', function () { showAll(); apply(); });
  document.getElementById('f-expand').addEventListener('click', function () {
    measures.forEach(function (m) { if (!m.hidden) { m.open = true; } });
  });
  document.getElementById('f-collapse').addEventListener('click', function () {
    measures.forEach(function (m) { m.open = false; });
  });
  groups.forEach(function (g) {
    g.el.addEventListener('toggle', function () { if (g.el.open && !printing) { renderMeasure(g); } });
  });
  // a VM's name (or a target in the chart) shows its findings: every status, that subject or target only
  document.addEventListener('click', function (e) {
    var a = e.target.closest && e.target.closest('a.vmlink, a.tlink');
    if (!a) { return; }
    showAll();
    target.value = a.dataset.target;
    if (a.classList.contains('vmlink')) { exact = a.dataset.subject; subject.value = exact; }
    apply();
    measures.forEach(function (m) { if (!m.hidden && exact) { m.open = true; } });
  });

  // Printing (or saving as PDF) shows what the filter selects, every finding and its evidence expanded
  function beforePrint() {
    if (printing) { return; }
    printing = true;
    saved = all('details').map(function (d) { return [d, d.open]; });
    apply();
    all('details').forEach(function (d) { if (!d.closest('[hidden]')) { d.open = true; } });
  }
  function afterPrint() {
    if (!printing) { return; }
    printing = false;
    saved.forEach(function (s) { s[0].open = s[1]; });
    saved = [];
    apply();
  }
  window.addEventListener('beforeprint', beforePrint);
  window.addEventListener('afterprint', afterPrint);
  if (window.matchMedia) {
    var mq = window.matchMedia('print');
    var onChange = function (e) { if (e.matches) { beforePrint(); } else { afterPrint(); } };
    if (mq.addEventListener) { mq.addEventListener('change', onChange); } else { mq.addListener(onChange); }
  }
  apply();
})();
"""
