"""Shared pieces of the vendors' wire schemas: strict cattrs converters and one entry point
that turns any structuring failure into a ``ResponseError`` with a field path.

Each vendor gets two converters over the same hooks (:class:`Converters`): a fast one without
detailed validation for the good path, and a detailed one, run only when the fast one refused a
payload, whose exception tree ``cattrs.transform_error`` turns into the path-addressed message
(``... @ $.stages[0].jobs[1].id``). Both accept exactly the same payloads; the good path never
pays for the bookkeeping that only a failure needs (PITFALLS.md: detailed validation on a large
bad list cost seconds).

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
from typing import Any, Final, Generic, NewType, TypeVar, Union, get_args, get_origin

import attrs
import cattrs
from cattrs.cols import list_structure_factory
from cattrs.errors import AttributeValidationNote
from cattrs.gen import make_dict_structure_fn, override
from cattrs.v import format_exception as _cattrs_format

from pipestatus.errors import ResponseError

__all__ = [
    "WIRE_KEY",
    "Converters",
    "Structurer",
    "WireId",
    "json_type",
    "make_converter",
    "structure",
]

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


#: ``X | None`` of a scalar: one call, no inner hook.
_OPTIONAL_SCALARS: Final[dict[Any, Callable[[Any, Any], Any]]] = {
    str: _structure_opt_str,
    int: _structure_opt_int,
    WireId: _structure_opt_id,
}


def _is_optional(type_: Any) -> bool:
    args = get_args(type_)
    return len(args) == 2 and type(None) in args and get_origin(type_) in (Union, UnionType)


def _is_list(type_: Any) -> bool:
    return get_origin(type_) is list or type_ is list


def _has_required(cls: type[Any]) -> bool:
    return any(field.default is attrs.NOTHING for field in attrs.fields(cls))


@attrs.frozen
class Converters:
    """A vendor's two converters over one schema: ``fast`` for the good path (no detailed
    validation: the first failure raises as it is), and ``detailed``, run only on a payload
    the fast one refused, for the path-addressed message. Both accept exactly the same
    payloads (the same strict hooks) and build the same wire objects."""

    fast: cattrs.Converter
    detailed: cattrs.Converter


def make_converter(*, key: Callable[[str], str] | None = None) -> Converters:
    """A fresh pair of strict converters; each vendor builds its own (its hooks are its own)."""
    return Converters(fast=_converter(key, detailed=False), detailed=_converter(key, detailed=True))


def _converter(key: Callable[[str], str] | None, *, detailed: bool) -> cattrs.Converter:
    converter = cattrs.Converter(forbid_extra_keys=False, detailed_validation=detailed)
    converter.register_structure_hook(str, _structure_str)
    converter.register_structure_hook(int, _structure_int)
    converter.register_structure_hook(bool, _structure_bool)
    converter.register_structure_hook(WireId, _structure_id)

    def attrs_hook(cls: type[Any]) -> Callable[[Any, Any], Any]:
        renames: dict[str, Any] = {}
        wire_keys: dict[str, str] = {}
        for field in attrs.fields(cls):
            wire = field.metadata.get(WIRE_KEY) or (key(field.name) if key else field.name)
            if wire != field.name:
                renames[field.name] = override(rename=wire)
                wire_keys[field.name] = wire
        inner = make_dict_structure_fn(cls, converter, **renames)

        if not detailed:
            if _has_required(cls):
                # ``o["id"]`` fails on every JSON value but an object: no check needed.
                return inner

            def fast_hook(value: Any, _: Any) -> Any:
                # Without a required key, a string or an array would pass ``"k" in o``.
                if type(value) is not dict:
                    raise WireTypeError(f"expected an object, got {json_type(value)}")
                return inner(value, cls)

            return fast_hook

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
        if not detailed:
            (item_type,) = get_args(type_) or (Any,)
            item = converter.get_structure_hook(item_type)

            def fast_list(value: Any, _: Any) -> Any:
                if type(value) is not list:
                    raise WireTypeError(f"expected an array, got {json_type(value)}")
                return [item(element, item_type) for element in value]

            return fast_list
        inner = list_structure_factory(type_, converter)

        def hook(value: Any, _: Any) -> Any:
            if not isinstance(value, list):
                raise WireTypeError(f"expected an array, got {json_type(value)}")
            return inner(value, type_)

        return hook

    def optional_hook(type_: Any) -> Callable[[Any, Any], Any]:
        # The inner hook is found once, not on every call as cattrs' generic union path does.
        (inner_type,) = (arg for arg in get_args(type_) if arg is not type(None))
        scalar = _OPTIONAL_SCALARS.get(inner_type)
        if scalar is not None:
            return scalar
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


def structure(converters: Converters, payload: Any, cls: type[T], *, vendor: str) -> T:
    """Structure ``payload`` as ``cls`` or raise ``ResponseError`` naming the field path."""
    return Structurer(converters, cls, vendor=vendor)(payload)


class Structurer(Generic[T]):
    """``structure(converters, payload, cls, vendor=...)`` with its fast hook looked up once
    (on first use, so importing a vendor builds no hooks): a vendor's parse functions call
    one of these per payload."""

    __slots__ = ("_cls", "_converters", "_hook", "_vendor")

    def __init__(self, converters: Converters, cls: type[T], *, vendor: str) -> None:
        self._converters = converters
        self._cls = cls
        self._vendor = vendor
        self._hook: Callable[[Any, Any], T] | None = None

    def __call__(self, payload: Any) -> T:
        hook = self._hook
        if hook is None:
            hook = self._hook = self._converters.fast.get_structure_hook(self._cls)
        try:
            return hook(payload, self._cls)
        except Exception:  # noqa: BLE001, S110 - whatever it was, the detailed converter names it
            # (outside this block, so that its error carries no context of this one)
            pass
        return self._detailed(payload)

    def _detailed(self, payload: Any) -> T:
        cls = self._cls
        try:
            return self._converters.detailed.structure(payload, cls)
        except (cattrs.BaseValidationError, WireTypeError) as exc:
            message, path = _describe(exc)
        except RecursionError:
            message, path = "nested too deeply", "$"
        raise ResponseError(
            f"unexpected {_name(cls)} payload: {message} @ {path}", vendor=self._vendor, path=path
        ) from None


def _name(cls: Any) -> str:
    if _is_list(cls):
        (item,) = get_args(cls) or (Any,)
        return f"list of {_name(item)}"
    return getattr(cls, "__name__", str(cls)).removeprefix("Wire")
