"""Strict YAML for config files: a duplicated key or a syntax error stops with file:line:col.

PyYAML's SafeLoader lets a second occurrence of a mapping key silently replace the first (a
second block for the same model under ``models:`` would win unnoticed); `StrictLoader` refuses
it. Every YAML problem becomes a `ConfigError` whose message starts with ``FILE:LINE:COL:``
(1-based), so callers print it without a traceback.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

MERGE_TAG = "tag:yaml.org,2002:merge"


class ConfigError(ValueError):
    """A config that cannot be run; the message names the offending key."""


def _where(path: tuple[Any, ...]) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


class StrictLoader(yaml.SafeLoader):
    """A SafeLoader whose mappings refuse duplicate keys (merge keys ``<<`` still work)."""

    def __init__(self, stream: Any, name: str | None = None) -> None:
        super().__init__(stream)
        if name is not None:
            self.name = name  # marks and reader errors name the file, not "<unicode string>"
        self._paths: dict[int, tuple[Any, ...]] = {}

    def construct_document(self, node: Node) -> Any:
        self._record_paths(node)
        return super().construct_document(node)

    def _record_paths(self, root: Node) -> None:
        """Key path of every mapping node, for messages ("under models")."""
        todo: list[tuple[Node, tuple[Any, ...]]] = [(root, ())]
        while todo:
            node, path = todo.pop()
            if id(node) in self._paths:
                continue  # an alias of a node already seen
            if isinstance(node, MappingNode):
                self._paths[id(node)] = path
                for key, value in node.value:
                    name = key.value if isinstance(key, ScalarNode) else "?"
                    todo.append((value, (*path, name)))
            elif isinstance(node, SequenceNode):
                self._paths[id(node)] = path
                todo.extend((item, (*path, i)) for i, item in enumerate(node.value))

    def construct_mapping(self, node: Node, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, MappingNode):
            seen: dict[Any, yaml.Mark] = {}
            for key_node, _ in node.value:
                if key_node.tag == MERGE_TAG:
                    continue  # keys given beside a merge override the merged ones, as intended
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.get(key)
                except TypeError:
                    continue  # unhashable key: SafeLoader reports it
                mark = key_node.start_mark
                if first is not None:
                    path = self._paths.get(id(node))
                    where = "at the top level" if not path else f"under {_where(path)}"
                    raise ConfigError(
                        f"{mark.name}:{mark.line + 1}:{mark.column + 1}: duplicate key {key!r} "
                        f"{where} (first at line {first.line + 1})"
                    )
                seen[key] = mark
        return super().construct_mapping(node, deep=deep)


def _marked(name: str, error: yaml.MarkedYAMLError) -> str:
    mark = error.problem_mark or error.context_mark
    where = f"{name}:{mark.line + 1}:{mark.column + 1}" if mark else name
    problem = error.problem or error.context or "invalid YAML"
    context = ""
    if error.context and error.problem:
        context_line = f" at line {error.context_mark.line + 1}" if error.context_mark else ""
        context = f" ({error.context}{context_line})"
    return f"{where}: {problem}{context}"


def _json_pairs(name: str):
    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in items:
            if key in out:
                raise ConfigError(f"{name}: duplicate key {key!r} (JSON)")
            out[key] = value
        return out

    return pairs


def _json(text: str, name: str) -> Any:
    """JSON that YAML cannot read (tab indentation), as Snakemake accepts it; None if not JSON."""
    try:
        return json.loads(text, object_pairs_hook=_json_pairs(name))
    except json.JSONDecodeError:
        return None


def loads(text: str, name: str = "<string>") -> Any:
    """Parse YAML (or JSON) text strictly; `name` is the file name the messages give."""
    loader = StrictLoader(text, name)
    try:
        return loader.get_single_data()
    except ConfigError as e:  # a duplicate key: drop the constructor's frames
        raise ConfigError(str(e)) from None
    except yaml.MarkedYAMLError as e:
        problem = _marked(name, e)
    except yaml.YAMLError as e:
        raise ConfigError(f"{name}: {e}") from None
    finally:
        loader.dispose()
    data = _json(text, name)
    if data is None:
        raise ConfigError(problem)
    return data


def load_yaml(path: str | Path) -> Any:
    """A YAML file, read strictly (FileNotFoundError when it does not exist)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    return loads(text, str(path))


def load_config(path: str | Path) -> dict[str, Any]:
    """A config file: a YAML mapping, read strictly."""
    data = load_yaml(path)
    if not isinstance(data, dict):
        got = "an empty file" if data is None else f"a {type(data).__name__}"
        raise ConfigError(f"{path}: a config must be a mapping of keys, got {got}")
    return data
