"""polkit rules analysis (tree-sitter JavaScript) and PAM stacks (includes, substacks, second factors)."""

from __future__ import annotations

from pathlib import Path

from hvguard.collect.linux.access_files import HostFiles
from hvguard.collect.linux.access_pam import read_pam_stack
from hvguard.collect.linux.access_polkit import analyse_rules, collect_polkit

DATA = Path(__file__).parent / "data" / "roots"


def write(root: Path, files: dict[str, str]) -> HostFiles:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return HostFiles(root)


# --------------------------------------------------------------------------------------------------------
# polkit


def test_deny_and_allow_decisions_that_depend_on_the_domain() -> None:
    rules, error = analyse_rules(
        """
polkit.addRule(function(action, subject) {
    var dom = action.lookup("domain_name");
    var name = dom.toLowerCase();               // still the domain
    if (subject.isInGroup("ops")) {
        if (name == "db-cards") { return polkit.Result.NO; }
        return name.indexOf("web-") === 0 ? polkit.Result.YES : polkit.Result.NOT_HANDLED;
    }
    if (subject.user == "auditor" && action.id == "org.libvirt.api.domain.read") {
        return polkit.Result.YES;              // not domain-dependent
    }
});
"""
    )
    assert error is None
    (rule,) = rules
    assert rule.libvirt_api and rule.kind == "rule"
    assert [g.value for g in rule.groups] == ["ops"] and [u.value for u in rule.users] == ["auditor"]
    assert rule.domain_denies == [6] and rule.domain_allows == [7]
    assert {r.value for r in rule.results} == {"NO", "YES", "NOT_HANDLED"}


def test_group_wide_grant_is_not_per_domain() -> None:
    rules, _ = analyse_rules(
        'polkit.addRule(function(a, s) { if (a.id.indexOf("org.libvirt.api.") == 0 && s.isInGroup("libvirt"))'
        " { return polkit.Result.YES; } });"
    )
    assert rules[0].libvirt_api and rules[0].domain_allows == [] and rules[0].domain_denies == []


def test_arrow_functions_switch_and_admin_rules() -> None:
    rules, _ = analyse_rules(
        """
polkit.addAdminRule((action, subject) => ["unix-group:sudo"]);
polkit.addRule((action, subject) => {
    switch (action.lookup("domain_uuid")) {
    case "0b1c": return polkit.Result.NO;
    }
});
"""
    )
    assert [r.kind for r in rules] == ["admin_rule", "rule"]
    assert rules[1].domain_denies == [5] and rules[1].libvirt_api


def test_syntax_error_names_the_line() -> None:
    rules, error = analyse_rules('polkit.addRule(function(a, s) {\n  if (a.id == "x" {\n return 1; }\n});\n')
    assert rules == [] and error is not None and error[0] == 2 and "syntax error" in error[1]


def test_load_order_and_shadowing(tmp_path: Path) -> None:
    files = write(
        tmp_path,
        {
            "etc/polkit-1/rules.d/60-libvirt.rules": "// local override\n",
            "usr/share/polkit-1/rules.d/60-libvirt.rules": (
                "polkit.addRule(function(a, s) { return polkit.Result.YES; });"
            ),
            "usr/share/polkit-1/rules.d/10-first.rules": "",
            "etc/polkit-1/rules.d/README": "not a rules file",
        },
    )
    facts = collect_polkit(files)
    active = [(f.path, f.order) for f in facts.files if f.shadowed_by is None]
    assert active == [
        ("/usr/share/polkit-1/rules.d/10-first.rules", 1),
        ("/etc/polkit-1/rules.d/60-libvirt.rules", 2),
    ]
    shadowed = [f for f in facts.files if f.shadowed_by]
    assert shadowed[0].path == "/usr/share/polkit-1/rules.d/60-libvirt.rules"


def test_fixture_rules_found_by_name() -> None:
    facts = collect_polkit(HostFiles(DATA / "access-good"))
    acl = next(f for f in facts.files if f.path.endswith("100-libvirt-acl.rules"))
    assert acl.error is None and len(acl.rules) == 2  # one registered by function name, one inline
    assert acl.rules[0].domain_denies == [13] and acl.rules[0].domain_allows == [18]
    bad = collect_polkit(HostFiles(DATA / "access-malformed")).files[0]
    assert bad.error is not None and bad.error.startswith(
        "/etc/polkit-1/rules.d/100-libvirt-acl.rules line 2:"
    )


# --------------------------------------------------------------------------------------------------------
# PAM


def test_debian_include_with_required_second_factor(tmp_path: Path) -> None:
    stack = read_pam_stack(HostFiles(DATA / "access-good"), "sshd")
    assert stack.present and stack.errors == []
    assert [e.module for e in stack.auth] == ["pam_unix.so", "pam_deny.so", "pam_permit.so", "pam_u2f.so"]
    assert stack.auth[0].via == ["/etc/pam.d/sshd:2"]
    (factor,) = stack.second_factors
    assert (
        factor.mandatory
        and factor.kind == "fido2-u2f"
        and (factor.file, factor.line) == ("/etc/pam.d/sshd", 3)
    )


def test_sufficient_rule_before_the_factor_bypasses_it(tmp_path: Path) -> None:
    files = write(
        tmp_path,
        {"etc/pam.d/sshd": "auth sufficient pam_unix.so\nauth required pam_google_authenticator.so nullok\n"},
    )
    (factor,) = read_pam_stack(files, "sshd").second_factors
    assert not factor.mandatory
    assert any("nullok" in c for c in factor.caveats) and any("bypassed" in c for c in factor.caveats)


def test_substack_confines_sufficient_and_jumps(tmp_path: Path) -> None:
    files = write(
        tmp_path,
        {
            "etc/pam.d/sshd": (
                "auth substack password-auth\nauth [success=done default=die] pam_oath.so usersfile=/x\n"
            ),
            "etc/pam.d/password-auth": "auth sufficient pam_unix.so\nauth required pam_deny.so\n",
        },
    )
    stack = read_pam_stack(files, "sshd")
    (factor,) = stack.second_factors
    assert factor.mandatory and factor.kind == "oath"


def test_success_jump_over_the_factor_is_a_bypass(tmp_path: Path) -> None:
    files = write(
        tmp_path,
        {"etc/pam.d/sudo": "auth [success=1 default=ignore] pam_unix.so\nauth required pam_yubico.so id=1\n"},
    )
    assert not read_pam_stack(files, "sudo").second_factors[0].mandatory


def test_malformed_rules_and_missing_includes_are_errors_with_lines(tmp_path: Path) -> None:
    files = write(
        tmp_path,
        {"etc/pam.d/sshd": "auth required pam_unix.so\nauth requird pam_u2f.so\n@include nowhere\nbogus\n"},
    )
    stack = read_pam_stack(files, "sshd")
    assert any(e.startswith("/etc/pam.d/sshd line 2: unknown control") for e in stack.errors)
    assert any("/etc/pam.d/nowhere: included file does not exist" in e for e in stack.errors)
    assert any(e.startswith("/etc/pam.d/sshd line 4: not a PAM rule") for e in stack.errors)
    assert stack.second_factors == []  # the mistyped rule gives no factor


def test_vendor_directory_fallback(tmp_path: Path) -> None:
    files = write(tmp_path, {"usr/lib/pam.d/sudo": "auth required pam_u2f.so\n"})
    stack = read_pam_stack(files, "sudo")
    assert stack.file == "/usr/lib/pam.d/sudo" and stack.second_factors[0].mandatory
