"""Firewall facts: the live ruleset when the host can be asked, else the ruleset its boot loads.

Live (local or SSH): ``nft -j list ruleset`` and ``iptables-save``/``ip6tables-save`` from the manifest.
``iptables-save`` from the nf_tables backend shows tables that ``nft`` already listed, so it is only
added when nft could not be read or the output is from the legacy backend. Offline (or when the
commands are unavailable): /etc/nftables.conf (Debian), /etc/sysconfig/nftables.conf (RHEL) with their
includes, and /etc/iptables/rules.v4|v6 (Debian iptables-persistent), /etc/sysconfig/iptables|ip6tables.
"""

from __future__ import annotations

from hvguard.collect.linux.ops_files import OpsReader, command_output, include_expander
from hvguard.collect.linux.ops_iptables import read_iptables_save
from hvguard.collect.linux.ops_nftables import read_nft_json, read_nft_text
from hvguard.collect.linux.ops_sockets import collect_listening
from hvguard.facts import ConfigIssue, FirewallChain, FirewallFacts, FirewallSet

AREA = "host.operations.firewall"
NFT_CONFS = ("etc/nftables.conf", "etc/sysconfig/nftables.conf")
IPTABLES_FILES = (
    ("etc/iptables/rules.v4", "ip"),
    ("etc/iptables/rules.v6", "ip6"),
    ("etc/sysconfig/iptables", "ip"),
    ("etc/sysconfig/ip6tables", "ip6"),
)


def collect_firewall(r: OpsReader) -> FirewallFacts:
    """Read the packet filter (live, else configured) and the listening sockets."""
    chains: list[FirewallChain] = []
    sets: list[FirewallSet] = []
    issues: list[ConfigIssue] = []
    sources: list[str] = []
    notes: list[str] = []
    live = False

    nft_out, nft_why = command_output(r.run("nft-ruleset"))
    nft_live = False
    if nft_out is not None:
        res = read_nft_json(nft_out, "nft -j list ruleset")
        if not res.issues:
            nft_live = live = True
        chains += res.chains
        sets += res.sets
        issues += res.issues
        sources.append("nft -j list ruleset")
    elif r.live and nft_why:
        notes.append(f"live nftables ruleset unavailable ({nft_why}); read the configuration files instead")

    ipt_live = False
    for cmd, family in (("iptables-save", "ip"), ("ip6tables-save", "ip6")):
        out, _ = command_output(r.run(cmd))
        if out is None:
            continue
        if nft_live and "(nf_tables)" in out:
            continue  # the same tables are in the nft ruleset already
        ch, iss = read_iptables_save(out, cmd, family=family)
        chains += ch
        issues += iss
        sources.append(cmd)
        ipt_live = live = True

    if not nft_live:
        expand = include_expander(r, AREA)

        def read(path: str) -> str | None:
            return r.text(path.lstrip("/"), AREA)

        for conf in NFT_CONFS:
            if r.exists(conf):
                res = read_nft_text(read, expand, r.shown(conf))
                chains += res.chains
                sets += res.sets
                issues += res.issues
                sources += res.files
    if not ipt_live:
        for rel, family in IPTABLES_FILES:
            text = r.text(rel, AREA)
            if text is None:
                continue
            ch, iss = read_iptables_save(text, r.shown(rel), family=family)
            chains += ch
            issues += iss
            sources.append(r.shown(rel))
    if not live and sources:
        notes.append(
            "ruleset read from configuration files: what the host loads at boot, not necessarily what "
            "runs now"
        )
    listening, sock_issues = collect_listening(r)
    return FirewallFacts(
        sources=sources,
        live=live,
        chains=chains,
        sets=sets,
        listening=listening,
        notes=notes,
        issues=issues + sock_issues,
    )
