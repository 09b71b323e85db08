"""Each execution environment has a /tmp of its own (TMPDIR, TMP, TEMP): kept across its warm
invokes, not shared with another environment, and removed when the environment stops."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from tests.conftest import FIXTURES
from tests.rt_helpers import Harness

FUNCTION = FIXTURES / "py-tmp"


def test_tmp_is_the_environments_own_kept_while_warm_and_removed_with_it() -> None:
    async def body() -> None:
        async with Harness(FUNCTION) as h, Harness(FUNCTION) as other:
            first = json.loads((await h.invoke()).result.payload)
            second = json.loads((await h.invoke()).result.payload)
            elsewhere = json.loads((await other.invoke()).result.payload)
            assert first["tmp"] == first["env"] == second["tmp"]
            assert not first["seen_before"] and second["seen_before"]  # warm: the file stayed
            assert Path(first["tmp"]).is_dir()
            # another environment of the same function has a /tmp of its own
            assert elsewhere["tmp"] != first["tmp"] and not elsewhere["seen_before"]
        assert not Path(first["tmp"]).exists()  # gone with its environment
        assert not Path(elsewhere["tmp"]).exists()

    asyncio.run(body())
