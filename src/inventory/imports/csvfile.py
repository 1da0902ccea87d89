"""A CSV file read as a stream of records: UTF-8 with or without a BOM, CRLF or LF, capped.

Memory stays flat whatever the file: bytes arrive in chunks, are decoded incrementally and
cut into physical lines; a line longer than LINE_CAP is dropped (its record is reported
as `row_too_long`) instead of being held. Bytes that are not UTF-8 survive decoding as
surrogates so that only their record is bad (`invalid_encoding`), not the whole file.
"""

from __future__ import annotations

import codecs
import csv
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

COLUMNS = (
    "sku",
    "name",
    "unit",
    "decimals",
    "barcode",
    "category",
    "description",
    "on_hand",
    "unit_cost",
)
LINE_CAP = 1 << 20
"""The longest physical line read, in characters: far above any valid row (the widest
cell, a description, holds 2,000), low enough that one line never costs much memory."""


class FileRefused(Exception):
    """The file as a whole cannot be imported (empty, no header, unknown columns)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


@dataclass(frozen=True)
class Record:
    """One data row: its first physical line and its cells by column (empty cells omitted)."""

    line: int
    cells: dict[str, str]


@dataclass(frozen=True)
class BadRecord:
    """A row refused before validation: its line, the SKU if one could be read, why."""

    line: int
    sku: str | None
    code: str
    message: str


@dataclass
class _Lines:
    """Physical lines from byte chunks; `overlong` holds the numbers of dropped lines."""

    chunks: Iterable[bytes]
    overlong: set[int] = field(default_factory=set)
    number: int = 0

    def __iter__(self) -> Iterator[str]:
        decoder = codecs.getincrementaldecoder("utf-8-sig")(errors="surrogateescape")
        pending: list[str] = []
        size = 0
        for chunk in self.chunks:
            text = decoder.decode(chunk)
            while text:
                cut = text.find("\n")
                piece = text if cut < 0 else text[: cut + 1]
                text = "" if cut < 0 else text[cut + 1 :]
                if size <= LINE_CAP:
                    pending.append(piece)
                size += len(piece)
                if cut >= 0:
                    yield self._line(pending, size)
                    pending, size = [], 0
        pending.append(decoder.decode(b"", final=True))
        if size or any(pending):
            yield self._line(pending, size)

    def _line(self, pieces: list[str], size: int) -> str:
        self.number += 1
        if size > LINE_CAP:
            self.overlong.add(self.number)
            return "\n"  # its record is reported; csv sees an empty line
        return "".join(pieces)


def records(chunks: Iterable[bytes]) -> Iterator[Record | BadRecord]:
    """The file's data rows in order, after a header naming known columns (FileRefused)."""
    lines = _Lines(chunks)
    reader = csv.reader(lines, strict=True)
    header = _header(reader, lines)
    while True:
        start = lines.number + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            code = "row_too_long" if "field limit" in str(error) else "validation_failed"
            yield BadRecord(start, None, code, f"malformed CSV: {error}")
            continue
        if not cells and start not in lines.overlong:
            continue  # blank lines separate nothing
        yield _record(start, reader.line_num, cells, header, lines.overlong)


def _header(reader: Iterator[list[str]], lines: _Lines) -> list[str]:
    try:
        names = next(reader)
    except StopIteration:
        raise FileRefused("empty_file", "the file is empty: it needs a header row") from None
    except csv.Error as error:
        raise FileRefused("invalid_header", f"the header row is malformed: {error}") from None
    header = [name.strip().lower() for name in names]
    if lines.overlong or any(_undecodable(name) for name in header):
        raise FileRefused("invalid_header", "the header row is not UTF-8 text of known columns")
    unknown = [name for name in header if name not in COLUMNS]
    if unknown:
        known = ", ".join(COLUMNS)
        raise FileRefused("invalid_header", f"unknown columns {unknown!r}; known: {known}")
    twice = sorted({name for name in header if header.count(name) > 1})
    if twice:
        raise FileRefused("invalid_header", f"columns named twice: {twice!r}")
    if "sku" not in header:
        raise FileRefused("invalid_header", "the header has no sku column")
    return header


def _record(
    start: int, end: int, cells: list[str], header: list[str], overlong: set[int]
) -> Record | BadRecord:
    place = header.index("sku")
    sku = cells[place] if len(cells) > place else None
    sku = None if sku is None or _undecodable(sku) or len(sku) > 100 else sku
    if any(start <= number <= end for number in overlong):
        return BadRecord(start, sku, "row_too_long", f"a line is over {LINE_CAP:,} characters")
    if any(_undecodable(cell) for cell in cells):
        return BadRecord(start, sku, "invalid_encoding", "the row is not UTF-8 text")
    if len(cells) != len(header):
        message = f"{len(cells)} cells where the header names {len(header)} columns"
        return BadRecord(start, sku, "validation_failed", message)
    return Record(start, {name: cell for name, cell in zip(header, cells, strict=True) if cell})


def _undecodable(text: str) -> bool:
    """True when decoding left surrogates standing for bytes that are not UTF-8."""
    return any("\udc80" <= character <= "\udcff" for character in text)
