"""Line numbers for a TOML text (private to :mod:`immunopet.study.manifest`).

``tomllib`` reports no positions, so after it has parsed a manifest a small tokenizer walks the
text again: it skips strings and comments, counts ``[[...]]`` tables per parent and records the
1-based line of every table, key, inline-table key and array element. A key that is absent is
placed at its table's header line.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

Key = tuple[str | int, ...]
"""A path into the parsed TOML: table names, keys and array indices (from 0)."""

_TOKEN = re.compile(
    r"""
    (?P<nl>\n)
    |(?P<skip>[ \t\r]+|\#[^\n]*)
    |(?P<str>\"\"\"(?:[^\\]|\\[\s\S])*?\"\"\"|'''[\s\S]*?'''|"(?:[^"\\\n]|\\.)*"|'[^'\n]*')
    |(?P<punct>[\[\]{}=,.])
    |(?P<bare>[^\s\[\]{}=,.\#"']+)
    """,
    re.VERBOSE,
)


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str
    line: int
    start: int


_EOF = _Token("eof", "", 0, -1)


def _tokens(text: str) -> list[_Token]:
    found: list[_Token] = []
    line = 1
    for match in _TOKEN.finditer(text):
        kind = match.lastgroup or "skip"
        if kind != "skip":
            found.append(_Token(kind, match.group(), line, match.start()))
        line += match.group().count("\n")
    return found


def _key_name(token: _Token) -> str:
    if token.kind == "str":
        quote = token.text[0]
        inner = token.text[1:-1]
        return inner.replace('\\"', '"').replace("\\\\", "\\") if quote == '"' else inner
    return token.text


class LineIndex:
    """Map every table and key of a (valid) TOML text to its 1-based line; see module notes."""

    def __init__(self, text: str) -> None:
        self.lines: dict[Key, int] = {}
        self._tokens = _tokens(text)
        self._pos = 0
        self._arrays: dict[Key, int] = {}
        self._scan()

    def line_of(self, key: Key) -> int:
        """Line of ``key`` or of its longest recorded prefix (its table); 1 for the root table."""
        for n in range(len(key), 0, -1):
            if key[:n] in self.lines:
                return self.lines[key[:n]]
        return 1

    # -- token helpers
    def _peek(self, offset: int = 0) -> _Token:
        index = self._pos + offset
        return self._tokens[index] if index < len(self._tokens) else _EOF

    def _take(self) -> _Token:
        token = self._peek()
        self._pos += 1
        return token

    def _is(self, text: str, offset: int = 0) -> bool:
        token = self._peek(offset)
        return token.kind == "punct" and token.text == text

    def _skip_newlines(self) -> None:
        while self._peek().kind == "nl":
            self._pos += 1

    def _read_key(self, stop: str) -> tuple[list[str], int]:
        names: list[str] = []
        line = self._peek().line
        while self._peek().kind != "eof" and not self._is(stop) and self._peek().kind != "nl":
            token = self._take()
            if token.kind in ("bare", "str"):
                names.append(_key_name(token))
        return names, line

    def _resolve(self, names: Sequence[str]) -> Key:
        path: list[str | int] = []
        for name in names:
            path.append(name)
            if tuple(path) in self._arrays:
                path.append(self._arrays[tuple(path)] - 1)
        return tuple(path)

    # -- grammar
    def _scan(self) -> None:
        table: Key = ()
        while self._peek().kind != "eof":
            token = self._peek()
            if token.kind == "nl":
                self._pos += 1
            elif self._is("["):
                double = self._is("[", 1) and self._peek(1).start == token.start + 1
                self._pos += 2 if double else 1
                names, line = self._read_key("]")
                self._pos += 2 if double else 1
                if not names:
                    continue
                if double:
                    array = (*self._resolve(names[:-1]), names[-1])
                    index = self._arrays.get(array, 0)
                    self._arrays[array] = index + 1
                    self.lines.setdefault(array, line)
                    table = (*array, index)
                else:
                    table = self._resolve(names)
                self.lines[table] = line
            else:
                self._key_value(table)

    def _key_value(self, table: Key) -> None:
        names, line = self._read_key("=")
        if not self._is("="):  # not a key = value line (cannot happen after tomllib parsed it)
            self._pos += 1
            return
        self._pos += 1
        for n in range(1, len(names) + 1):
            self.lines.setdefault((*table, *names[:n]), line)
        self._value((*table, *names))

    def _value(self, key: Key) -> None:
        token = self._take()
        if token.kind == "punct" and token.text == "[":
            index = 0
            while self._peek().kind != "eof":
                self._skip_newlines()
                if self._is("]"):
                    self._pos += 1
                    return
                self.lines.setdefault((*key, index), self._peek().line)
                self._value((*key, index))
                index += 1
                self._skip_newlines()
                if self._is(","):
                    self._pos += 1
        elif token.kind == "punct" and token.text == "{":
            while self._peek().kind != "eof":
                self._skip_newlines()
                if self._is("}"):
                    self._pos += 1
                    return
                names, line = self._read_key("=")
                self._pos += 1
                for n in range(1, len(names) + 1):
                    self.lines.setdefault((*key, *names[:n]), line)
                self._value((*key, *names))
                self._skip_newlines()
                if self._is(","):
                    self._pos += 1
        else:
            while self._peek().kind not in ("eof", "nl") and not any(
                self._is(stop) for stop in (",", "]", "}")
            ):
                self._pos += 1


def dotted(key: Key) -> str:
    """A manifest key as written in messages: ``patients[0].fdg.pet``.

    Examples
    --------
    >>> dotted(("patients", 0, "fdg", "pet"))
    'patients[0].fdg.pet'
    """
    text = ""
    for part in key:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text
