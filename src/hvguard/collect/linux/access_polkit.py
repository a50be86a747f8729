"""polkit rules (``*.rules``, JavaScript) reduced to the facts libvirt's ACL depends on.

The files are parsed with tree-sitter's JavaScript grammar (a real parser: syntax errors are found with
their line, and the analysis works on the syntax tree, not on text patterns). polkitd reads every
``*.rules`` file of /etc/polkit-1/rules.d, /run/polkit-1/rules.d, /usr/local/share/polkit-1/rules.d and
/usr/share/polkit-1/rules.d sorted by file name; for a name present in several, the first directory in
that list wins. A file with a syntax error is skipped by polkitd (so its rules do not apply).

This is static analysis of a general-purpose language and it cannot decide every program: it finds the
``addRule``/``addAdminRule`` callbacks, the action ids and prefixes they test, the ``action.lookup()``
keys, the groups and users they test, and which ``return polkit.Result.NO/YES`` statements depend on a
domain lookup (``domain_name``/``domain_uuid``, directly or through a variable assigned from one). The
findings say so, and ``hvguard scan --probe-acl USER:VM`` decides by running libvirt as that user.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import tree_sitter_javascript
from tree_sitter import Language, Node, Parser

from hvguard.collect.linux.access_files import HostFiles
from hvguard.collect.reader import ReadError
from hvguard.facts import PolkitFacts, PolkitFile, PolkitRef, PolkitRule

RULES_DIRS = (
    "/etc/polkit-1/rules.d",
    "/run/polkit-1/rules.d",
    "/usr/local/share/polkit-1/rules.d",
    "/usr/share/polkit-1/rules.d",
)
#: libvirt's lookup keys that name a domain (docs/aclpolkit.rst).
DOMAIN_KEYS = frozenset({"domain_name", "domain_uuid"})
#: Every lookup key libvirt's polkit driver sets (connect_driver plus per-object keys).
LIBVIRT_KEYS_PREFIXES = ("connect_driver", "domain_", "network_", "storage_", "interface_", "node_dev",
                         "nwfilter", "secret_")  # fmt: skip
LIBVIRT_API = "org.libvirt.api."

_LANGUAGE = Language(tree_sitter_javascript.language())


def _parser() -> Parser:
    return Parser(_LANGUAGE)


def _text(node: Node) -> str:
    return (node.text or b"").decode("utf-8", "replace")


def _line(node: Node) -> int:
    return node.start_point[0] + 1


def _string_value(node: Node | None) -> str | None:
    """The value of a string literal (or a template literal without substitutions)."""
    if node is None:
        return None
    if node.type == "string":
        return "".join(
            _text(c) for c in node.named_children if c.type in ("string_fragment", "escape_sequence")
        )
    if node.type == "template_string" and not any(c.type == "template_substitution" for c in node.children):
        return _text(node)[1:-1]
    return None


def _walk(node: Node) -> Iterator[Node]:
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(reversed(current.children))


def _first_error(root: Node) -> Node | None:
    for node in _walk(root):
        if node.type == "ERROR" or node.is_missing:
            return node
    return None


def _member_path(node: Node) -> str | None:
    """``a.b.c`` for a member-expression chain of identifiers, else None."""
    if node.type in ("identifier", "property_identifier"):
        return _text(node)
    if node.type == "member_expression":
        obj = node.child_by_field_name("object")
        prop = node.child_by_field_name("property")
        if obj is None or prop is None:
            return None
        left = _member_path(obj)
        return None if left is None else f"{left}.{_text(prop)}"
    return None


def _call_name(call: Node) -> tuple[str | None, list[Node]]:
    """(dotted callee, arguments) of a call expression."""
    fn = call.child_by_field_name("function")
    args = call.child_by_field_name("arguments")
    name = _member_path(fn) if fn is not None else None
    return name, (args.named_children if args is not None else [])


@dataclass
class _Scan:
    """What one rule function contains."""

    actions: list[PolkitRef] = field(default_factory=list)
    lookups: list[PolkitRef] = field(default_factory=list)
    groups: list[PolkitRef] = field(default_factory=list)
    users: list[PolkitRef] = field(default_factory=list)
    results: list[PolkitRef] = field(default_factory=list)
    domain_denies: list[int] = field(default_factory=list)
    domain_allows: list[int] = field(default_factory=list)


def _is_domain_lookup(node: Node) -> bool:
    if node.type != "call_expression":
        return False
    name, args = _call_name(node)
    return bool(name and name.endswith(".lookup") and args and _string_value(args[0]) in DOMAIN_KEYS)


def _domain_variables(body: Node) -> set[str]:
    """Names assigned (directly or transitively) from a domain lookup inside ``body``."""
    tainted: set[str] = set()
    changed = True
    while changed:
        changed = False
        for node in _walk(body):
            target: Node | None = None
            value: Node | None = None
            if node.type == "variable_declarator":
                target, value = node.child_by_field_name("name"), node.child_by_field_name("value")
            elif node.type in ("assignment_expression", "augmented_assignment_expression"):
                target, value = node.child_by_field_name("left"), node.child_by_field_name("right")
            if target is None or value is None or target.type != "identifier":
                continue
            name = _text(target)
            if name not in tainted and _depends_on_domain(value, tainted):
                tainted.add(name)
                changed = True
    return tainted


def _depends_on_domain(node: Node, tainted: set[str]) -> bool:
    return any(_is_domain_lookup(n) or (n.type == "identifier" and _text(n) in tainted) for n in _walk(node))


def _decided_by_domain(node: Node, function: Node, tainted: set[str]) -> bool:
    """True when reaching ``node`` depends on a condition that involves the domain."""
    child = node
    parent = node.parent
    while parent is not None and parent.id != function.id:
        condition: Node | None = None
        if (
            parent.type == "if_statement"
            and child.id != (parent.child_by_field_name("condition") or child).id
        ) or (
            parent.type == "ternary_expression"
            and child.id != (parent.child_by_field_name("condition") or child).id
        ):
            condition = parent.child_by_field_name("condition")
        elif parent.type == "switch_statement" or parent.type == "switch_case":
            condition = parent.child_by_field_name("value")
        elif parent.type in ("binary_expression",) and _text(parent.children[1]) in ("&&", "||"):
            condition = parent.child_by_field_name("left")
        if condition is not None and _depends_on_domain(condition, tainted):
            return True
        child, parent = parent, parent.parent
    return False


def _scan_function(function: Node) -> _Scan:
    scan = _Scan()
    tainted = _domain_variables(function)
    for node in _walk(function):
        if node.type in ("string", "template_string"):
            value = _string_value(node)
            if value and value.startswith("org.") and not value.startswith("org.freedesktop.policykit.owner"):
                scan.actions.append(PolkitRef(value=value, line=_line(node)))
        elif node.type == "regex":
            pattern = _text(node)
            if "org" in pattern:
                scan.actions.append(PolkitRef(value=pattern.replace("\\", ""), line=_line(node)))
        elif node.type == "call_expression":
            name, args = _call_name(node)
            first = _string_value(args[0]) if args else None
            if name and first is not None:
                if name.endswith(".lookup"):
                    scan.lookups.append(PolkitRef(value=first, line=_line(node)))
                elif name.endswith(".isInGroup"):
                    scan.groups.append(PolkitRef(value=first, line=_line(node)))
        elif node.type == "binary_expression":
            left, right = node.child_by_field_name("left"), node.child_by_field_name("right")
            if left is None or right is None:
                continue
            for a, b in ((left, right), (right, left)):
                if _member_path(a) in ("subject.user",) and (value := _string_value(b)) is not None:
                    scan.users.append(PolkitRef(value=value, line=_line(node)))
        elif node.type == "member_expression":
            path = _member_path(node)
            if path and path.startswith("polkit.Result."):
                result = path.rsplit(".", 1)[1]
                scan.results.append(PolkitRef(value=result, line=_line(node)))
                if result in ("NO", "YES") and _decided_by_domain(node, function, tainted):
                    (scan.domain_denies if result == "NO" else scan.domain_allows).append(_line(node))
    return scan


def _functions(root: Node) -> dict[str, Node]:
    """Named function declarations of the file (a rule may be registered by name)."""
    out: dict[str, Node] = {}
    for node in _walk(root):
        if node.type == "function_declaration":
            name = node.child_by_field_name("name")
            if name is not None:
                out[_text(name)] = node
    return out


def analyse_rules(text: str) -> tuple[list[PolkitRule], tuple[int, str] | None]:
    """The rules in one file's JavaScript, or ([], (line, message)) for a syntax error."""
    tree = _parser().parse(text.encode("utf-8"))
    root = tree.root_node
    if root.has_error:
        bad = _first_error(root)
        line = _line(bad) if bad is not None else 1
        what = f"missing {bad.type!r}" if bad is not None and bad.is_missing else "unexpected input"
        snippet = _text(bad).strip().splitlines()[0][:40] if bad is not None and _text(bad).strip() else ""
        return [], (line, f"JavaScript syntax error: {what}" + (f" near {snippet!r}" if snippet else ""))
    declared = _functions(root)
    rules: list[PolkitRule] = []
    for node in _walk(root):
        if node.type != "call_expression":
            continue
        name, args = _call_name(node)
        if name not in ("polkit.addRule", "polkit.addAdminRule") or not args:
            continue
        function: Node | None = args[0]
        if function is not None and function.type == "identifier":
            function = declared.get(_text(function))
        if function is None or function.type not in (
            "function_expression",
            "function",
            "arrow_function",
            "function_declaration",
        ):
            continue
        scan = _scan_function(function)
        libvirt = any(
            a.value.startswith(("org.libvirt.api", "^org.libvirt.api")) for a in scan.actions
        ) or any(lk.value.startswith(LIBVIRT_KEYS_PREFIXES) for lk in scan.lookups)
        rules.append(
            PolkitRule(
                kind="admin_rule" if name.endswith("addAdminRule") else "rule",
                line=_line(node),
                actions=scan.actions,
                libvirt_api=libvirt,
                lookups=scan.lookups,
                groups=scan.groups,
                users=scan.users,
                results=scan.results,
                domain_denies=sorted(set(scan.domain_denies)),
                domain_allows=sorted(set(scan.domain_allows)),
            )
        )
    return rules, None


def collect_polkit(files: HostFiles) -> PolkitFacts:
    """Every polkit rules file in load order, analysed; never raises."""
    chosen: dict[str, str] = {}
    shadowed: list[tuple[str, str]] = []
    directories: list[str] = []
    unreadable: list[str] = []
    for directory in RULES_DIRS:
        names = files.listdir(directory)
        if names is None:
            if files.is_dir(directory):
                unreadable.append(directory)  # there, but this user may not list it
            continue
        directories.append(directory)
        for name in names:
            if not name.endswith(".rules"):
                continue
            path = f"{directory}/{name}"
            if name in chosen:
                shadowed.append((path, chosen[name]))
            else:
                chosen[name] = path
    out: list[PolkitFile] = []
    order = 0
    for name in sorted(chosen):
        path = chosen[name]
        order += 1
        try:
            text = files.read_text(path)
        except ReadError as exc:
            out.append(PolkitFile(path=path, order=order, error=f"{exc.path}: {exc.message}"))
            unreadable.append(path)
            continue
        rules, error = analyse_rules(text or "")
        out.append(
            PolkitFile(
                path=path,
                order=order,
                rules=rules,
                error=None if error is None else f"{path} line {error[0]}: {error[1]}",
            )
        )
    for path, winner in shadowed:
        out.append(PolkitFile(path=path, order=0, shadowed_by=winner))
    return PolkitFacts(directories=directories, files=out, unreadable=unreadable)
