"""A 1000-domain libvirt test-driver estate: ``hvguard scan`` wall time ÷ the time to fetch every
domain's XML through libvirt-python in the same venv (goal ≤ 3×).

    .venv/bin/python bench/testdriver_1000.py [--domains 1000]

Both sides are measured the same way — a fresh process that opens the same node file — so interpreter
start-up and the test driver's own parse of the node file count on both sides.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from pathlib import Path

from _timing import HVGUARD, PYTHON, describe, wall

FETCH = """
import libvirt, sys
libvirt.registerErrorHandler(lambda c, e: None, None)
conn = libvirt.open(sys.argv[1])
xml = [d.XMLDesc(libvirt.VIR_DOMAIN_XML_SECURE) for d in conn.listAllDomains(0)]
assert len(xml) == int(sys.argv[2]), len(xml)
"""

DOMAIN = """<domain type='test'>
  <name>bench{i:04d}</name>
  <memory unit='MiB'>{mem}</memory>
  <vcpu>{vcpu}</vcpu>
  <os><type arch='x86_64'>hvm</type></os>
  {cputune}
  <devices>
    <disk type='file' device='disk'>
      <source file='/var/lib/libvirt/images/bench{i:04d}.qcow2'/>
      <target dev='vda' bus='virtio'/>
      {iotune}
    </disk>
    <interface type='network'>
      <source network='default'/>
      {bandwidth}
    </interface>
    <graphics type='vnc' port='-1' autoport='yes' listen='127.0.0.1'/>
  </devices>
</domain>"""


def node_file(n: int) -> str:
    """A test-driver node definition with ``n`` varied domains on a 16-core, 256 GiB host."""
    doms = []
    for i in range(n):
        tuned = i % 2 == 0
        doms.append(
            DOMAIN.format(
                i=i,
                mem=512 + (i % 4) * 512,
                vcpu=1 + i % 4,
                cputune="<cputune><shares>1024</shares><period>100000</period><quota>50000</quota></cputune>"
                if tuned
                else "",
                iotune="<iotune><total_bytes_sec>50000000</total_bytes_sec></iotune>" if tuned else "",
                bandwidth="<bandwidth><inbound average='1000'/><outbound average='1000'/></bandwidth>"
                if tuned
                else "",
            )
        )
    return (
        "<node><cpu><nodes>1</nodes><sockets>1</sockets><cores>16</cores><threads>2</threads>"
        "<active>32</active><mhz>3000</mhz><model>x86_64</model></cpu>"
        f"<memory>{256 * 1024 * 1024}</memory>\n" + "\n".join(doms) + "\n</node>\n"
    )


def main() -> None:
    """Write the node file, then time the plain fetch and the hvguard scan."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--domains", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        node = Path(tmp) / "node.xml"
        node.write_text(node_file(args.domains))
        uri = f"test://{node}"
        fetch = wall([PYTHON, "-c", FETCH, uri, str(args.domains)], args.repeat, ok_codes=(0,))
        os.environ["HVGUARD_DB"] = str(Path(tmp) / "history.sqlite3")  # never the user's own history
        print(describe(f"fetch every domain XML ({args.domains})", fetch))
        for label, extra in (("default (history stored)", []), ("--no-history", ["--no-history"])):
            scan = wall([HVGUARD, "scan", uri, "--format", "json", *extra], args.repeat)
            print(describe(f"hvguard scan --format json, {label} ({args.domains})", scan))
            ratio = statistics.median(scan) / statistics.median(fetch)
            verdict = "met" if ratio <= 3 else "NOT met"
            print(f"  ratio scan/fetch (medians): {ratio:.2f}×  GOAL ≤ 3×: {verdict}")


if __name__ == "__main__":
    main()
