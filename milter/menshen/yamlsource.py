"""YAML loading that remembers where every key and list item came from.

In:  YAML text and the name of the file it came from.
Out: plain dicts and lists (subclasses `LocatedMap` / `LocatedList`) that also carry the
     1-based line of each key or item, so validation errors can say `file:line: key.path`.
Fails: `YamlSyntaxError` with file:line for malformed YAML, a character YAML does not
       allow, or a duplicated key, and for nesting too deep for PyYAML's recursive
       composer (RecursionError). Only the safe constructors are used (same tag set as
       `yaml.safe_load`): no Python objects.
Thread safety: stateless; each call builds its own loader.
"""

from __future__ import annotations

from typing import Any

import yaml


class YamlSyntaxError(Exception):
    """The text is not valid YAML for a config file; the message names file and line."""


class LocatedMap(dict[str, Any]):
    """A mapping that also knows the line of each key (1-based) and of itself."""

    line: int
    key_lines: dict[str, int]


class LocatedList(list[Any]):
    """A sequence that also knows the line of each item (1-based) and of itself."""

    line: int
    item_lines: list[int]


class _LocatingLoader(yaml.SafeLoader):
    """SafeLoader whose mappings and sequences record source lines and refuse duplicates."""

    def construct_mapping(  # type: ignore[override]
        self, node: yaml.MappingNode, deep: bool = False
    ) -> LocatedMap:
        if not isinstance(node, yaml.MappingNode):
            raise yaml.constructor.ConstructorError(
                None, None, f"expected a mapping, found {node.id}", node.start_mark
            )
        self.flatten_mapping(node)
        result = LocatedMap()
        result.line = node.start_mark.line + 1
        result.key_lines = {}
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, str):
                # Keys are names in our schema; a number or null key is a typo worth naming.
                key = str(key)
            if key in result:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"duplicate key {key!r} (first on line {result.key_lines[key]})",
                    key_node.start_mark,
                )
            result[key] = self.construct_object(value_node, deep=True)
            result.key_lines[key] = key_node.start_mark.line + 1
        return result

    def construct_located_sequence(self, node: yaml.SequenceNode) -> LocatedList:
        result = LocatedList(self.construct_object(child, deep=True) for child in node.value)
        result.line = node.start_mark.line + 1
        result.item_lines = [child.start_mark.line + 1 for child in node.value]
        return result


_LocatingLoader.add_constructor(
    "tag:yaml.org,2002:map",
    _LocatingLoader.construct_mapping,
)
_LocatingLoader.add_constructor(
    "tag:yaml.org,2002:seq",
    _LocatingLoader.construct_located_sequence,
)


def load_located_yaml(text: str, source: str) -> Any:
    """Parse one YAML document; mappings become LocatedMap and sequences LocatedList."""
    try:
        loader = _LocatingLoader(text)
    except yaml.reader.ReaderError as exc:
        # Raised before any parsing: a character YAML does not allow (a control, U+FFFE).
        line = text.count("\n", 0, max(exc.position, 0)) + 1
        raise YamlSyntaxError(
            f"{source}:{line}: character U+{exc.character:04X} is not allowed in YAML"
        ) from None
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(f"{source}: {exc}") from None
    try:
        return loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 0
        problem = exc.problem or exc.context or "invalid YAML"
        raise YamlSyntaxError(f"{source}:{line}: {problem}") from None
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(f"{source}: {exc}") from None
    except RecursionError:
        # PyYAML composes and constructs recursively: thousands of nested [ or { .
        raise YamlSyntaxError(f"{source}: nesting too deep to be a configuration") from None
    finally:
        loader.dispose()
