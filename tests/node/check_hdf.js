// Parses an HDF exec-JSON file with MITRE's inspecjs (what Heimdall uses) and prints, as one JSON line,
// the inspecjs version, the document version it recognised, and each control's status as Heimdall
// computes it. Used by tests/test_report_hdf.py; exits 2 with one line on stderr when inspecjs rejects it.
'use strict';
const fs = require('fs');
const inspecjs = require('inspecjs');

const text = fs.readFileSync(process.argv[2], 'utf8');
let converted;
try {
  converted = inspecjs.convertFile(text, true);
} catch (e) {
  process.stderr.write(`inspecjs could not parse ${process.argv[2]}: ${e}\n`);
  process.exit(2);
}
const exec = converted['1_0_ExecJson'];
if (!exec) {
  process.stderr.write(`inspecjs did not read ${process.argv[2]} as an exec JSON (got ${Object.keys(converted)})\n`);
  process.exit(2);
}
const controls = {};
for (const profile of exec.profiles) {
  for (const c of profile.controls) {
    const wrapped = inspecjs.hdfWrapControl(c);
    controls[c.id] = {
      status: wrapped.status,
      severity: wrapped.severity,
      waived: wrapped.waived,
      attested: wrapped.attested,
      segments: (wrapped.segments || []).map((s) => s.status),
    };
  }
}
const version = require('inspecjs/package.json').version;
process.stdout.write(JSON.stringify({inspecjs: version, profiles: exec.profiles.length, controls}) + '\n');
