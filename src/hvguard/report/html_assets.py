"""The HTML report's fixed assets: the status palette, the style sheet and the Content Security Policy
that allows exactly it and the report's script (:mod:`hvguard.report.html_script`, by hash) and nothing
else."""

from __future__ import annotations

import base64
import hashlib

from hvguard.report.html_script import SCRIPT

#: Background colour per status; white text on each is at least 4.5:1.
COLOUR: dict[str, str] = {
    "pass": "#1b6e2a",
    "fail": "#b00020",
    "warn": "#8a4600",
    "manual": "#0b5cad",
    "not_applicable": "#555555",
    "error": "#6a1b9a",
    "waived": "#1f4e79",
}

#: The colour of each verdict, borrowed from the status it corresponds to.
VERDICT_COLOUR: dict[str, str] = {
    "compliant": "pass",
    "not_compliant": "fail",
    "not_assessed": "not_applicable",
}

CSS = (
    """
:root{--fg:#1a1a1a;--muted:#4a4a4a;--bg:#fff;--line:#b8b8b8;--soft:#f3f3f3;--link:#0b57d0;--focus:#1a4fd6}
*{box-sizing:border-box}
html{background:var(--bg)}
body{margin:0;color:var(--fg);background:var(--bg);
 font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",Arial,sans-serif}
.wrap{max-width:96rem;margin:0 auto;padding:0 1rem}
.skip{position:absolute;left:-9999px;top:0;background:#fff;color:var(--link);padding:.5rem 1rem;z-index:10}
.skip:focus{left:.5rem;top:.5rem}
a{color:var(--link);text-decoration:underline}
:focus-visible{outline:3px solid var(--focus);outline-offset:2px}
header.top{border-bottom:1px solid var(--line);padding:.75rem 0}
header.top h1{margin:.25rem 0;font-size:1.6rem}
nav ul{list-style:none;display:flex;flex-wrap:wrap;gap:.25rem 1.25rem;margin:.5rem 0;padding:0}
h2{font-size:1.35rem;margin:1.75rem 0 .5rem;border-bottom:2px solid var(--line)}
h3{font-size:1.15rem;margin:1.25rem 0 .5rem}
table{border-collapse:collapse;margin:.5rem 0 1rem}
th,td{border:1px solid var(--line);padding:.3rem .5rem;text-align:left;vertical-align:top}
thead th{background:var(--soft)}
caption{text-align:left;font-weight:600;padding:.25rem 0}
.full{width:100%}
.badge{display:inline-block;min-width:4.6em;text-align:center;font-weight:700;font-size:.85em;
 padding:.05rem .4rem;border-radius:.25rem;color:#fff;white-space:nowrap}
"""
    + "".join(f".s-{s}{{background:{c}}}" for s, c in COLOUR.items())
    + "".join(f".v-{v}{{background:{COLOUR[s]}}}" for v, s in VERDICT_COLOUR.items())
    + """
.muted{color:var(--muted)}
.banner{border:2px solid #b45309;background:#fffbeb;padding:.5rem .75rem;margin:1rem 0;font-weight:600}
.num{text-align:right;font-variant-numeric:tabular-nums}
details.measure{border:1px solid var(--line);border-radius:.3rem;margin:.5rem 0;padding:0 .75rem}
details.measure>summary{cursor:pointer;padding:.5rem 0;font-weight:600}
details.measure[open]>summary{border-bottom:1px solid var(--line);margin-bottom:.5rem}
details.ev>summary{cursor:pointer;color:var(--link);text-decoration:underline}
dl.meta{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem;margin:.25rem 0 .75rem}
dl.meta dt{font-weight:600}
dl.meta dd{margin:0}
pre{white-space:pre-wrap;overflow-wrap:anywhere;background:var(--soft);border:1px solid var(--line);
 padding:.5rem;margin:.25rem 0}
code{font-family:ui-monospace,"DejaVu Sans Mono",Menlo,Consolas,monospace;font-size:.9em;
 overflow-wrap:anywhere}
td p{margin:.15rem 0 .35rem}
.label{font-weight:600;margin:.5rem 0 0}
.waiver,.attest{border-left:4px solid var(--line);padding-left:.5rem}
table.kv{margin:.25rem 0;font-size:.92em}
table.kv th{font-weight:600;background:var(--soft)}
.scroll{overflow:auto;max-height:80vh;border:1px solid var(--line)}
.scroll table{margin:0}
.matrix th,.matrix td{padding:.15rem .3rem;font-size:.9em}
.matrix thead th{position:sticky;top:0;z-index:1}
.bar{vertical-align:middle;margin-right:.5rem}
form.filters{display:flex;flex-wrap:wrap;gap:.75rem 1.5rem;align-items:flex-end}
form.filters fieldset{border:1px solid var(--line);padding:.25rem .75rem .5rem;margin:0}
form.filters label{margin-right:.75rem;white-space:nowrap}
form.filters select,form.filters input[type=search]{font:inherit;padding:.2rem .3rem;display:block;
 max-width:24rem}
button{font:inherit;padding:.3rem .75rem;cursor:pointer}
[hidden]{display:none!important}
footer{border-top:1px solid var(--line);margin-top:2rem;padding:.75rem 0;color:var(--muted)}
.verdict{font-size:1.2rem;border:2px solid var(--line);padding:.5rem .75rem;margin:.75rem 0}
.verdict .badge{font-size:1rem}
.vlabel{font-weight:700;margin-right:.25rem}
ul.attn{columns:2 28rem;padding-left:1.25rem}
table.chart .bar{display:inline-block}
.print-only{display:none}
p.more{margin:.5rem 0}
@media print{
 body{font-size:9.5pt;line-height:1.3}
 h2{margin:.75rem 0 .25rem}
 th,td{padding:.1rem .3rem}
 td p{margin:0 0 .15rem}
 pre{padding:.1rem .25rem;margin:.1rem 0}
 details.ev>summary{color:var(--muted);text-decoration:none;font-size:.9em}
 table.kv,table.kv tbody{display:block;margin:0;font-size:.9em}
 table.kv tr,table.kv th,table.kv td{display:inline;border:0;padding:0;background:none}
 table.kv th::after{content:": "}
 table.kv tr::after{content:" · "}
 table.kv td pre{display:inline;border:0;padding:0;background:none}
 .label{margin:.15rem 0 0}
 .badge{-webkit-print-color-adjust:exact;print-color-adjust:exact}
 .bar{-webkit-print-color-adjust:exact;print-color-adjust:exact}
 .skip,#filters,nav,p.more,.nojs{display:none!important}
 .print-only{display:block;font-weight:600;border:1px solid var(--line);padding:.25rem .5rem}
 .scroll{overflow:visible;max-height:none;border:0}
 .matrix thead th{position:static}
 details::details-content{content-visibility:visible;display:contents}
 details.measure{break-inside:auto}
 tr{break-inside:avoid}
 a{color:var(--fg)}
}
"""
)


def _csp_hash(text: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()


#: Nothing may be loaded from anywhere; only our own style block and script (by hash) may apply.
CSP = (
    "default-src 'none'; "
    f"style-src '{_csp_hash(CSS)}'; "
    f"script-src '{_csp_hash(SCRIPT)}'; "
    "img-src data:; base-uri 'none'; form-action 'none'"
)
