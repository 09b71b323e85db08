"""Pieces of an invocation's run phase that the suites through whole runtimes cannot see."""

from __future__ import annotations

import uuid

from workbench.core.engine.invocation import new_request_id


def test_request_ids_are_distinct_version_4_uuids() -> None:
    ids = [new_request_id() for _ in range(2000)]  # crosses several refills of the pool
    assert len(set(ids)) == len(ids)
    for rid in ids:
        parsed = uuid.UUID(rid)
        assert str(parsed) == rid
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122
