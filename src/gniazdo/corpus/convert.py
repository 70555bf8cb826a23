"""Any reader to any writer, streaming: ``gniazdo corpus convert``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ByteSize, TypeAdapter, ValidationError

from gniazdo.corpus import open_writer, read_documents
from gniazdo.corpus.base import ReaderOptions, raise_on_error
from gniazdo.document import BadRecord
from gniazdo.errors import UserError


def parse_size(value: str | int | None) -> int | None:
    if value is None:
        return None
    try:
        return int(TypeAdapter(ByteSize).validate_python(value))
    except ValidationError:
        raise UserError(f"not a size: {value!r} (e.g. 100MB, 1GiB, 1048576)") from None


def convert_corpus(inputs: list[str], out: str | Path, *, to_fmt: str | None = None, name: str | None = None,
                   shard_size: str | int | None = None, add_ids: bool = False, strict: bool = False,
                   options: ReaderOptions | None = None) -> dict[str, Any]:
    errors: list[BadRecord] = []
    writer = open_writer(out, to_fmt, name=name, shard_size=parse_size(shard_size), add_id=add_ids)
    n = 0
    try:
        for doc in read_documents(inputs, options, raise_on_error if strict else errors.append):
            writer.write(doc)
            n += 1
    except BaseException:
        writer.abort()
        raise
    outputs = [str(p) for p in writer.close()]
    return {"documents": n, "outputs": outputs, "errors": len(errors),
            "first_error": errors[0].describe() if errors else None}
