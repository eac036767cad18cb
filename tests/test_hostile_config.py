"""The configuration file, read carelessly: a token pasted where a variable's name belongs is
never printed back, and a file that is not a small text file (``/dev/zero``, a FIFO, a huge
file) is a clear ``ConfigError``, never a ``MemoryError`` or a hang."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from pipestatus.cli.config import ConfigError, load_config, parse_config, resolve_tokens
from pipestatus.cli.credentials import named
from pipestatus.cli.textfile import MAX_BYTES, Unreadable, read_small

PASTED = "pt_Zk3xQ9vL2mN8bR4tY7wE1"  # a token that is also a valid identifier


def _config(**account: str) -> dict[str, object]:
    return {
        "accounts": {"ci": {"vendor": "yunxiao", "endpoint": "https://h.example", **account}},
        "pipelines": [{"account": "ci", "pipeline_id": "9"}],
    }


def test_a_token_pasted_as_a_variable_name_is_never_printed() -> None:
    """``token_env = "<a token>"`` is refused for the unset variable without naming it, and
    the configuration's repr does not show it either."""
    config = parse_config(_config(token_env=PASTED), source="ci.toml")
    with pytest.raises(ConfigError) as info:
        resolve_tokens(config, {})
    assert PASTED not in str(info.value)
    assert "accounts.ci.token_env" in str(info.value)
    assert "was a secret pasted there?" in str(info.value)
    assert PASTED not in repr(config)


@pytest.mark.parametrize(
    "name",
    ["HUAWEICLOUD_SDK_SECURITY_TOKEN", "YUNXIAO_TOKEN", "CI_TOKEN_2", "T", "PIPESTATUS_CLI_TOKEN"],
)
def test_a_variable_name_is_shown_as_it_is(name: str) -> None:
    """Names that look like variables' names are shown (they say what to set)."""
    assert named(name) == name
    config = parse_config(_config(token_env=name), source="ci.toml")
    with pytest.raises(ConfigError, match=f"environment variable {name} is not set"):
        resolve_tokens(config, {})


@pytest.mark.parametrize(
    "name",
    [PASTED, "ghp_16C7e42F292c6912E7710c838347Ae178B4a", "QTWAOYTTINDUT2QVKYUCX", "lower_case"],
)
def test_a_name_that_may_be_a_secret_is_hidden(name: str) -> None:
    """Mixed case, long runs of letters and digits: possibly a secret, never shown."""
    assert name not in named(name)


def test_dev_zero_is_refused_at_once() -> None:
    """``-c /dev/zero`` (a device that never ends) is a ConfigError, read not at all."""
    with pytest.raises(ConfigError, match="not a regular file"):
        load_config("/dev/zero")


def test_a_file_over_the_cap_is_refused(tmp_path: Path) -> None:
    """A regular file larger than the cap is refused after reading one byte past it."""
    path = tmp_path / "huge.toml"
    path.write_bytes(b"#" * (MAX_BYTES + 1))
    with pytest.raises(ConfigError, match="larger than 1024 KiB"):
        load_config(path)


def test_a_fifo_nobody_writes_to_does_not_hang(tmp_path: Path) -> None:
    """A FIFO without a writer is read as empty at once (a ConfigError for what it lacks)."""
    path = tmp_path / "fifo.toml"
    os.mkfifo(path)
    with pytest.raises(ConfigError, match="accounts"):
        load_config(path)


def test_a_fifo_that_stalls_is_given_up_on(tmp_path: Path) -> None:
    """A FIFO whose writer never finishes is given up on after the deadline."""
    path = tmp_path / "stalled.toml"
    os.mkfifo(path)
    opened = threading.Event()
    release = threading.Event()

    def writer() -> None:
        with open(path, "wb") as stream:
            stream.write(b"# the start of a file, and then nothing\n")
            stream.flush()
            opened.set()
            release.wait(10)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        # The reader opens without blocking; wait until the writer holds its end.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        try:
            assert opened.wait(10)
        finally:
            os.close(fd)
        with pytest.raises(Unreadable, match=r"within 0\.2 s"):
            read_small(path, wait=0.2)
    finally:
        release.set()
        thread.join()


def test_a_fifo_with_a_whole_file_is_read(tmp_path: Path) -> None:
    """A pipe that delivers a whole file (``-c <(...)``) is read as a file."""
    path = tmp_path / "piped.toml"
    os.mkfifo(path)
    text = b'[accounts.ci]\nvendor = "yunxiao"\n'

    def writer() -> None:
        with open(path, "wb") as stream:
            stream.write(text)

    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # a reader first, so the writer opens
    thread = threading.Thread(target=writer)
    thread.start()
    try:
        thread.join(10)
        assert read_small(path) == text
    finally:
        os.close(fd)
