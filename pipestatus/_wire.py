"""Shared pieces of the vendors' wire schemas: a strict cattrs converter and one entry point
that turns any structuring failure into a ``ResponseError`` with a field path.

The converter is strict where cattrs is lenient by default (PITFALLS.md): a ``str`` field takes
only a string (not ``None``, which cattrs would turn into ``"None"``), an ``int`` field only an
integer (not ``1.9``, ``True`` or ``"7"``), an attrs class only a JSON object and a list only a
JSON array. IDs are the exception: vendors send them as integers or strings, so ``WireId``
takes both and yields a ``str``. Extra keys are ignored: vendors add fields.

A wire field whose JSON key is not its Python name says so in its metadata:
``attrs.field(metadata={WIRE_KEY: 'updated_at"'})``; a vendor whose keys all follow one rule
(camelCase, say) passes ``key=`` to :func:`make_converter`.
"""

from __future__ import annotations

from collections.abc import Callable
from types import UnionType
from typing import Any, Final, NewType, TypeVar, Union, get_args, get_origin

import attrs
import cattrs
from cattrs.cols import list_structure_factory
from cattrs.errors import AttributeValidationNote
from cattrs.gen import make_dict_structure_fn, override
from cattrs.v import format_exception as _cattrs_format

from pipestatus.errors import ResponseError

__all__ = ["WIRE_KEY", "WireId", "json_type", "make_converter", "structure"]

T = TypeVar("T")

#: An ID as a vendor sends it (a non-empty string or a non-negative integer), held as ``str``.
WireId = NewType("WireId", str)

#: Metadata key naming a field's JSON key where it differs from the Python name.
WIRE_KEY: Final = "pipestatus.wire_key"

_MAX_ID_LENGTH: Final = 256


class WireTypeError(TypeError):
    """A JSON value of the wrong kind; its text is shown to the user as is."""


def json_type(value: object) -> str:
    """The JSON name of a decoded value's kind, for error messages."""
    match value:
        case None:
            return "null"
        case bool():
            return "boolean"
        case int() | float():
            return "number"
        case str():
            return "string"
        case list():
            return "array"
        case dict():
            return "object"
    return type(value).__name__


def _structure_str(value: object, _: object) -> str:
    if isinstance(value, str):
        return value
    raise WireTypeError(f"expected a string, got {json_type(value)}")


def _structure_int(value: object, _: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise WireTypeError(f"expected an integer, got {json_type(value)}")


def _structure_bool(value: object, _: object) -> bool:
    if isinstance(value, bool):
        return value
    raise WireTypeError(f"expected a boolean, got {json_type(value)}")


def _structure_id(value: object, _: object) -> WireId:
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise WireTypeError(f"expected a non-negative ID, got {value}")
        return WireId(str(value))
    if isinstance(value, str):
        if not value.strip():
            raise WireTypeError("expected a non-empty ID")
        if len(value) > _MAX_ID_LENGTH:
            raise WireTypeError(f"expected an ID of at most {_MAX_ID_LENGTH} characters")
        return WireId(value)
    raise WireTypeError(f"expected an ID (string or integer), got {json_type(value)}")


# ``X | None`` fields in one call each: cattrs' generic union path costs more than the check.


def _structure_opt_str(value: object, _: object) -> str | None:
    if value is None or type(value) is str:
        return value
    return _structure_str(value, _)


def _structure_opt_int(value: object, _: object) -> int | None:
    if value is None or type(value) is int:
        return value
    return _structure_int(value, _)


def _structure_opt_id(value: object, _: object) -> WireId | None:
    return None if value is None else _structure_id(value, _)


def _is_optional(type_: Any) -> bool:
    args = get_args(type_)
    return len(args) == 2 and type(None) in args and get_origin(type_) in (Union, UnionType)


def _is_list(type_: Any) -> bool:
    return get_origin(type_) is list or type_ is list


def make_converter(*, key: Callable[[str], str] | None = None) -> cattrs.Converter:
    """A fresh strict converter; each vendor builds its own (its hooks are its own)."""
    converter = cattrs.Converter(forbid_extra_keys=False, detailed_validation=True)
    converter.register_structure_hook(str, _structure_str)
    converter.register_structure_hook(int, _structure_int)
    converter.register_structure_hook(bool, _structure_bool)
    converter.register_structure_hook(WireId, _structure_id)
    converter.register_structure_hook(str | None, _structure_opt_str)
    converter.register_structure_hook(int | None, _structure_opt_int)
    converter.register_structure_hook(WireId | None, _structure_opt_id)

    def attrs_hook(cls: type[Any]) -> Callable[[Any, Any], Any]:
        renames: dict[str, Any] = {}
        wire_keys: dict[str, str] = {}
        for field in attrs.fields(cls):
            wire = field.metadata.get(WIRE_KEY) or (key(field.name) if key else field.name)
            if wire != field.name:
                renames[field.name] = override(rename=wire)
                wire_keys[field.name] = wire
        inner = make_dict_structure_fn(cls, converter, **renames)

        def hook(value: Any, _: Any) -> Any:
            if not isinstance(value, dict):
                raise WireTypeError(f"expected an object, got {json_type(value)}")
            if not wire_keys:
                return inner(value, cls)
            try:
                return inner(value, cls)
            except cattrs.ClassValidationError as exc:
                # cattrs names a failed attribute by its Python name; paths must show the
                # JSON key the vendor sent (``stageInfo``, not ``stage_info``).
                _rename_notes(exc, wire_keys)
                raise

        return hook

    def list_hook(type_: Any) -> Callable[[Any, Any], Any]:
        inner = list_structure_factory(type_, converter)

        def hook(value: Any, _: Any) -> Any:
            if not isinstance(value, list):
                raise WireTypeError(f"expected an array, got {json_type(value)}")
            return inner(value, type_)

        return hook

    def optional_hook(type_: Any) -> Callable[[Any, Any], Any]:
        # The inner hook is found once, not on every call as cattrs' generic union path does.
        (inner_type,) = (arg for arg in get_args(type_) if arg is not type(None))
        inner = converter.get_structure_hook(inner_type)

        def hook(value: Any, _: Any) -> Any:
            return None if value is None else inner(value, inner_type)

        return hook

    converter.register_structure_hook_factory(_is_optional, optional_hook)
    converter.register_structure_hook_factory(attrs.has, attrs_hook)
    converter.register_structure_hook_factory(_is_list, list_hook)
    return converter


def _rename_notes(exc: cattrs.ClassValidationError, wire_keys: dict[str, str]) -> None:
    """Point the attribute notes of ``exc``'s direct children at their JSON keys."""
    for child in exc.exceptions:
        notes = getattr(child, "__notes__", None)
        if not notes:
            continue
        child.__notes__ = [
            AttributeValidationNote(str(note), wire_keys[note.name], note.type)
            if isinstance(note, AttributeValidationNote) and note.name in wire_keys
            else note
            for note in notes
        ]


def _format(exc: BaseException, type_: type | None) -> str:
    if isinstance(exc, WireTypeError):
        return str(exc)
    if isinstance(exc, KeyError):
        return "required field missing"
    return _cattrs_format(exc, type_)


def _describe(exc: BaseException) -> tuple[str, str]:
    """The first failure of a cattrs exception tree as (message, path)."""
    lines = cattrs.transform_error(exc, path="$", format_exception=_format)
    if not lines:
        return _format(exc, None), "$"
    message, _, path = lines[0].rpartition(" @ ")
    more = f" (and {len(lines) - 1} more)" if len(lines) > 1 else ""
    return f"{message}{more}", path


def structure(converter: cattrs.Converter, payload: Any, cls: type[T], *, vendor: str) -> T:
    """Structure ``payload`` as ``cls`` or raise ``ResponseError`` naming the field path."""
    try:
        return converter.structure(payload, cls)
    except (cattrs.BaseValidationError, WireTypeError) as exc:
        message, path = _describe(exc)
    except RecursionError:
        message, path = "nested too deeply", "$"
    raise ResponseError(
        f"unexpected {_name(cls)} payload: {message} @ {path}", vendor=vendor, path=path
    ) from None


def _name(cls: Any) -> str:
    if _is_list(cls):
        (item,) = get_args(cls) or (Any,)
        return f"list of {_name(item)}"
    return getattr(cls, "__name__", str(cls)).removeprefix("Wire")
