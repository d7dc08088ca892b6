"""TeamUp's sparse fieldsets (`fields=id,status,net_total.decimal`): which names a response
model accepts, the model of an answer cut down to them, and the cutting itself.

Generic over any pydantic response model; the invoice endpoints are its only users today.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, create_model
from pydantic.json_schema import SkipJsonSchema

from ledgerline.errors import ValidationFailed
from ledgerline.request_types import query_values


def _unwrap(annotation: Any) -> list[type[BaseModel]]:
    """The models inside an annotation: `X`, `X | None`, `list[X]`."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [model for arg in get_args(annotation) for model in _unwrap(arg)]


FieldTree = dict[str, "FieldTree | None"]


def field_paths(model: type[BaseModel]) -> list[str]:
    """Every name `fields=` accepts for `model`'s answers, nested ones in dot-notation."""

    def walk(tree: FieldTree, prefix: str) -> list[str]:
        paths: list[str] = []
        for name, below in tree.items():
            paths.append(prefix + name)
            if below is not None:
                paths.extend(walk(below, f"{prefix}{name}."))
        return paths

    return walk(field_tree(model), "")


@cache
def field_tree(model: type[BaseModel]) -> FieldTree:
    """Every field of a response model, nested ones under their parent (None: a leaf):
    what `fields=` may name in dot-notation."""
    tree: FieldTree = {}
    for name, info in model.model_fields.items():
        nested = _unwrap(info.annotation)
        tree[name] = field_tree(nested[0]) if nested else None
    return tree


def _sparse_annotation(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return sparse_model(annotation)
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is list:
        return list[_sparse_annotation(args[0])]  # type: ignore[misc]
    if origin in (Union, UnionType):
        return Union[tuple(_sparse_annotation(arg) for arg in args)]  # noqa: UP007
    return annotation


def _allows_none(annotation: Any) -> bool:
    return annotation is None or type(None) in get_args(annotation)


@cache
def sparse_model(model: type[BaseModel]) -> type[BaseModel]:
    """`model` with every property optional, nested models too: the shape of an answer to a
    request with `fields=` (a sparse fieldset keeps only the keys named). Types stay exact:
    a key that is present is what the full model says."""
    fields: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        annotation = _sparse_annotation(info.annotation)
        if not _allows_none(info.annotation):
            annotation = annotation | SkipJsonSchema[None]  # type: ignore[misc]
        if info.metadata:
            annotation = Annotated[(annotation, *info.metadata)]
        fields[name] = (annotation, Field(default=None, description=info.description))
    title = f"Sparse{model.model_config.get('title') or model.__name__}"
    sparse: type[BaseModel] = create_model(
        title,
        __doc__=f"{model.__doc__ or title}\n\nWith `fields=`, only the keys it names are present.",
        __config__=ConfigDict(title=title),
        **fields,
    )
    return sparse


Selection = dict[str, "Selection | None"]


def parse_fields(values: Sequence[str] | None, model: type[BaseModel]) -> Selection | None:
    """TeamUp's sparse fieldset: `fields=id,status,net_total.decimal,line_items.amount` keeps
    only the keys named (a nested key in dot-notation keeps its parents' path). None when not
    given; a name that is not a field of the answer is a 422 naming it."""
    paths = query_values(values)
    if not paths:
        return None
    tree = field_tree(model)
    selection: Selection = {}
    for path in paths:
        node: FieldTree | None = tree
        chosen: Selection = selection
        parts = path.split(".")
        for depth, part in enumerate(parts):
            if node is None or part not in node:
                raise ValidationFailed.field(["query", "fields"], f"'{path}' is not a field")
            if depth == len(parts) - 1:
                chosen[part] = None  # the whole value
                break
            below = chosen.setdefault(part, {})
            if below is None:  # its parent is already selected whole
                break
            chosen, node = below, node[part]
    return selection


def select_fields(value: Any, selection: Selection) -> Any:
    """`value` (a rendered object, a list of them, or null) cut down to `selection`."""
    if isinstance(value, list):
        return [select_fields(item, selection) for item in value]
    if not isinstance(value, dict):
        return value
    kept: dict[str, Any] = {}
    for key, item in value.items():
        if key in selection:
            below = selection[key]
            kept[key] = item if below is None else select_fields(item, below)
    return kept
