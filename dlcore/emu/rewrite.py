"""Turn a preprocessed kernel file into C++ that the emulator header can compile.

Two things in CUDA C have no C++ spelling that a header alone can provide:

* `__shared__` declarations. A block's shared memory must be one copy per block, filled with
  NaN when the block starts. Each declaration becomes a reference bound to per-worker storage:
      __shared__ float tile[16][17];
  becomes
      struct dlcore_emu_site_0; float (&tile)[16][17] =
          ::dlcore_emu::shared_variable<float [16][17], 1, dlcore_emu_site_0>();
  (the local struct gives every template instantiation its own variable), and
      extern __shared__ float smem[];
  becomes a pointer to the launch's dynamic shared memory.
* The list of kernels Python can launch. Every non-template `__global__` function and every
  requested name expression ("scale<float>") goes into a table appended to the source.

The input is `g++ -E` output: comments are gone, macros (tile sizes) are expanded and includes are
inlined. Rewrites keep every line where it was, so diagnostics and sanitizer reports point at the
right line of the .cu file.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = ["KERNEL_TABLE_FILE", "RewriteError", "Translation", "translate"]

KERNEL_TABLE_FILE = "<dlcore.emu kernel table>"  # the file name g++ gives errors in the table


class RewriteError(ValueError):
    """The source uses a form of the CUDA dialect that the emulator cannot translate."""


_TOKEN = re.compile(
    r"""
      (?P<directive>^[ \t]*\#[^\n]*)                     # line markers and pragmas
    | (?P<string>(?:u8|[uUL])?"(?:[^"\\\n]|\\.)*")
    | (?P<char>(?:u8|[uUL])?'(?:[^'\\\n]|\\.)*')
    | (?P<ident>[A-Za-z_]\w*)
    | (?P<number>\.?\d(?:[\w.']|[eEpP][+-])*)
    | (?P<punct>::|->|<<=|>>=|<<|>>|<=|>=|==|!=|&&|\|\||\+\+|--|[-+*/%&|^!~=<>?:;,.(){}\[\]])
    | (?P<space>\s+)
    | (?P<other>.)
    """,
    re.VERBOSE | re.MULTILINE,
)


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str
    start: int
    end: int


def _tokenize(source: str) -> list[_Token]:
    return [
        _Token(m.lastgroup, m.group(), m.start(), m.end())
        for m in _TOKEN.finditer(source)
        if m.lastgroup not in ("space", "directive")
    ]


@dataclass
class _Scope:
    kind: str  # "namespace", "linkage" (extern "C" { }) or "code" (anything else)
    name: str = ""


@dataclass
class Translation:
    """The C++ text to compile and the names `Module.get_function` accepts, in table order."""

    source: str
    kernels: list[str] = field(default_factory=list)


def translate(preprocessed: str, name_expressions: tuple[str, ...] = (), filename: str = "") -> Translation:
    """Rewrite `__shared__` declarations and append the kernel table (see the module docstring)."""
    tokens = _tokenize(preprocessed)
    edits: list[tuple[int, int, str]] = []
    kernels: dict[str, str] = {}  # name for get_function -> C++ expression of the function
    scopes: list[_Scope] = []
    statement_start = 0
    sites = 0
    i = 0
    while i < len(tokens):
        token = tokens[i]
        at_namespace_scope = all(s.kind != "code" for s in scopes)
        if token.text == "{":
            scopes.append(_classify_brace(tokens[statement_start:i]))
            statement_start = i + 1
        elif token.text == "}":
            if scopes:
                scopes.pop()
            statement_start = i + 1
        elif token.text == ";":
            statement_start = i + 1
        elif token.text == "__global__" and at_namespace_scope:
            statement = tokens[statement_start:i]
            if not any(t.text == "template" for t in statement):
                key, expression = _kernel_name(tokens, i, scopes, statement)
                kernels.setdefault(key, expression)
        elif token.text == "__shared__":
            start = _declaration_start(tokens, i)
            end = _declaration_end(tokens, i)
            where = _line_of(preprocessed, token.start, filename)
            if at_namespace_scope:
                raise RewriteError(
                    f"{where}: __shared__ variables at namespace scope are not supported by the "
                    "emulator; declare them inside the kernel or device function"
                )
            text, sites = _rewrite_shared(tokens[start : end + 1], sites, where)
            first, last = tokens[start].start, tokens[end].end
            newlines = preprocessed.count("\n", first, last)
            edits.append((first, last, text + "\n" * newlines))
            statement_start = end + 1
            i = end
        i += 1

    for expression in name_expressions:
        kernels[expression] = expression if expression.startswith("::") else "::" + expression
    out = []
    position = 0
    for first, last, text in edits:
        out.append(preprocessed[position:first])
        out.append(text)
        position = last
    out.append(preprocessed[position:])
    out.append(_kernel_table(kernels))
    return Translation("".join(out), list(kernels))


def _line_of(source: str, offset: int, filename: str) -> str:
    """'file.cu:LINE' of an offset in g++ -E output, read from the last line marker before it."""
    line, name = 1, filename
    marker = None
    for marker in re.finditer(r'^#\s*(\d+)\s+"([^"]*)"', source[:offset], re.MULTILINE):
        pass
    if marker is not None:
        name = marker.group(2)
        line = int(marker.group(1)) + source.count("\n", marker.end(), offset) - 1
    return f"{name}:{line}"


def _classify_brace(statement: list[_Token]) -> _Scope:
    texts = [t.text for t in statement]
    if "namespace" in texts and "(" not in texts and "=" not in texts:
        after = texts[texts.index("namespace") + 1 :]
        return _Scope("namespace", "".join(t for t in after if t != "inline"))
    if len(statement) == 2 and texts[0] == "extern" and statement[1].kind == "string":
        return _Scope("linkage")
    return _Scope("code")


def _kernel_name(tokens: list[_Token], i: int, scopes: list[_Scope], statement: list[_Token]) -> tuple[str, str]:
    """(name for get_function, qualified C++ name) of the __global__ function at tokens[i]."""
    j = i + 1
    while j < len(tokens) and tokens[j].text != "(":
        if tokens[j].text == "__launch_bounds__":
            j = _skip_group(tokens, j + 1)
        j += 1
    k = j - 1  # the name, possibly qualified: a :: b
    while k - 2 > i and tokens[k - 1].text == "::" and tokens[k - 2].kind == "ident":
        k -= 2
    written = "".join(t.text for t in tokens[k:j])
    namespaces = [s.name for s in scopes if s.kind == "namespace" and s.name]
    qualified = "::".join([*namespaces, written])
    c_linkage = any(s.kind == "linkage" for s in scopes) or any(t.kind == "string" for t in statement)
    return (tokens[j - 1].text if c_linkage else qualified), "::" + qualified


def _skip_group(tokens: list[_Token], j: int) -> int:
    """Index of the bracket that closes the group opened at tokens[j]."""
    closing = {"(": ")", "[": "]", "{": "}"}[tokens[j].text]
    opening, depth = tokens[j].text, 0
    for k in range(j, len(tokens)):
        depth += (tokens[k].text == opening) - (tokens[k].text == closing)
        if depth == 0:
            return k
    raise RewriteError(f"unbalanced {opening!r} in the kernel source")


def _declaration_start(tokens: list[_Token], i: int) -> int:
    while i > 0 and tokens[i - 1].text not in (";", "{", "}", ":"):
        i -= 1
    return i


def _declaration_end(tokens: list[_Token], i: int) -> int:
    depth = 0
    for k in range(i, len(tokens)):
        text = tokens[k].text
        depth += (text in "([{") - (text in ")]}")
        if text == ";" and depth == 0:
            return k
    raise RewriteError("a __shared__ declaration has no terminating ';'")


_STORAGE = {"__shared__", "__device__", "static", "extern"}


def _rewrite_shared(declaration: list[_Token], site: int, where: str) -> tuple[str, int]:
    """C++ replacing one `__shared__ ...;` declaration; returns it and the next site number."""
    tokens = declaration[:-1]  # without ';'
    is_extern = any(t.text == "extern" for t in tokens)
    align = "1"
    rest: list[_Token] = []
    j = 0
    while j < len(tokens):
        if tokens[j].text in ("__align__", "alignas"):
            close = _skip_group(tokens, j + 1)
            align = " ".join(t.text for t in tokens[j + 2 : close])
            j = close + 1
            continue
        if tokens[j].text not in _STORAGE:
            rest.append(tokens[j])
        j += 1
    base, declarators = _split_declarators(rest, where)
    out = []
    for stars, name, dims in declarators:
        if is_extern:
            if not dims or dims[0] != "[]" or any(d == "[]" for d in dims[1:]):
                raise RewriteError(f"{where}: extern __shared__ {name} must be declared as {name}[]")
            inner = "".join(dims[1:])
            out.append(
                f"{base} {stars}(*{name}){inner} = "
                f"static_cast<{base} {stars}(*){inner}>(::dlcore_emu::dynamic_shared());"
            )
        else:
            if any(d == "[]" for d in dims):
                raise RewriteError(f"{where}: __shared__ array {name} needs a size (or extern for dynamic memory)")
            shape = "".join(dims)
            tag = f"dlcore_emu_site_{site}"
            site += 1
            out.append(
                f"struct {tag}; {base} {stars}(&{name}){shape} = "
                f"::dlcore_emu::shared_variable<{base} {stars}{shape}, {align}, {tag}>();"
            )
    return " ".join(out), site


def _split_declarators(tokens: list[_Token], where: str) -> tuple[str, list[tuple[str, str, list[str]]]]:
    """Split `float *a[2], b` into the base type and (stars, name, dimensions) per declarator."""
    depth = 0
    name_at = None
    for k, t in enumerate(tokens):
        if t.text in ("<", "(", "["):
            depth += 1
        elif t.text in (">", ")", "]"):
            depth -= 1
        elif t.text == ">>":
            depth -= 2
        elif t.kind == "ident" and depth == 0 and k > 0:
            following = tokens[k + 1].text if k + 1 < len(tokens) else ";"
            if following in ("[", ",", ";"):
                name_at = k
                break
    if name_at is None:
        raise RewriteError(f"{where}: cannot read this __shared__ declaration")
    first_star = name_at
    while first_star > 0 and tokens[first_star - 1].text in ("*", "&"):
        first_star -= 1
    base = " ".join(t.text for t in tokens[:first_star])
    declarators = []
    k = first_star
    while k < len(tokens):
        stars = ""
        while tokens[k].text == "*":
            stars += "*"
            k += 1
        if tokens[k].kind != "ident":
            raise RewriteError(f"{where}: cannot read this __shared__ declaration")
        name = tokens[k].text
        k += 1
        dims = []
        while k < len(tokens) and tokens[k].text == "[":
            close = _skip_group(tokens, k)
            dims.append("[" + " ".join(t.text for t in tokens[k + 1 : close]) + "]")
            k = close + 1
        declarators.append((stars, name, dims))
        if k < len(tokens):
            if tokens[k].text != ",":
                raise RewriteError(f"{where}: __shared__ variables cannot have initialisers")
            k += 1
    return base, declarators


def _kernel_table(kernels: dict[str, str]) -> str:
    """The table cuda_emu.h declares: one entry per kernel, then a null entry."""
    entries = "".join(
        f'    dlcore_emu::make_entry< &{expression} >("{_c_string(name)}"),\n' for name, expression in kernels.items()
    )
    return (
        f'\n# 1 "{KERNEL_TABLE_FILE}"\n'
        f"const dlcore_emu::KernelEntry dlcore_emu_kernel_table[] = {{\n{entries}    {{nullptr, nullptr, nullptr}}}};\n"
    )


def _c_string(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')
