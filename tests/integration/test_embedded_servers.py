"""The embedded servers golive starts as child processes (golive/stack/process.py's ChildServer): one that cannot
start says why, in its own words, and is not left behind."""

from __future__ import annotations

import pytest

from golive.stack.nats_server import EmbeddedNats
from golive.stack.process import EmbeddedError


def test_a_nats_server_that_cannot_start_says_why_in_its_own_words_and_is_not_left_behind(tmp_path):
    config = tmp_path / "nats.conf"
    config.write_text("jetstream {\n  max_mem: 1G\n")  # a map never closed: nats-server refuses the file and exits
    server = EmbeddedNats(tmp_path / "data", config_file=config)

    with pytest.raises(EmbeddedError) as refused:
        server.start(timeout_s=15)

    assert "nats-server exited with code 1 before listening" in str(refused.value), refused.value
    assert "Parse error on line 3" in str(refused.value), refused.value  # the server's own words, from its log
    assert server.proc is None
