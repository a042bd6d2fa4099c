"""Reading recipe YAML safely: recipe files and ``--set`` values go through :class:`RecipeLoader`, a safe loader
that also refuses duplicate keys, aliases, deep nesting and files over :data:`MAX_RECIPE_BYTES`, each with the
source, line and column."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from hfnlp.errors import RecipeError

MAX_RECIPE_BYTES = 1_000_000  # recipes are a few kB; a bound keeps a wrong path or a hostile file from costing memory
MAX_RECIPE_DEPTH = 50  # nesting levels; PyYAML composes recursively, so a deeper file would end in a RecursionError


class RecipeLoader(yaml.SafeLoader):
    """PyYAML's safe loader, stricter where a recipe is concerned.

    Duplicate keys are refused (plain YAML loading keeps the last one: a second ``training:`` section would
    silently replace the first); aliases are refused (nested aliases expand exponentially: 865 bytes became 106 MB
    and 2.7 GB of memory); nesting deeper than :data:`MAX_RECIPE_DEPTH` is refused. Errors are
    :class:`RecipeError` naming the source and line.
    """

    def __init__(self, text: str, source: str) -> None:
        super().__init__(text)
        self.name = source  # in every mark, so that errors name the file (or the --set option), not "<unicode string>"
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise RecipeError(
                f"{_place(event.start_mark)}: YAML aliases (*{event.anchor}) are not allowed in a recipe; "
                "write the value out"
            )
        self._depth += 1
        if self._depth > MAX_RECIPE_DEPTH:
            place = _place(self.peek_event().start_mark)
            raise RecipeError(f"{place}: nested more than {MAX_RECIPE_DEPTH} levels deep; a recipe needs a few")
        node = super().compose_node(parent, index)
        self._depth -= 1
        return node

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, LookupError, ArithmeticError) as error:  # a scalar its tag refuses: `!!int x`, `2001-13-45`
            tag = node.tag.replace("tag:yaml.org,2002:", "!!")
            raise RecipeError(f"{_place(node.start_mark)}: not valid YAML: {node.value!r} is not a {tag}") from error

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                continue  # complex keys are refused by SafeLoader itself; merge keys are not duplicates
            key = self.construct_object(key_node)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise RecipeError(
                    f"{_place(key_node.start_mark)}: duplicate key {key!r} (first on line {seen[key]}); "
                    "keep one and merge their contents"
                )
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def load_yaml(text: str, source: str) -> Any:
    """``text`` parsed with :class:`RecipeLoader`; a :class:`RecipeError` naming ``source``, line and column if it
    is not valid YAML."""
    try:
        loader = RecipeLoader(text, source)  # already reads, and refuses control characters
        try:
            return loader.get_single_data()
        finally:
            loader.dispose()
    except yaml.reader.ReaderError as error:
        character = chr(error.character) if isinstance(error.character, int) else error.character
        raise RecipeError(
            f"{source}: not valid YAML: {error.reason} ({character!r} at character {error.position + 1})"
        ) from error
    except yaml.MarkedYAMLError as error:
        context = f" ({error.context} on line {error.context_mark.line + 1})" if error.context_mark else ""
        place = _place(error.problem_mark) if error.problem_mark else source
        raise RecipeError(f"{place}: not valid YAML: {error.problem}{context}") from error


def _place(mark: yaml.Mark) -> str:
    return f"{mark.name}, line {mark.line + 1}, column {mark.column + 1}"


def read_recipe_file(path: str | Path) -> dict[str, Any]:
    """The YAML mapping of a recipe file (see :class:`RecipeLoader`), or a :class:`RecipeError` naming the file."""
    path = Path(path)
    if not path.is_file():
        raise RecipeError(f"recipe file not found: {path}")
    size = path.stat().st_size
    if size > MAX_RECIPE_BYTES:
        raise RecipeError(f"{path}: {size} bytes is too large for a recipe (at most {MAX_RECIPE_BYTES}); is it one?")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise RecipeError(f"{path}: not UTF-8 text (byte {error.start}); save the recipe as UTF-8") from error
    except OSError as error:
        raise RecipeError(f"{path}: cannot read the recipe: {error.strerror}") from error
    raw = load_yaml(text, str(path))
    if not isinstance(raw, dict):
        raise RecipeError(f"{path}: a recipe must be a mapping of sections, got {type(raw).__name__}")
    return raw
