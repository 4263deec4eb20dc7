"""One streaming pass over the accesses table feeding several consumers, so that each
column is decompressed once however many analyses need it (the table can hold 80 M rows)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import pyarrow as pa

from analysis.trace import Trace
from tracer.format import TABLES

_ORDER = [f.name for f in TABLES["accesses"]]


class AccessConsumer(Protocol):
    """Anything that folds batches of the accesses table into its own small state."""

    columns: tuple[str, ...]

    def update(self, batch: pa.RecordBatch) -> None: ...


def scan_accesses(trace: Trace, consumers: Sequence[AccessConsumer]) -> None:
    """Streams the accesses table once, handing every batch to every consumer.

    Args:
        trace: an open trace.
        consumers: each sees batches holding (at least) the columns it names, in order.
    """
    if not consumers:
        return
    wanted = set().union(*(c.columns for c in consumers))
    for batch in trace.reader("accesses", [n for n in _ORDER if n in wanted]):
        for consumer in consumers:
            consumer.update(batch)
