"""The part of Go's ``text/template`` (with NFD's options and a few Sprig functions) that NFD
rules use in ``varsTemplate`` / ``labelsTemplate`` (``pkg/apis/nfd/template``).

Supported, as Go defines it: text; actions ``{{ }}`` with ``{{-``/``-}}`` trimming and
``{{/* comments */}}``; pipelines with ``|`` and parentheses; ``.``, field chains on the
matched features (``.cpu.cpuid``, ``.Name``, ``.Value``, ``(.x | first).class``; a missing
map key is an error: NFD sets ``missingkey=error``); string, raw-string, integer, ``true``,
``false`` and ``nil`` literals; ``if``/``else if``/``else``, ``range``/``else``,
``with``/``else``, ``end``; the functions in :data:`FUNCS`. The output must be
``key=value`` lines (blank lines skipped), as ``Helper.ExpandMap`` requires.

Refused with an error naming the construct: variables (``$x``), ``define``/``template``/
``block``, ``break``/``continue``, float and character constants, and any function not in
:data:`FUNCS` (``env``, ``expandenv`` and ``getHostByName`` are undefined in NFD too).

Bounded (``compat/limits.py``): the template's size (NFD's own 64 KiB cap), nesting, the
number of execution steps (nested ``range`` cannot explode) and the output size.
"""
from __future__ import annotations

import re

from compat import limits
from compat.record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Dict, List, Optional, Tuple


class TemplateError(ValueError):
    """A template that does not parse, fails to execute, or does not yield key=value lines."""


class GoMap(dict):
    """A Go map: ``zero`` is what ``index`` returns for a missing key."""

    def __init__(self, items=(), zero: Any = ""):
        super().__init__(items)
        self.zero = zero


# -- lexing ---------------------------------------------------------------------------------------

_TOKEN = re.compile(r"""
    (?P<space>[ \t\r\n]+)
  | (?P<string>"(?:[^"\\\n]|\\.)*")
  | (?P<raw>`[^`]*`)
  | (?P<char>'(?:[^'\\\n]|\\.)*')
  | (?P<number>[+-]?\d[\w.]*)
  | (?P<field>(?:\.[^\W\d]\w*)+|\.)
  | (?P<var>\$[\w]*)
  | (?P<ident>[A-Za-z_]\w*)
  | (?P<declare>:=|=)
  | (?P<punct>[()|,])
""", re.VERBOSE)


class Tok(Record):
    kind: str
    text: str


def _lex_action(text: str) -> List[Tok]:
    toks, pos = [], 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise TemplateError(f"unexpected {text[pos:pos + 10]!r} in action")
        kind = m.lastgroup
        if kind != "space":
            toks.append(Tok(kind, m.group()))
        pos = m.end()
    return toks


_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\",
            '"': '"'}
_HEX_ESCAPES = {"x": 2, "u": 4, "U": 8}


def _go_string(tok: str) -> str:
    """Go's strconv.Unquote of a "..." or `...` constant."""
    if tok.startswith("`"):
        return tok[1:-1]
    body, out, i = tok[1:-1], [], 0
    while i < len(body):
        c = body[i]
        if c != "\\":
            out.append(c)
            i += 1
            continue
        e = body[i + 1:i + 2]
        if e in _ESCAPES:
            out.append(_ESCAPES[e])
            i += 2
        elif e in _HEX_ESCAPES:
            digits = body[i + 2:i + 2 + _HEX_ESCAPES[e]]
            if len(digits) != _HEX_ESCAPES[e] or not all(d in "0123456789abcdefABCDEF" for d in digits) \
                    or int(digits, 16) > 0x10FFFF:
                raise TemplateError(f"malformed string constant {tok}")
            out.append(chr(int(digits, 16)))
            i += 2 + len(digits)
        elif e in "01234567" and e and len(body[i + 1:i + 4]) == 3 and all(d in "01234567" for d in body[i + 1:i + 4]):
            out.append(chr(int(body[i + 1:i + 4], 8)))
            i += 4
        else:
            raise TemplateError(f"malformed string constant {tok}")
    return "".join(out)


def _action_end(src: str, pos: int) -> int:
    """Where the action starting at ``pos`` closes: the first ``}}`` outside a quoted string."""
    i = pos
    while i < len(src):
        c = src[i]
        if src.startswith("}}", i):
            return i
        if c in "\"`'":
            j = i + 1
            while j < len(src) and src[j] != c:
                j += 2 if src[j] == "\\" and c != "`" else 1
            i = j + 1
            continue
        i += 1
    return -1


def _segments(src: str) -> List[Tuple[str, str]]:
    """[("text", t) | ("action", a)] with Go's trim markers applied."""
    out: List[Tuple[str, str]] = []
    pos = 0
    while True:
        start = src.find("{{", pos)
        if start < 0:
            out.append(("text", src[pos:]))
            return out
        text = src[pos:start]
        body_start = start + 2
        if src.startswith("- ", body_start) or src.startswith("-\t", body_start) or \
                src.startswith("-\n", body_start) or src.startswith("-\r", body_start):
            text = text.rstrip(" \t\r\n")
            body_start += 1
        out.append(("text", text))
        cstart = _skip_space(src, body_start)
        if src.startswith("/*", cstart):
            cend = src.find("*/", cstart + 2)
            if cend < 0:
                raise TemplateError("unclosed comment")
            close = _skip_space(src, cend + 2)
            trim = False
            if src.startswith("-}}", close) and src[close - 1:close] in (" ", "\t", "\r", "\n"):
                trim, close = True, close + 1
            if not src.startswith("}}", close):
                raise TemplateError("comment ends before closing delimiter")
            pos = close + 2
            if trim:
                pos = _skip_space(src, pos)
            continue
        end = _action_end(src, body_start)
        if end < 0:
            raise TemplateError("unclosed action")
        body = src[body_start:end]
        pos = end + 2
        if body.endswith("-") and body[-2:-1] in (" ", "\t", "\r", "\n"):
            body = body[:-1]
            pos = _skip_space(src, pos)
        out.append(("action", body))


def _skip_space(src: str, pos: int) -> int:
    while pos < len(src) and src[pos] in " \t\r\n":
        pos += 1
    return pos


# -- parsing --------------------------------------------------------------------------------------

class Node(Record):
    kind: str                    # text | pipe | if | range | with
    value: Any = None            # text, or the pipeline
    body: Tuple = ()
    orelse: Tuple = ()


def _refuse(what: str):
    raise TemplateError(f"{what} is not supported in NFD templates by compat")


class _PipeParser:
    """Pipeline := Command ('|' Command)*; Command := Operand+; Operand := Term Field*."""

    def __init__(self, toks: List[Tok], depth: int):
        self.toks, self.i, self.depth = toks, 0, depth

    def peek(self) -> Optional[Tok]:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self) -> Tok:
        tok = self.peek()
        if tok is None:
            raise TemplateError("unexpected end of action")
        self.i += 1
        return tok

    def pipeline(self, closing: Optional[str] = None) -> Tuple:
        if self.depth > limits.TEMPLATE_DEPTH:
            raise TemplateError(f"nested deeper than {limits.TEMPLATE_DEPTH} levels")
        cmds = [self.command(closing)]
        while self.peek() is not None and self.peek().text == "|":
            self.take()
            cmds.append(self.command(closing))
        return tuple(cmds)

    def command(self, closing: Optional[str]) -> Tuple:
        ops = []
        while True:
            tok = self.peek()
            if tok is None or tok.text == "|" or (closing and tok.text == closing):
                break
            ops.append(self.operand())
        if not ops:
            raise TemplateError("missing value for command")
        return tuple(ops)

    def operand(self) -> Tuple:
        tok = self.take()
        if tok.kind == "field":
            term = ("field", None, tuple(x for x in tok.text.split(".") if x))
        elif tok.kind == "string" or tok.kind == "raw":
            term = ("const", _go_string(tok.text))
        elif tok.kind == "number":
            term = ("const", _go_int(tok.text))
        elif tok.kind == "char":
            _refuse(f"the character constant {tok.text}")
        elif tok.kind == "var":
            _refuse(f"the variable {tok.text}")
        elif tok.kind == "ident":
            if tok.text in ("true", "false"):
                term = ("const", tok.text == "true")
            elif tok.text == "nil":
                term = ("const", None)
            elif tok.text in _KEYWORDS:
                raise TemplateError(f"unexpected {tok.text} in operand")
            elif tok.text in FUNCS:
                term = ("func", tok.text)
            elif tok.text in _UNDEFINED_IN_NFD:
                raise TemplateError(f'function "{tok.text}" not defined')
            else:
                _refuse(f'the function "{tok.text}"')
        elif tok.text == "(":
            inner = _PipeParser(self.toks, self.depth + 1)
            inner.i = self.i
            pipe = inner.pipeline(closing=")")
            self.i = inner.i
            if self.take().text != ")":
                raise TemplateError("unclosed left paren")
            term = ("paren", pipe)
        elif tok.kind == "declare" or tok.text == ",":
            _refuse("variable declaration")
        else:
            raise TemplateError(f"unexpected {tok.text!r} in operand")
        nxt = self.peek()
        if term[0] == "paren" and nxt is not None and nxt.kind == "field" and nxt.text != ".":
            self.take()     # (.x | first).class: a field of the parenthesised value
            term = ("field", term, tuple(x for x in nxt.text.split(".") if x))
        return term


def _go_int(text: str) -> int:
    digits = text.lstrip("+-").lower()
    if "." in digits or ("e" in digits and not digits.startswith("0x")) or "p" in digits:
        _refuse(f"the floating-point constant {text}")
    try:
        return int(text.replace("_", ""), 0)
    except ValueError:
        try:
            return int(text.replace("_", ""), 8)     # Go's 0755
        except ValueError:
            raise TemplateError(f"malformed number {text}") from None


_KEYWORDS = {"if", "else", "end", "range", "with", "define", "template", "block", "break", "continue"}
_UNDEFINED_IN_NFD = {"env", "expandenv", "getHostByName"}


def parse(src: str) -> Tuple[Node, ...]:
    """The template's tree; TemplateError for what Go would refuse or compat does not support."""
    if not isinstance(src, str):
        raise TemplateError("a template must be a string")
    if len(src.encode("utf-8", "surrogatepass")) > limits.TEMPLATE_BYTES:
        raise TemplateError(f"template exceeds maximum allowed size ({limits.TEMPLATE_BYTES} bytes)")
    segs = _segments(src)
    nodes, i, end = _parse_list(segs, 0, 0)
    if end is not None:
        raise TemplateError(f"unexpected {{{{{end}}}}}")
    return nodes


def _parse_list(segs, i: int, depth: int):
    """Nodes until {{end}} / {{else ...}} (returned as the third item) or the end."""
    if depth > limits.TEMPLATE_DEPTH:
        raise TemplateError(f"nested deeper than {limits.TEMPLATE_DEPTH} levels")
    nodes: List[Node] = []
    while i < len(segs):
        kind, body = segs[i]
        i += 1
        if kind == "text":
            if body:
                nodes.append(Node("text", body))
            continue
        toks = _lex_action(body)
        if not toks:
            raise TemplateError("missing value for command")
        head = toks[0].text if toks[0].kind == "ident" else ""
        if head in ("end", "else"):
            return tuple(nodes), i, " ".join(t.text for t in toks)
        if head in ("define", "template", "block", "break", "continue"):
            _refuse(f"{{{{{head}}}}}")
        if head in ("if", "range", "with"):
            node, i = _parse_control(head, toks[1:], segs, i, depth)
            nodes.append(node)
            continue
        nodes.append(Node("pipe", _parse_pipe(toks, depth)))
    return tuple(nodes), i, None


def _parse_pipe(toks: List[Tok], depth: int) -> Tuple:
    if any(t.kind == "declare" for t in toks):
        _refuse("variable declaration")
    p = _PipeParser(toks, depth)
    pipe = p.pipeline()
    if p.peek() is not None:
        raise TemplateError(f"unexpected {p.peek().text!r} in command")
    return pipe


def _parse_control(head: str, toks: List[Tok], segs, i: int, depth: int):
    if not toks:
        raise TemplateError(f"missing value for {head}")
    pipe = _parse_pipe(toks, depth + 1)
    body, i, stop = _parse_list(segs, i, depth + 1)
    if stop is None:
        raise TemplateError(f"unexpected EOF: {{{{{head}}}}} has no {{{{end}}}}")
    orelse: Tuple = ()
    if stop == "else":
        orelse, i, stop = _parse_list(segs, i, depth + 1)
        if stop != "end":
            raise TemplateError(f"expected {{{{end}}}} after {{{{else}}}} of {head}")
    elif stop.startswith("else "):
        rest = _lex_action(stop[5:])
        if not rest or rest[0].text != head or head == "range":
            raise TemplateError(f"unexpected {{{{{stop}}}}}")
        # {{else if x}} / {{else with x}}: a nested control that shares our {{end}}
        nested, i = _parse_control(head, rest[1:], segs, i, depth + 1)
        orelse = (nested,)
        return Node(head, pipe, body, orelse), i
    elif stop != "end":
        raise TemplateError(f"unexpected {{{{{stop}}}}}")
    return Node(head, pipe, body, orelse), i


# -- values and functions (Go semantics) ----------------------------------------------------------

def truth(v) -> bool:
    if v is None:
        return False
    if isinstance(v, bool):
        return v
    return bool(v)


def go_print(v) -> str:
    """fmt.Sprint of a template value."""
    if v is None:
        return "<no value>"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, str)):
        return str(v)
    if isinstance(v, dict):
        return "map[" + " ".join(f"{k}:{_inner(v[k])}" for k in sorted(v)) + "]"
    if isinstance(v, (list, tuple)):
        return "[" + " ".join(_inner(x) for x in v) + "]"
    raise TemplateError(f"cannot print a {type(v).__name__}")


def _inner(v) -> str:
    return "<nil>" if v is None else go_print(v)


def _type(v) -> str:
    return {bool: "bool", int: "int", str: "string", type(None): "nil"}.get(type(v)) or \
        ("map" if isinstance(v, dict) else "slice" if isinstance(v, (list, tuple)) else type(v).__name__)


def _basic(v):
    if isinstance(v, (dict, list, tuple)):
        raise TemplateError(f"incompatible type for comparison: {_type(v)}")
    return v


def _eq(a, *bs):
    if not bs:
        raise TemplateError("missing argument for comparison")
    a = _basic(a)
    for b in bs:
        b = _basic(b)
        if a is None or b is None:
            if a is b:
                return True
            continue
        if type(a) is not type(b):
            raise TemplateError(f"incompatible types for comparison: {_type(a)} and {_type(b)}")
        if a == b:
            return True
    return False


def _order(a, b) -> int:
    a, b = _basic(a), _basic(b)
    if type(a) is not type(b) or isinstance(a, (bool, type(None))):
        raise TemplateError(f"incompatible types for comparison: {_type(a)} and {_type(b)}")
    return (a > b) - (a < b)


def _len(v):
    if isinstance(v, (str, list, tuple, dict)):
        return len(v.encode("utf-8", "surrogatepass")) if isinstance(v, str) else len(v)
    raise TemplateError(f"len of type {_type(v)}")


def _index(v, *keys):
    for k in keys:
        if isinstance(v, dict):
            if not isinstance(k, str):
                raise TemplateError(f"index of map with key of type {_type(k)}")
            v = v[k] if k in v else getattr(v, "zero", None)
        elif isinstance(v, (list, tuple)):
            if not isinstance(k, int) or isinstance(k, bool):
                raise TemplateError(f"cannot index slice with {_type(k)}")
            if not 0 <= k < len(v):
                raise TemplateError(f"index out of range: {k}")
            v = v[k]
        else:
            raise TemplateError(f"can't index item of type {_type(v)}")
    return v


def _string(v, fn: str) -> str:
    if not isinstance(v, str):
        raise TemplateError(f"wrong type for value in {fn}; expected string; got {_type(v)}")
    return v


def _int(v, fn: str) -> int:
    if not isinstance(v, int) or isinstance(v, bool):
        raise TemplateError(f"wrong type for value in {fn}; expected int; got {_type(v)}")
    return v


def _to_int64(v) -> int:
    """Sprig's toInt64 (spf13/cast): strings parse with Go's base prefixes, else 0."""
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, int):
        return v
    if isinstance(v, str):
        try:
            return int(v.strip(), 0)
        except ValueError:
            return 0
    return 0


def _substr(start, end, s):
    start, end, s = _int(start, "substr"), _int(end, "substr"), _string(s, "substr")
    if start < 0:
        return s[:end]
    if end < 0 or end > len(s):
        return s[start:]
    return s[start:end]


def _first(v):
    if v is None:
        return None
    if not isinstance(v, (list, tuple)):
        raise TemplateError(f"first: cannot find first on type {_type(v)}")
    return v[0] if v else None


def _last(v):
    if v is None:
        return None
    if not isinstance(v, (list, tuple)):
        raise TemplateError(f"last: cannot find last on type {_type(v)}")
    return v[-1] if v else None


_GO_SPACE = " \t\n\v\f\r\x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a" \
            "\u2028\u2029\u202f\u205f\u3000"


def go_trim_space(s: str) -> str:
    return s.strip(_GO_SPACE)


#: text/template's built-ins and the Sprig functions NFD's documentation and tests use
FUNCS: Dict[str, Callable] = {
    "and": None, "or": None,                       # short-circuit: evaluated in _call
    "not": lambda v: not truth(v),
    "len": _len, "index": _index, "print": lambda *a: _sprint(a),
    "eq": _eq, "ne": lambda a, b: not _eq(a, b),
    "lt": lambda a, b: _order(a, b) < 0, "le": lambda a, b: _order(a, b) <= 0,
    "gt": lambda a, b: _order(a, b) > 0, "ge": lambda a, b: _order(a, b) >= 0,
    # Sprig
    "first": _first, "last": _last,
    "trim": lambda s: go_trim_space(_string(s, "trim")),
    "upper": lambda s: _string(s, "upper").upper(), "lower": lambda s: _string(s, "lower").lower(),
    "substr": _substr,
    "add": lambda *a: sum(_to_int64(x) for x in a),
}


def _sprint(args) -> str:
    """fmt.Sprint: a space between operands when neither is a string."""
    out = ""
    for i, a in enumerate(args):
        if i and not isinstance(a, str) and not isinstance(args[i - 1], str):
            out += " "
        out += go_print(a)
    return out


# -- execution ------------------------------------------------------------------------------------

class _Run:
    def __init__(self, data):
        self.data = data
        self.steps = 0
        self.out: List[str] = []
        self.size = 0

    def step(self):
        self.steps += 1
        if self.steps > limits.TEMPLATE_STEPS:
            raise TemplateError(f"more than {limits.TEMPLATE_STEPS} execution steps")

    def emit(self, text: str):
        self.size += len(text)
        if self.size > limits.TEMPLATE_OUTPUT_BYTES:
            raise TemplateError(f"output larger than {limits.TEMPLATE_OUTPUT_BYTES} bytes")
        self.out.append(text)

    def nodes(self, nodes, dot):
        for n in nodes:
            self.step()
            if n.kind == "text":
                self.emit(n.value)
            elif n.kind == "pipe":
                self.emit(go_print(self.pipe(n.value, dot)))
            elif n.kind == "if":
                self.nodes(n.body if truth(self.pipe(n.value, dot)) else n.orelse, dot)
            elif n.kind == "with":
                v = self.pipe(n.value, dot)
                if truth(v):
                    self.nodes(n.body, v)
                else:
                    self.nodes(n.orelse, dot)
            elif n.kind == "range":
                self.range(n, dot)

    def range(self, n: Node, dot):
        v = self.pipe(n.value, dot)
        if isinstance(v, dict):
            items = [v[k] for k in sorted(v)]
        elif isinstance(v, (list, tuple)):
            items = list(v)
        elif v is None:
            items = []
        else:
            raise TemplateError(f"range can't iterate over {go_print(v)}")
        for item in items:
            self.nodes(n.body, item)
        if not items:
            self.nodes(n.orelse, dot)

    def pipe(self, pipe, dot):
        value, have = None, False
        for cmd in pipe:
            value = self.command(cmd, dot, (value,) if have else ())
            have = True
        return value

    def command(self, cmd, dot, piped):
        self.step()
        head = cmd[0]
        if head[0] == "func":
            return self.call(head[1], cmd[1:], dot, piped)
        if len(cmd) > 1 or piped:
            raise TemplateError(f"can't give argument to non-function {_describe(head)}")
        if head == ("const", None):
            raise TemplateError("nil is not a command")
        return self.operand(head, dot)

    def call(self, name, arg_nodes, dot, piped):
        if name in ("and", "or"):
            args = list(arg_nodes)
            if not args and not piped:
                raise TemplateError(f"wrong number of args for {name}: want at least 1 got 0")
            v = None
            for a in args:
                v = self.operand(a, dot)
                if truth(v) != (name == "and"):
                    return v
            if piped:
                v = piped[0]
            return v
        args = [self.operand(a, dot) for a in arg_nodes] + list(piped)
        try:
            return FUNCS[name](*args)
        except TypeError:
            raise TemplateError(f"wrong number of args for {name}: got {len(args)}") from None

    def operand(self, node, dot):
        self.step()
        kind = node[0]
        if kind == "const":
            return node[1]
        if kind == "func":
            return self.call(node[1], (), dot, ())
        if kind == "paren":
            return self.pipe(node[1], dot)
        base = dot if node[1] is None else self.operand(node[1], dot)
        for name in node[2]:
            base = _field(base, name)
        return base


def _describe(node) -> str:
    if node[0] == "const":
        return repr(node[1])
    if node[0] == "field":
        return "." + ".".join(node[2])
    return node[0]


def _field(v, name: str):
    if isinstance(v, dict):
        if name not in v:
            raise TemplateError(f'map has no entry for key "{name}"')
        return v[name]
    if v is None:
        raise TemplateError(f"nil pointer evaluating .{name}")
    raise TemplateError(f"can't evaluate field {name} in type {_type(v)}")


def execute(tree: Tuple[Node, ...], data) -> str:
    run = _Run(data)
    run.nodes(tree, data)
    return "".join(run.out)


def expand_map(tree: Tuple[Node, ...], data) -> Dict[str, str]:
    """NFD's ``Helper.ExpandMap``: the output's non-blank lines as ``key=value`` pairs."""
    out: Dict[str, str] = {}
    for line in execute(tree, data).split("\n"):
        item = go_trim_space(line)
        if not item:
            continue
        if "=" not in item:
            raise TemplateError(f"missing value in expanded template line {item!r}, "
                                "(format must be '<key>=<value>')")
        key, value = item.split("=", 1)
        out[key] = value
    return out
