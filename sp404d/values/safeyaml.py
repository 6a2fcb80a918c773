"""YAML for metadata files: the safe subset, and a one-line reason for anything else.

PyYAML's SafeLoader constructs no objects, but still takes anchors and aliases (a "billion
laughs" document), custom tags, deep nesting, duplicate keys and YAML 1.1's surprises (``no``
as false, ``012`` as octal). Sidecars come from anywhere a sync client brings them, so all of
that is refused before anything is built. A module of its own so that PyYAML is only imported
when a metadata file is actually read.
"""

from __future__ import annotations

import re

import yaml
from yaml.events import AliasEvent, NodeEvent
from yaml.nodes import MappingNode, Node, ScalarNode


class InvalidYamlError(ValueError):
    """Not the YAML a metadata file may hold; the message is a one-line reason.

    ``line`` (from 1) is where the problem is, when known, and ``detail`` the reason without
    the position, for callers that put the line in front (``config: FILE line 3: ...``).
    """

    def __init__(self, message: str, *, line: int | None = None, detail: str | None = None):
        super().__init__(message)
        self.line = line
        self.detail = detail or message


class _RefusedError(yaml.YAMLError):
    """A YAML feature metadata files may not use; the message follows "sidecar X: "."""

    def __init__(self, message: str, mark: object = None) -> None:
        super().__init__(message)
        line = getattr(mark, "line", None)  # a Mark of the pure-Python or the C parser
        self.line = line + 1 if isinstance(line, int) else None


_TAG = "tag:yaml.org,2002:"
_PLAIN_TAGS = frozenset(
    _TAG + name for name in ("str", "int", "float", "bool", "null", "seq", "map")
)
_MAX_DEPTH = 10

# Implicit types, YAML 1.2 style: (tag, pattern, first characters). No yes/no/on/off booleans,
# no octal, hex or sexagesimal ints, no timestamps, no merge keys. Float goes before int.
_IMPLICIT_TYPES: tuple[tuple[str, str, str], ...] = (
    ("bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    (
        "float",
        r"^(?:[-+]?(?:(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?|[0-9]+[eE][-+]?[0-9]+)"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
        "-+0123456789.",
    ),
    # "08" or "007" stays text: pad and bpm read it as decimal, a title keeps its zeros.
    ("int", r"^[-+]?(?:0|[1-9][0-9]*)$", "-+0123456789"),
    ("null", r"^(?:~|null|Null|NULL|)$", "~nN"),
)


def _implicit_resolvers() -> dict[str, list[tuple[str, re.Pattern[str]]]]:
    table: dict[str, list[tuple[str, re.Pattern[str]]]] = {}
    for name, pattern, first in _IMPLICIT_TYPES:
        compiled = re.compile(pattern)
        # "" is where PyYAML looks for the empty scalar (``key:``), which is null.
        for ch in [*first, ""] if name == "null" else first:
            table.setdefault(ch, []).append((_TAG + name, compiled))
    return table


def _show_tag(tag: str) -> str:
    return "!!" + tag.removeprefix(_TAG) if tag.startswith(_TAG) else tag


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader minus anchors, aliases, non-plain tags, deep nesting and duplicate keys.

    Refusing at compose time means nothing from a refused document is ever constructed.
    """

    yaml_implicit_resolvers = _implicit_resolvers()

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        # types-PyYAML leaves peek_event unannotated; it returns the next parser Event.
        event: object = self.peek_event()  # type: ignore[no-untyped-call]
        if isinstance(event, AliasEvent):
            raise _RefusedError(f"YAML aliases (*{event.anchor}) are not allowed", event.start_mark)
        if isinstance(event, NodeEvent) and event.anchor is not None:
            raise _RefusedError(f"YAML anchors (&{event.anchor}) are not allowed", event.start_mark)
        self._depth += 1
        try:
            if self._depth > _MAX_DEPTH:
                mark = event.start_mark if isinstance(event, NodeEvent) else None
                raise _RefusedError("lists or mappings are nested too deeply", mark)
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        if node is None:
            return None
        if node.tag not in _PLAIN_TAGS:
            raise _RefusedError(
                f"YAML tag {_show_tag(node.tag)} is not allowed "
                "(only plain text, numbers, true/false, lists and mappings)",
                node.start_mark,
            )
        if isinstance(node, MappingNode):
            seen: set[str] = set()
            for key_node, _ in node.value:
                if isinstance(key_node, ScalarNode):
                    name = str(key_node.value).strip().lower()
                    if name in seen:
                        raise _RefusedError(f"{name} is given twice", key_node.start_mark)
                    seen.add(name)
        return node


def _line_of(text: str, position: int) -> int:
    return text.count("\n", 0, position) + 1


def _tab_problem(text: str, mark: yaml.Mark) -> str:
    """PyYAML's "found character '\\t' that cannot start any token", said plainly."""
    lines = text.splitlines()
    before = lines[mark.line][: mark.column] if mark.line < len(lines) else ""
    if not before.strip():
        return "a tab is used for indentation; YAML needs spaces"
    return "a tab where YAML allows only spaces"


def parse(data: bytes) -> object:
    """Bytes -> plain Python data, or InvalidYamlError with a one-line reason."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidYamlError(
            f"not UTF-8 text (byte 0x{data[exc.start]:02x} at position {exc.start}); "
            "save it as UTF-8",
            line=data.count(b"\n", 0, exc.start) + 1,
            detail=f"not UTF-8 text (byte 0x{data[exc.start]:02x}); save it as UTF-8",
        ) from None
    loader: _StrictLoader | None = None
    try:
        loader = _StrictLoader(text)  # checks for unprintable characters already
        return loader.get_single_data()
    except _RefusedError as exc:
        raise InvalidYamlError(str(exc), line=exc.line) from None
    except yaml.reader.ReaderError as exc:
        what = f"not a text file (control character #x{exc.character:04x}"
        raise InvalidYamlError(
            f"{what} at position {exc.position})",
            line=_line_of(text, exc.position),
            detail=f"{what})",
        ) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        problem = " ".join((exc.problem or exc.context or "unreadable").split())
        if exc.context and problem.startswith("but "):  # "expected a single document ... but"
            problem = " ".join(f"{exc.context} {problem}".split())
        if mark is not None and "'\\t'" in problem:
            detail = _tab_problem(text, mark)
        else:
            detail = f"not valid YAML: {problem}"
        if mark is None:
            raise InvalidYamlError(detail) from None
        raise InvalidYamlError(
            f"{detail} (line {mark.line + 1}, column {mark.column + 1})",
            line=mark.line + 1,
            detail=detail if detail.startswith("a tab") else f"{detail} (column {mark.column + 1})",
        ) from None
    except ValueError:  # PyYAML's int(): more digits than Python converts
        raise InvalidYamlError("a number has too many digits") from None
    except (yaml.YAMLError, RecursionError) as exc:
        raise InvalidYamlError(f"not valid YAML ({type(exc).__name__})") from None
    finally:
        if loader is not None:
            loader.dispose()
