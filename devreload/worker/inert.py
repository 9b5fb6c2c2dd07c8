"""Which of a module's top-level statements are inert: they can change nothing outside
the module (imports, docstrings, plain ``def``, classes without a base, names bound to
literals), so that what a library does at import after them is what it does in a fresh
interpreter. The rule of the pure prefix (:mod:`devreload.worker.preload`) rests on it.

A statement that is not inert may still be caught before it did anything: evaluating
``class Settings(pydantic.BaseModel)`` looks up ``pydantic.BaseModel`` first, and a
library that imports its modules on first attribute access (PEP 562) imports them then,
before the class statement calls anything. Its bytecode so far says so.
"""

from __future__ import annotations

import ast
import dis
import functools
import math
import sys
from types import CodeType, FrameType

#: Instructions that only load a name, an attribute or a constant, or make a function or
#: class body object without calling it: a statement that ran only these changed nothing.
#: Anything else (a call, a store, a jump, an operator that may run a method) is not.
LOADS = frozenset({
    "CACHE", "EXTENDED_ARG", "NOP", "RESUME", "PUSH_NULL", "LOAD_CONST", "LOAD_SMALL_INT",
    "LOAD_NAME", "LOAD_GLOBAL", "LOAD_ATTR", "LOAD_METHOD", "LOAD_BUILD_CLASS",
    "MAKE_FUNCTION", "SET_FUNCTION_ATTRIBUTE",
})

#: What a module of only imports, names bound to constants and plain functions compiles
#: to. A module body of these alone is inert: its code says so without its source.
PLAIN = frozenset({
    "CACHE", "EXTENDED_ARG", "NOP", "RESUME", "LOAD_CONST", "LOAD_SMALL_INT", "STORE_NAME",
    "IMPORT_NAME", "IMPORT_FROM", "POP_TOP", "MAKE_FUNCTION", "SET_FUNCTION_ATTRIBUTE",
    "RETURN_VALUE", "RETURN_CONST",
})


def plainly_inert(code: CodeType) -> bool:
    """Whether a module body's code is made of PLAIN instructions only: no call, no
    lookup, no jump. Anything else is left to the rules on its source."""
    raw = code.co_code
    return all(dis.opname[raw[i]] in PLAIN for i in range(0, len(raw), 2))


@functools.lru_cache(maxsize=4096)
def _statements(filename: str) -> tuple[tuple[int, int, bool], ...] | None:
    """(first line, last line, inert) of each top-level statement; None when unreadable."""
    try:
        with open(filename, "rb") as f:
            tree = ast.parse(f.read(), filename)
    except (OSError, SyntaxError, ValueError):
        return None
    return tuple(
        (node.lineno, node.end_lineno or node.lineno, _inert(node)) for node in tree.body
    )


def inert_before(filename: str, line: int | None) -> bool:
    """Whether the top-level statements run so far (all of them when ``line`` is None;
    else those before ``line`` and the one at it) are inert. Asked at every import a
    module makes: one lookup, however long the module."""
    first = first_active(filename)
    return first == math.inf if line is None else first > line


@functools.lru_cache(maxsize=4096)
def first_active(filename: str) -> float:
    """The first line of the first statement that is not inert: infinity when all are,
    0 when the file cannot be read (then nothing counts as inert)."""
    statements = _statements(filename)
    if statements is None:
        return 0
    return next((first for first, _, inert in statements if not inert), math.inf)


def _inert(node: ast.stmt) -> bool:
    """True when running ``node`` at module level can change nothing outside the module."""
    if isinstance(node, (ast.Import, ast.ImportFrom, ast.Pass)):
        return True
    if isinstance(node, ast.Expr):
        return isinstance(node.value, ast.Constant)
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        args = node.args
        defaults = [*args.defaults, *(d for d in args.kw_defaults if d is not None)]
        return not node.decorator_list and all(_inert_expr(d) for d in defaults)
    if isinstance(node, ast.ClassDef):
        # A base class runs its metaclass and __init_subclass__: a model class registers
        # itself with its library (Django's models, SQLAlchemy's mappers).
        return (
            not node.decorator_list
            and not node.keywords
            and all(isinstance(b, ast.Name) and b.id == "object" for b in node.bases)
            and all(_inert(s) for s in node.body)
        )
    if isinstance(node, ast.Assign):
        return all(_name_target(t) for t in node.targets) and _inert_expr(node.value)
    if isinstance(node, ast.AnnAssign):
        return _name_target(node.target) and (node.value is None or _inert_expr(node.value))
    if isinstance(node, ast.If):
        return _inert_expr(node.test) and all(_inert(s) for s in [*node.body, *node.orelse])
    if isinstance(node, ast.Try):
        handlers_ok = all(h.type is None or _inert_expr(h.type) for h in node.handlers)
        bodies = [*node.body, *node.orelse, *node.finalbody]
        bodies += [s for h in node.handlers for s in h.body]
        return handlers_ok and all(_inert(s) for s in bodies)
    return False


def _name_target(node: ast.expr) -> bool:
    if isinstance(node, (ast.Tuple, ast.List)):
        return all(_name_target(e) for e in node.elts)
    return isinstance(node, ast.Name)


def _inert_expr(node: ast.expr) -> bool:
    if isinstance(node, (ast.Constant, ast.Name, ast.Lambda)):
        return True
    if isinstance(node, ast.Attribute):
        return _inert_expr(node.value)
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return all(_inert_expr(e) for e in node.elts)
    if isinstance(node, ast.Dict):
        return all(k is None or _inert_expr(k) for k in node.keys) and all(
            _inert_expr(v) for v in node.values
        )
    if isinstance(node, ast.UnaryOp):
        return _inert_expr(node.operand)
    if isinstance(node, ast.BinOp):
        return _inert_expr(node.left) and _inert_expr(node.right)
    if isinstance(node, ast.BoolOp):
        return all(_inert_expr(v) for v in node.values)
    if isinstance(node, ast.Compare):
        return _inert_expr(node.left) and all(_inert_expr(c) for c in node.comparators)
    if isinstance(node, ast.Subscript):
        return _inert_expr(node.value) and _inert_expr(node.slice)
    return False


def inert_so_far(frame: FrameType) -> bool:
    """Whether ``frame``, a module body, runs a statement that follows only inert ones and
    has itself run nothing but loads up to the instruction under way (which is one too):
    a library's lazy import from the bases of a class statement is still in the prefix."""
    filename = frame.f_code.co_filename
    statement = _statement_at(filename, frame.f_lineno)
    if statement is None or first_active(filename) != statement[0]:
        return False
    first, last = statement
    for offset, opname, line in reversed(_instructions(frame.f_code)):
        if offset > frame.f_lasti:
            continue
        if line is not None and not first <= line <= last:
            return True  # the statement's first instruction is behind
        if opname not in LOADS:
            return False
    return True


def _statement_at(filename: str, line: int | None) -> tuple[int, int] | None:
    """The first and last line of the top-level statement at ``line``."""
    statements = _statements(filename)
    if statements is None or line is None:
        return None
    return next(((a, b) for a, b, _ in statements if a <= line <= b), None)


@functools.lru_cache(maxsize=256)
def _instructions(code: CodeType) -> tuple[tuple[int, str, int | None], ...]:
    """(offset, name, line) of each instruction of ``code``, in order."""
    ranges = iter(code.co_lines())
    start, end, line = next(ranges, (0, 0, None))
    result = []
    for instruction in dis.get_instructions(code):
        offset = instruction.offset
        while offset >= end:
            start, end, line = next(ranges, (end, sys.maxsize, None))
        result.append((offset, instruction.opname, line if offset >= start else None))
    return tuple(result)
