"""ManagedProcess, the one launcher under the gateway, server, stack and Chromium helpers:
ready on a health URL or a line of output, a failure that shows the log, and a stop that
leaves no process of its group behind. Driven by small bash scripts."""

from __future__ import annotations

import signal
import subprocess
import time

import pytest

from process import ManagedProcess, ProcessError, free_port

# Prints a banner, then waits; Ctrl-C makes it say so and exit 130, as run.sh does.
BANNER = ('trap "echo interrupted; exit 130" INT; echo starting; sleep 0.3; '
          'echo "listening on port 4242"; echo "Press Ctrl-C to stop."; while :; do sleep 0.1; done')


def live_members(pgid: int) -> list[str]:
    out = subprocess.run(["ps", "-o", "pid=,stat=", "-g", str(pgid)], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if not line.split()[1].startswith("Z")]  # zombies are gone


def test_ready_line_is_seen_with_everything_printed_before_it() -> None:
    with ManagedProcess(["bash", "-c", BANNER], ready_line=r"port (\d+)", ready_timeout_s=10) as process:
        assert process.ready_match is not None and process.ready_match.group(1) == "4242"
        assert process.log().startswith("starting\nlistening on port 4242\n")
        assert process.running()


def test_sigint_stop_lets_the_process_clean_up() -> None:
    process = ManagedProcess(["bash", "-c", BANNER], ready_line=r"^Press Ctrl-C to stop\.",
                             stop_signal=signal.SIGINT, ready_timeout_s=10)
    with process:
        process.stop()
        assert process.returncode == 130
        assert "interrupted" in process.log()


def test_exit_before_ready_names_the_code_and_shows_the_log() -> None:
    process = ManagedProcess(["bash", "-c", "echo cannot bind; exit 3"], f"http://127.0.0.1:{free_port()}/health",
                             name="server")
    with pytest.raises(ProcessError, match="server exited with code 3 before it was ready") as info:
        with process:
            pass
    assert "cannot bind" in str(info.value)


def test_never_ready_times_out_and_the_process_is_stopped() -> None:
    process = ManagedProcess(["sleep", "60"], f"http://127.0.0.1:{free_port()}/health", ready_timeout_s=1)
    started = time.monotonic()
    with pytest.raises(ProcessError, match="not ready after 1 s"):
        with process:
            pass
    assert time.monotonic() - started < 10
    assert process.returncode is not None  # stopped, not left running


def test_stop_ends_every_process_of_the_group() -> None:
    # A child that ignores SIGTERM: only the SIGKILL that follows ends it.
    script = 'trap "" TERM; (trap "" TERM; while :; do sleep 0.1; done) & echo ready; wait'
    process = ManagedProcess(["bash", "-c", script], ready_line="ready", stop_timeout_s=1, ready_timeout_s=10)
    with process:
        assert len(live_members(process.pid)) >= 2
    assert live_members(process.pid) == []
