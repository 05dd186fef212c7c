"""A small evaluator of the GitHub Actions expressions the project's workflows use.

Enough of the language for simple expressions: contexts (``vars.X``, ``secrets.X``, ``env.X``,
``github.event.pull_request.head.sha``, ``steps.ID.outputs.NAME``, ``steps.ID.outcome``),
string, number and boolean literals, ``==`` ``!=`` ``&&`` ``||`` ``!`` and parentheses, and the
functions ``always()``, ``success()``, ``failure()``, ``cancelled()``, ``contains(a, b)``,
``startsWith(a, b)``. As on a runner, a missing property is null, ``||`` and ``&&`` return an
operand, and comparisons of strings ignore case. Anything else raises ``ValueError``, so a
workflow that grows a construct this harness does not know fails its test instead of being
misread.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<num>-?\d+(?:\.\d+)?)|(?P<op>==|!=|&&|\|\||!|\(|\)|,|\.)"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_-]*))"
)
TEMPLATE = re.compile(r"\$\{\{(.*?)\}\}", re.S)
STATUS_FUNCTIONS = ("always(", "success(", "failure(", "cancelled(")


def tokenize(text: str) -> list[tuple[str, str]]:
    """``[(kind, text)]``; raises ValueError on anything the evaluator does not know."""
    tokens, position = [], 0
    text = text.strip()
    while position < len(text):
        match = TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise ValueError(f"expression {text!r}: unsupported syntax at {text[position:]!r}")
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
        position = match.end()
    return tokens


def truthy(value: Any) -> bool:
    return value not in (None, False, 0, "")


def _loose(value: Any) -> Any:
    if value is None:
        return ""
    return value.lower() if isinstance(value, str) else value


class _Parser:
    def __init__(self, text: str, contexts: Mapping[str, Any], status: str) -> None:
        self.text, self.tokens, self.position = text, tokenize(text), 0
        self.contexts, self.status = contexts, status

    def peek(self) -> str | None:
        return self.tokens[self.position][1] if self.position < len(self.tokens) else None

    def take(self, expected: str | None = None) -> tuple[str, str]:
        if self.position >= len(self.tokens):
            raise ValueError(f"expression {self.text!r}: unexpected end")
        token = self.tokens[self.position]
        if expected is not None and token[1] != expected:
            raise ValueError(f"expression {self.text!r}: expected {expected!r}, got {token[1]!r}")
        self.position += 1
        return token

    def parse(self) -> Any:
        value = self.or_()
        if self.position != len(self.tokens):
            raise ValueError(f"expression {self.text!r}: unexpected {self.peek()!r}")
        return value

    def or_(self) -> Any:
        value = self.and_()
        while self.peek() == "||":
            self.take()
            right = self.and_()
            value = value if truthy(value) else right
        return value

    def and_(self) -> Any:
        value = self.not_()
        while self.peek() == "&&":
            self.take()
            right = self.not_()
            value = right if truthy(value) else value
        return value

    def not_(self) -> Any:
        if self.peek() == "!":
            self.take()
            return not truthy(self.not_())
        return self.compare()

    def compare(self) -> Any:
        value = self.primary()
        if self.peek() in ("==", "!="):
            operator = self.take()[1]
            right = self.primary()
            equal = _loose(value) == _loose(right)
            return equal if operator == "==" else not equal
        return value

    def primary(self) -> Any:
        kind, text = self.take()
        if text == "(":
            value = self.or_()
            self.take(")")
            return value
        if kind == "str":
            return text[1:-1].replace("''", "'")
        if kind == "num":
            return float(text) if "." in text else int(text)
        if kind != "name":
            raise ValueError(f"expression {self.text!r}: unexpected {text!r}")
        if text in ("true", "false"):
            return text == "true"
        if text == "null":
            return None
        if self.peek() == "(":
            return self.call(text)
        if text not in self.contexts:
            raise ValueError(f"expression {self.text!r}: unknown context {text!r}")
        value: Any = self.contexts[text]
        while self.peek() == ".":
            self.take()
            key = self.take()[1]
            value = value.get(key) if isinstance(value, Mapping) else None
        return value

    def call(self, name: str) -> Any:
        self.take("(")
        args = []
        while self.peek() != ")":
            args.append(self.or_())
            if self.peek() == ",":
                self.take()
        self.take(")")
        if name == "always":
            return True
        if name == "success":
            return self.status == "success"
        if name == "failure":
            return self.status == "failure"
        if name == "cancelled":
            return False
        if name == "contains":
            return str(_loose(args[1])) in str(_loose(args[0]))
        if name == "startsWith":
            return str(_loose(args[0])).startswith(str(_loose(args[1])))
        raise ValueError(f"expression {self.text!r}: unsupported function {name}()")


def evaluate(expression: str, contexts: Mapping[str, Any], status: str = "success") -> Any:
    """The value of one expression (the text inside ``${{ }}``); ``status`` is the job's so far."""
    return _Parser(expression, contexts, status).parse()


def as_text(value: Any) -> str:
    """A value as a runner writes it into a string: null is empty, booleans are lower case."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def interpolate(text: str, contexts: Mapping[str, Any], status: str = "success") -> str:
    """``text`` with every ``${{ expression }}`` replaced by its value."""
    return TEMPLATE.sub(lambda match: as_text(evaluate(match.group(1), contexts, status)), text)


def condition(text: str | bool | None, contexts: Mapping[str, Any], status: str) -> bool:
    """Whether a step with this ``if:`` runs: no status function means ``success() && (...)``."""
    if text is None:
        return status == "success"
    if isinstance(text, bool):
        return text and status == "success"
    expression = text.strip()
    whole = TEMPLATE.fullmatch(expression)
    if whole:
        expression = whole.group(1).strip()
    if not any(function in expression for function in STATUS_FUNCTIONS):
        expression = f"success() && ({expression})"
    return truthy(evaluate(expression, contexts, status))
