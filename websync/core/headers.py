"""HTTP header collections and the WebSocket header grammars (token lists, extension lists)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Union, overload

from .errors import InvalidHeader

__all__ = [
    "Headers",
    "HeadersLike",
    "parse_token_list",
    "parse_extension_list",
    "format_extension_list",
    "redact",
]

HeadersLike = Union["Headers", Mapping[str, str], Iterable[tuple[str, str]]]

SENSITIVE_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie"})


class Headers:
    """An ordered, case-insensitive multi-map of HTTP headers."""

    __slots__ = ("_items",)

    def __init__(self, items: HeadersLike | None = None) -> None:
        self._items: list[tuple[str, str]] = []
        if items is not None:
            self.update(items)

    def update(self, items: HeadersLike) -> None:
        """Append every header of ``items`` (a mapping or (name, value) pairs)."""
        pairs = items.items() if isinstance(items, (Mapping, Headers)) else items
        for name, value in pairs:
            self.add(name, value)

    def add(self, name: str, value: str) -> None:
        if "\r" in name or "\n" in name or "\r" in value or "\n" in value:
            raise ValueError(f"header {name!r} contains a line break")
        self._items.append((name, value))

    def __getitem__(self, name: str) -> str:
        """The value of ``name``; several values are joined with ", "; KeyError when absent."""
        values = self.get_all(name)
        if not values:
            raise KeyError(name)
        return ", ".join(values)

    @overload
    def get(self, name: str) -> str | None: ...

    @overload
    def get(self, name: str, default: str) -> str: ...

    def get(self, name: str, default: str | None = None) -> str | None:
        """The value of ``name`` (several joined with ", "), or ``default`` when absent."""
        try:
            return self[name]
        except KeyError:
            return default

    def get_all(self, name: str) -> list[str]:
        lowered = name.lower()
        return [value for key, value in self._items if key.lower() == lowered]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and bool(self.get_all(name))

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self._items)

    def __len__(self) -> int:
        return len(self._items)

    def items(self) -> list[tuple[str, str]]:
        return list(self._items)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Headers) and self._items == other._items

    def __repr__(self) -> str:
        return f"Headers({redact(self._items)!r})"


def redact(items: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """The header pairs with credentials (Authorization, Cookie, ...) replaced by a placeholder."""
    return [(name, "<redacted>" if name.lower() in SENSITIVE_HEADERS else value) for name, value in items]


_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_QUOTED = r'"(?:[^"\\]|\\.)*"'
_PARAM = re.compile(rf"\s*({_TOKEN})\s*(?:=\s*({_TOKEN}|{_QUOTED}))?\s*")
_TOKEN_RE = re.compile(_TOKEN)


def parse_token_list(value: str) -> list[str]:
    """Parse a comma-separated list of tokens (Sec-WebSocket-Protocol, Upgrade, Connection)."""
    tokens = [item.strip() for item in value.split(",")]
    tokens = [token for token in tokens if token]
    for token in tokens:
        if not _TOKEN_RE.fullmatch(token):
            raise InvalidHeader(f"invalid token {token!r} in header value {value!r}")
    return tokens


def parse_extension_list(value: str) -> list[tuple[str, list[tuple[str, str | None]]]]:
    """Parse Sec-WebSocket-Extensions into ``[(name, [(param, value or None), ...]), ...]``."""
    extensions = []
    for item in _split_outside_quotes(value, ","):
        if not item.strip():
            continue
        name, *raw_params = _split_outside_quotes(item, ";")
        name = name.strip()
        if not _TOKEN_RE.fullmatch(name):
            raise InvalidHeader(f"invalid extension name {name!r} in {value!r}")
        params: list[tuple[str, str | None]] = []
        for raw in raw_params:
            match = _PARAM.fullmatch(raw)
            if match is None:
                raise InvalidHeader(f"invalid extension parameter {raw!r} in {value!r}")
            param_value = match.group(2)
            if param_value is not None and param_value.startswith('"'):
                param_value = re.sub(r"\\(.)", r"\1", param_value[1:-1])
                if not _TOKEN_RE.fullmatch(param_value):
                    raise InvalidHeader(f"quoted extension parameter {raw!r} is not a token")
            params.append((match.group(1), param_value))
        extensions.append((name, params))
    return extensions


def format_extension_list(extensions: Iterable[tuple[str, Iterable[tuple[str, str | None]]]]) -> str:
    """Format ``[(name, params), ...]`` as a Sec-WebSocket-Extensions value."""
    return ", ".join(
        "; ".join([name, *(param if value is None else f"{param}={value}" for param, value in params)])
        for name, params in extensions
    )


def _split_outside_quotes(value: str, separator: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for char in value:
        if escaped:
            escaped = False
        elif char == "\\" and quoted:
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == separator and not quoted:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    if quoted:
        raise InvalidHeader(f"unterminated quoted string in {value!r}")
    parts.append("".join(current))
    return parts
