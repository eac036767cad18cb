"""Shared pieces of the vendors' wire schemas: strict cattrs converters and one entry point
that turns any structuring failure into a ``ResponseError`` with a field path.

Each vendor gets two converters over the same hooks (:class:`Converters`): a fast one without
detailed validation, the only one a payload goes through, and a detailed one, the reference the
tests hold the fast one and the messages to (it accepts exactly the same payloads). When the fast
converter refuses a payload, :func:`first_error` walks the payload beside its schema to the
*first* bad value and describes that one only (``... @ $.stages[0].jobs[1].id``): refusing a
payload costs about what structuring it costs, whatever its size. (The detailed converter
builds an exception per bad element of a list and ``cattrs.transform_error`` formats them all:
on a 117 KB list of wrong items that was 3 s of CPU and 90 MiB, PITFALLS.md.) What a message
reports is bounded (:data:`MESSAGE_LIMIT`, :data:`PATH_LIMIT`).

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

import functools
from collections.abc import Callable
from types import UnionType
from typing import (
    Any,
    Final,
    Generic,
    NewType,
    TypeVar,
    Union,
    get_args,
    get_origin,
    get_type_hints,
)

import attrs
import cattrs
from cattrs.cols import list_structure_factory
from cattrs.errors import AttributeValidationNote
from cattrs.gen import make_dict_structure_fn, override

from pipestatus.errors import ResponseError

__all__ = [
    "MESSAGE_LIMIT",
    "PATH_LIMIT",
    "WIRE_KEY",
    "Converters",
    "Structurer",
    "WireId",
    "first_error",
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
#: What a refusal reports is bounded: its message, and its field path (a deeply nested payload
#: has a path as long as it is deep; the path keeps its head and its tail).
MESSAGE_LIMIT: Final = 200
PATH_LIMIT: Final = 160


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
    """A vendor's two converters over one schema: ``fast``, which structures every payload
    (no detailed validation: the first failure raises as it is), and ``detailed``, the
    reference the tests hold it to. Both accept exactly the same payloads (the same strict
    hooks) and build the same wire objects. ``key`` turns a field's name into its JSON key."""

    fast: cattrs.Converter
    detailed: cattrs.Converter
    key: Callable[[str], str] | None = None


def make_converter(*, key: Callable[[str], str] | None = None) -> Converters:
    """A fresh pair of strict converters; each vendor builds its own (its hooks are its own)."""
    return Converters(
        fast=_converter(key, detailed=False), detailed=_converter(key, detailed=True), key=key
    )


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


# --- the first bad value of a refused payload -----------------------------------------------------


def _describe(exc: BaseException) -> str:
    """What a hook's own failure says (a hook's text is written for people; anything else is
    named by its kind only: its text may hold the payload)."""
    if isinstance(exc, WireTypeError):
        return str(exc)
    if isinstance(exc, KeyError):
        return "required field missing"
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    return f"invalid value ({type(exc).__name__})"


@functools.cache
def _fields(cls: type[Any], key: Callable[[str], str] | None) -> tuple[tuple[str, Any, bool], ...]:
    """``(JSON key, resolved type, required)`` of each field of a wire class, in order."""
    hints = get_type_hints(cls)
    return tuple(
        (
            field.metadata.get(WIRE_KEY) or (key(field.name) if key else field.name),
            hints[field.name],
            field.default is attrs.NOTHING,
        )
        for field in attrs.fields(cls)
    )


def first_error(converters: Converters, payload: Any, type_: Any) -> tuple[str, str]:
    """The first value of ``payload`` that ``type_``'s schema refuses, as ``(message, path)``.

    It walks the payload beside the schema with the fast converter's own hooks: at each level
    the values before the bad one are structured once (what a good payload costs), and only
    the bad one is entered. So it stops at the first bad element of a list however many follow,
    and its cost is bounded by the payload's size times its depth, never by its errors. Called
    on a payload the fast converter refused; ``("invalid value", "$")`` if it finds nothing
    more precise."""
    try:
        found = _walk(converters, payload, type_, "$")
    except RecursionError:
        found = ("nested too deeply", "$")
    message, path = found or ("invalid value", "$")
    return _bounded(message, MESSAGE_LIMIT), _bounded_path(path)


def _walk(converters: Converters, value: Any, type_: Any, path: str) -> tuple[str, str] | None:
    if _is_optional(type_):
        if value is None:
            return None
        (type_,) = (arg for arg in get_args(type_) if arg is not type(None))
    fast = converters.fast
    if isinstance(type_, type) and attrs.has(type_):
        if type(value) is not dict:
            return f"expected an object, got {json_type(value)}", path
        for wire, field_type, required in _fields(type_, converters.key):
            if wire not in value:
                if required:
                    return "required field missing", f"{path}.{wire}"
                continue
            found = _check(converters, value[wire], field_type, f"{path}.{wire}")
            if found is not None:
                return found
        return _check_whole(fast, value, type_, path)
    if _is_list(type_):
        if type(value) is not list:
            return f"expected an array, got {json_type(value)}", path
        (item_type,) = get_args(type_) or (Any,)
        hook = fast.get_structure_hook(item_type)
        for index, element in enumerate(value):
            try:
                hook(element, item_type)
            except Exception:  # noqa: BLE001 - this element is the bad one: entered below
                return _walk(converters, element, item_type, f"{path}[{index}]") or (
                    "invalid value",
                    f"{path}[{index}]",
                )
        return None
    return _check_whole(fast, value, type_, path)


def _check(converters: Converters, value: Any, type_: Any, path: str) -> tuple[str, str] | None:
    """``None`` when ``value`` structures as ``type_``; else its first bad value."""
    try:
        converters.fast.get_structure_hook(type_)(value, type_)
    except RecursionError:
        raise
    except Exception:  # noqa: BLE001 - a refusal, located below
        return _walk(converters, value, type_, path) or ("invalid value", path)
    return None


def _check_whole(
    converter: cattrs.Converter, value: Any, type_: Any, path: str
) -> tuple[str, str] | None:
    """A leaf (or a class whose fields all passed): its hook's own verdict."""
    problem: str | None = None
    try:
        converter.get_structure_hook(type_)(value, type_)
    except RecursionError:
        raise
    except Exception as exc:  # noqa: BLE001 - a refusal: described by _describe
        problem = _describe(exc)
    return None if problem is None else (problem, path)


def _bounded(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _bounded_path(path: str) -> str:
    if len(path) <= PATH_LIMIT:
        return path
    half = PATH_LIMIT // 2
    return f"{path[:half]}…{path[-half:]}"


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
        structured = self.quick(payload)
        if structured is None:
            # (raised here, outside the converter's frames, which hold the payload)
            raise self.refusal(payload)
        return structured

    def quick(self, payload: Any) -> T | None:
        """``payload`` structured, or ``None`` when the schema refuses it (undescribed)."""
        hook = self._hook
        if hook is None:
            hook = self._hook = self._converters.fast.get_structure_hook(self._cls)
        try:
            return hook(payload, self._cls)
        except Exception:  # noqa: BLE001 - whatever it was, first_error names it if asked
            return None

    def refusal(self, payload: Any) -> ResponseError:
        """The ``ResponseError`` for a payload the schema refuses: its first bad value."""
        message, path = first_error(self._converters, payload, self._cls)
        return ResponseError(
            f"unexpected {_name(self._cls)} payload: {message} @ {path}",
            vendor=self._vendor,
            path=path,
        )


def _name(cls: Any) -> str:
    if _is_list(cls):
        (item,) = get_args(cls) or (Any,)
        return f"list of {_name(item)}"
    return getattr(cls, "__name__", str(cls)).removeprefix("Wire")
