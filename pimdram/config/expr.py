"""Evaluates the small arithmetic expressions allowed in timing values (e.g. "nCL + nBL + 2 - nCWL")."""
import ast
import math
import operator

_BINOPS = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
}
_FUNCS = {"max": max, "min": min, "ceil": math.ceil, "floor": math.floor}


def names_in(text):
    """The variable names an expression refers to."""
    tree = _parse(text)
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and n.id not in _FUNCS}


def evaluate(text, env):
    """Value of `text` with variables from `env`; raises ValueError with a short reason."""
    return _eval(_parse(text).body, env)


def _parse(text):
    try:
        return ast.parse(str(text), mode="eval")
    except SyntaxError:
        raise ValueError(f"cannot parse expression {text!r}") from None


def _eval(node, env):
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return node.value
    if isinstance(node, ast.Name):
        if node.id not in env:
            raise ValueError(f"unknown name {node.id!r}")
        return env[node.id]
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        return _BINOPS[type(node.op)](_eval(node.left, env), _eval(node.right, env))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -_eval(node.operand, env)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCS and not node.keywords:
        return _FUNCS[node.func.id](*[_eval(a, env) for a in node.args])
    raise ValueError("only numbers, timing names, + - * / // and max/min/ceil/floor are allowed")
