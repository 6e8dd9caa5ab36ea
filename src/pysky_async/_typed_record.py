"""A decoded record (a firehose op's, a verified repo's) as its lexicon model: ``record_as``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from .lex._base import LexObject

M = TypeVar("M", bound="LexObject")


def check_collection(model: type[LexObject], collection: str, path: str, holder: str) -> None:
    """``InvalidInput`` unless ``model`` is the record model of ``collection`` (``holder``: the object
    the user called ``record_as`` on, ``op`` or ``record``, named in the message)."""
    from ._exceptions import InvalidInput

    tag = model.__struct_config__.tag
    if collection != tag:
        raise InvalidInput(f"record_as: {path} is in {collection}, not {tag}: pass the model of "
                           f"that collection (check {holder}.collection first)")


def typed_record(model: type[M], collection: str, path: str, record: dict[str, Any], holder: str) -> M:
    """``record`` (at ``path``, in ``collection``) as ``model``.

    Raises:
        InvalidInput: the record is in another collection than the model's.
        InvalidResponse: the record does not fit the model.
    """
    import msgspec

    from ._exceptions import InvalidResponse
    from ._json_body import atproto_json
    from .lex import _base

    check_collection(model, collection, path, holder)
    try:
        return _base.convert(atproto_json(record), model)
    except msgspec.ValidationError as exc:
        raise InvalidResponse(f"the record at {path} does not fit {model.__name__} ({exc}); "
                              f"{holder}.record holds it as a dict") from exc
