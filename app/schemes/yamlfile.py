"""YAML with line numbers: scheme files are read with PyYAML's safe loader (no tags, no code), and every
mapping and list remembers the line of each of its entries, so that a semantic error ("unknown fact")
points at its file and line just as a syntax error does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from app.schemes.base import SchemeDefinitionError


class LDict(dict):
    """A mapping that knows the line where it starts and where each key is."""

    line: int = 0
    key_lines: dict[Any, int]

    def line_of(self, key: Any) -> int:
        return self.key_lines.get(key, self.line)


class LList(list):
    line: int = 0
    item_lines: list[int]

    def line_of(self, index: int) -> int:
        return self.item_lines[index] if index < len(self.item_lines) else self.line


class _Loader(yaml.SafeLoader):
    pass


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> LDict:
    loader.flatten_mapping(node)
    mapping = LDict()
    mapping.line = node.start_mark.line + 1
    mapping.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, (str, int, bool)):
            raise SchemeDefinitionError("a key must be a plain word", line=key_node.start_mark.line + 1)
        if key in mapping:
            raise SchemeDefinitionError(f"'{key}' is given twice", line=key_node.start_mark.line + 1)
        mapping[key] = loader.construct_object(value_node, deep=True)
        mapping.key_lines[key] = key_node.start_mark.line + 1
    return mapping


def _construct_sequence(loader: _Loader, node: yaml.SequenceNode) -> LList:
    sequence = LList(loader.construct_object(child, deep=True) for child in node.value)
    sequence.line = node.start_mark.line + 1
    sequence.item_lines = [child.start_mark.line + 1 for child in node.value]
    return sequence


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


def load(text: str, *, source: str) -> Any:
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass: no tags, no objects
    except SchemeDefinitionError as exc:
        raise SchemeDefinitionError(exc.message, source=source, line=exc.line) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        raise SchemeDefinitionError(f"YAML syntax: {problem}", source=source,
                                    line=mark.line + 1 if mark else None) from None
    except yaml.YAMLError as exc:
        raise SchemeDefinitionError(f"YAML: {exc}", source=source) from None


def load_file(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SchemeDefinitionError(f"cannot read: {exc}", source=str(path)) from None
    return load(text, source=str(path))
