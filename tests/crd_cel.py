"""A custom resource's CRD CEL rules (``x-kubernetes-validations``), checked as the API server does.

On create the API server (k8s.io/apiextensions-apiserver, pkg/apiserver/schema):

1. applies the structural schema's ``default:`` values to absent fields, recursively, also
   inside the defaults it just set (schema/defaulting/algorithm.go); a ``null`` in a
   non-nullable field is defaulted too;
2. evaluates every rule of every schema node whose value is present, with ``self`` bound to
   that value typed by the schema (schema/cel/validation.go): objects with ``properties``
   are CEL objects whose field names are escaped (apiserver/pkg/cel/escaping.go:
   ``namespace`` -> ``__namespace__``, ``-`` -> ``__dash__``, ...), maps
   (``additionalProperties``) keep their keys, ``number`` is a double, ``format: byte``,
   ``duration`` and ``date-time`` strings are bytes, duration and timestamp;
3. skips transition rules (they reference ``oldSelf``) because there is no old object.

A rule that is false or errors at run time is a violation, as on the API server. A rule this
checker cannot evaluate (syntax it cannot parse, a function it does not provide) is
reported as such, never taken as passed.

CEL itself is cel-python (celpy). It lacks these Kubernetes CEL libraries' functions, which
are implemented here from their upstream definitions:

* ``<string>.find(<regex>)``, ``<string>.findAll(<regex>[, <int>])``: Kubernetes regex
  library (apiserver/pkg/cel/library/regex.go), RE2 like Go's regexp;
* ``<string>.split(<string>[, <int>])``, ``<list>.join([<string>])``,
  ``<string>.lowerAscii()``, ``<string>.upperAscii()``: cel-go ext/strings.go.

Everything else a rule calls must be a CEL standard function or macro celpy provides;
``compile_rule(...).unsupported`` names a rule's others. No rule of the pinned CRDs calls the
Kubernetes URL, quantity, IP/CIDR, format, semver, sets or authz libraries, so they are not
implemented (a rule calling them is reported as "cannot evaluate").

Not modelled: optional types (``optionalOldSelf``, reported as "cannot evaluate"), the
set/map equality of ``x-kubernetes-list-type`` lists, the root ``metadata`` restriction
(only ``name``/``generateName`` are visible to root rules; no pinned CRD has a root rule)
and the API server's CEL cost budget.
"""

from __future__ import annotations

import base64
import copy
import re
from dataclasses import dataclass
from functools import cache
from typing import Any

import celpy
import celpy.celtypes as ct
import lark
import re2
from celpy.adapter import json_to_cel
from celpy.evaluation import CELEvalError, base_functions

MACROS = {"has", "all", "exists", "exists_one", "map", "filter"}


# --- Kubernetes extension functions --------------------------------------------------------


def _find(text: ct.StringType, pattern: ct.StringType) -> ct.StringType:
    """regex.go: the first match of the RE2 regex, or '' when none."""
    match = re2.search(str(pattern), str(text))
    return ct.StringType(str(match.group(0)) if match else "")


def _find_all(text: ct.StringType, pattern: ct.StringType, limit: ct.IntType | None = None) -> ct.ListType:
    """regex.go: all non-overlapping matches (at most ``limit``; a negative limit means all)."""
    found = [ct.StringType(str(m.group(0))) for m in re2.finditer(str(pattern), str(text))]
    return ct.ListType(found if limit is None or limit < 0 else found[: int(limit)])


def _split(text: ct.StringType, sep: ct.StringType, limit: ct.IntType | None = None) -> ct.ListType:
    """ext/strings.go: Go's strings.Split / strings.SplitN (limit 0: empty; < 0: all)."""
    s, sep_ = str(text), str(sep)
    if limit is not None and limit == 0:
        return ct.ListType([])
    if sep_ == "":
        parts = list(s)
        if limit is not None and 0 < limit < len(parts):
            parts = [*parts[: int(limit) - 1], "".join(parts[int(limit) - 1 :])]
    else:
        parts = s.split(sep_) if limit is None or limit < 0 else s.split(sep_, int(limit) - 1)
    return ct.ListType([ct.StringType(p) for p in parts])


def _join(items: ct.ListType, sep: ct.StringType | None = None) -> ct.StringType:
    return ct.StringType(("" if sep is None else str(sep)).join(str(i) for i in items))


def _ascii(fn):
    return lambda text: ct.StringType("".join(fn(c) if c.isascii() else c for c in str(text)))


KUBERNETES_FUNCTIONS = {
    "find": _find,
    "findAll": _find_all,
    "split": _split,
    "join": _join,
    "lowerAscii": _ascii(str.lower),
    "upperAscii": _ascii(str.upper),
}
KNOWN_FUNCTIONS = set(base_functions) | set(KUBERNETES_FUNCTIONS) | MACROS


# --- compile -------------------------------------------------------------------------------


@dataclass(frozen=True)
class CompiledRule:
    rule: str
    program: Any  # celpy Runner, or None when it cannot be evaluated
    unsupported: str  # why it cannot be evaluated ('' when it can)
    transition: bool  # references oldSelf


_ENV = celpy.Environment()


def _calls_and_idents(tree: lark.Tree) -> tuple[set[str], set[str]]:
    calls, idents = set(), set()
    for node in tree.iter_subtrees():
        if node.data == "member_dot_arg":
            calls.add(str(node.children[1]))
        elif node.data == "ident_arg":
            calls.add(str(node.children[0]))
        elif node.data == "ident":
            idents.add(str(node.children[0]))
    return calls, idents


@cache
def compile_rule(rule: str) -> CompiledRule:
    try:
        ast = _ENV.compile(rule)
    except Exception as err:  # celpy.CELParseError and lark errors
        return CompiledRule(rule, None, f"does not parse: {str(err).splitlines()[0]}", False)
    calls, idents = _calls_and_idents(ast)
    unknown = sorted(calls - KNOWN_FUNCTIONS)
    program = None if unknown else _ENV.program(ast, functions=KUBERNETES_FUNCTIONS)
    return CompiledRule(
        rule, program, f"calls {', '.join(unknown)}, which this checker lacks" if unknown else "", "oldSelf" in idents
    )


def unsupported_functions(rule: str) -> str:
    return compile_rule(rule).unsupported


# --- structural defaulting -----------------------------------------------------------------


def apply_defaults(value: Any, schema: dict[str, Any]) -> Any:
    """defaulting/algorithm.go Default(): set absent (or non-nullable null) fields to their
    ``default``, then recurse into every field, map value and list item (in place)."""
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        for key, prop in props.items():
            absent = key not in value or (value[key] is None and not prop.get("nullable"))
            if absent and "default" in prop:
                value[key] = copy.deepcopy(prop["default"])
        additional = schema.get("additionalProperties")
        for key, child in value.items():
            if key in props:
                apply_defaults(child, props[key])
            elif isinstance(additional, dict):
                apply_defaults(child, additional)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for item in value:
            apply_defaults(item, schema["items"])
    return value


# --- schema-typed CEL values ---------------------------------------------------------------

_RESERVED = {
    "true",
    "false",
    "null",
    "in",
    "as",
    "break",
    "const",
    "continue",
    "else",
    "for",
    "function",
    "if",
    "import",
    "let",
    "loop",
    "package",
    "namespace",
    "return",
    "var",
    "void",
    "while",
}
_EXPAND = re.compile(r"(__|[-./]|[^a-zA-Z0-9\-./_])")
_ESCAPES = {"__": "__underscores__", ".": "__dot__", "-": "__dash__", "/": "__slash__"}


def escape(name: str) -> str | None:
    """apiserver/pkg/cel/escaping.go Escape(): a property name as a CEL field name, or None
    when it has characters CEL cannot name (the field is then not accessible)."""
    if not name or name[0].isdigit():
        return None
    if name in _RESERVED:
        return f"__{name}__"
    if any(m.group(0) not in _ESCAPES for m in _EXPAND.finditer(name)):
        return None
    return _EXPAND.sub(lambda m: _ESCAPES[m.group(0)], name)


def to_cel(value: Any, schema: dict[str, Any]) -> Any:
    if value is None:
        return None
    if schema.get("x-kubernetes-int-or-string") or (
        schema.get("x-kubernetes-preserve-unknown-fields") and not schema.get("properties")
    ):
        return json_to_cel(value)
    kind = schema.get("type")
    if isinstance(value, dict):
        return _map_to_cel(value, schema)
    if isinstance(value, list):
        items = schema["items"] if isinstance(schema.get("items"), dict) else {}
        return ct.ListType([to_cel(v, items) for v in value])
    if isinstance(value, bool):
        return ct.BoolType(value)
    if kind == "number":
        return ct.DoubleType(value)
    if isinstance(value, int):
        return ct.IntType(value)
    if isinstance(value, float):
        return ct.DoubleType(value)
    if isinstance(value, str):
        return _string_to_cel(value, schema.get("format"))
    return json_to_cel(value)


def _map_to_cel(value: dict[str, Any], schema: dict[str, Any]) -> Any:
    """An object: its declared properties (names escaped as CEL sees them), or a map of additionalProperties."""
    props = schema.get("properties")
    if props is not None:
        out = {}
        for key, child in value.items():
            name = escape(key)
            if name is not None and key in props:
                out[ct.StringType(name)] = to_cel(child, props[key])
        return ct.MapType(out)
    additional = schema.get("additionalProperties")
    sub = additional if isinstance(additional, dict) else {}
    return ct.MapType({ct.StringType(k): to_cel(v, sub) for k, v in value.items()})


def _string_to_cel(value: str, fmt: str | None) -> Any:
    if fmt == "byte":
        return ct.BytesType(base64.b64decode(value))
    if fmt == "duration":
        return ct.DurationType(value)
    if fmt == "date-time":
        return ct.TimestampType(value)
    return ct.StringType(value)


# --- evaluation ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    path: str
    rule: str
    message: str
    problem: str  # "violated", "error: ...", "cannot evaluate: ..."

    def __str__(self) -> str:
        return f"{self.path}: {self.message!r} {self.problem} (rule: {self.rule})"


@dataclass
class Report:
    findings: list[Finding]
    evaluated: int
    skipped_transition: int


def check(obj: dict[str, Any], schema: dict[str, Any]) -> Report:
    """Default a copy of ``obj`` with ``schema`` and evaluate every CEL rule on it."""
    report = Report([], 0, 0)
    _walk(apply_defaults(copy.deepcopy(obj), schema), schema, "", report)
    return report


def _walk(value: Any, schema: dict[str, Any], path: str, report: Report) -> None:
    if value is None or not isinstance(schema, dict):
        return
    rules = schema.get("x-kubernetes-validations") or []
    if rules:
        self_value = to_cel(value, schema)
        for rule in rules:
            _evaluate(rule, self_value, path or "<root>", report)
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        additional = schema.get("additionalProperties")
        for key, child in value.items():
            if key in props:
                _walk(child, props[key], f"{path}.{key}", report)
            elif isinstance(additional, dict):
                _walk(child, additional, f"{path}[{key!r}]", report)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            _walk(item, schema["items"], f"{path}[{i}]", report)


def _evaluate(rule: dict[str, Any], self_value: Any, path: str, report: Report) -> None:
    compiled = compile_rule(rule["rule"])
    message = rule.get("message") or rule.get("messageExpression") or f"failed rule: {rule['rule']}"
    if compiled.transition and not rule.get("optionalOldSelf"):
        report.skipped_transition += 1  # transition rule: not evaluated on create
        return
    if compiled.unsupported or compiled.transition:
        why = compiled.unsupported or "optionalOldSelf (optional types) is not supported"
        report.findings.append(Finding(path, rule["rule"], message, f"cannot evaluate: {why}"))
        return
    report.evaluated += 1
    try:
        result = compiled.program.evaluate({"self": self_value})
    except CELEvalError as err:
        result = err
    except Exception as err:  # celpy raises plain Python errors for some type mismatches
        result = CELEvalError(str(err), type(err), None)
    if isinstance(result, CELEvalError):
        report.findings.append(
            Finding(path, rule["rule"], message, f"error: {result.args[0] if result.args else result}")
        )
    elif not (isinstance(result, (bool, ct.BoolType)) and bool(result)):
        report.findings.append(Finding(path, rule["rule"], message, "violated"))
