"""Progress bars of the `ims` commands that move data, in a pseudo-terminal: drawn with
bytes, rate and time left on a terminal, absent with `--quiet` and when stderr is not a
terminal."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import termios
import time

from conftest import bucket, clean_env, ims_bin, unique

MiB = 1 << 20
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def in_terminal(argv: list, timeout: float = 120) -> tuple[int, str]:
    """Runs `argv` with stdin, stdout and stderr on a 120×40 pseudo-terminal; its exit
    code and everything it wrote there (escape sequences removed)."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: its terminal is the pty
        try:
            os.execve(str(argv[0]), [str(a) for a in argv], clean_env())
        finally:
            os._exit(127)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    out = bytearray()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if not ready:
            continue
        try:
            data = os.read(fd, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        out += data
    else:
        os.kill(pid, 9)
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), ANSI.sub("", out.decode(errors="replace"))


def bucket_argv(server, *args) -> list:
    return [ims_bin(), "bucket", "--data-dir", server.data_dir, *args]


def test_bucket_put_and_get_draw_a_bar_on_a_terminal_only(ims, tmp_path):
    name = unique("progress").lower()
    bucket(ims, name)
    src = tmp_path / "src.bin"
    src.write_bytes(os.urandom(24 * MiB))
    code, screen = in_terminal(bucket_argv(ims, "put", src, f"{name}:big.bin"))
    assert code == 0, screen
    assert "100%" in screen and "24.00 MiB/24.00 MiB" in screen, screen
    assert re.search(r"\d+(\.\d+)? [KMG]iB/s", screen), f"no rate: {screen!r}"
    assert "ETA" in screen and f"{name}:big.bin" in screen, screen

    out = tmp_path / "out.bin"
    code, screen = in_terminal(bucket_argv(ims, "get", f"{name}:big.bin", out))
    assert code == 0, screen
    assert "100%" in screen and "24.00 MiB/24.00 MiB" in screen, screen
    assert out.read_bytes() == src.read_bytes()

    # --quiet on a terminal, and no terminal at all: not a trace of a bar.
    code, screen = in_terminal(bucket_argv(ims, "--quiet", "get", f"{name}:big.bin",
                                           tmp_path / "q.bin"))
    assert code == 0 and "%" not in screen and "MiB" not in screen, screen
    piped = subprocess.run([str(a) for a in bucket_argv(ims, "put", src, f"{name}:again.bin")],
                           env=clean_env(), capture_output=True, text=True, timeout=120)
    assert piped.returncode == 0, piped.stderr
    assert piped.stderr == "" and piped.stdout == "", (piped.stdout, piped.stderr)


def test_a_failed_put_takes_its_bar_away_and_says_why(ims, tmp_path):
    name = unique("progress").lower()
    bucket(ims, name)
    src = tmp_path / "src.bin"
    src.write_bytes(b"x" * MiB)
    assert in_terminal(bucket_argv(ims, "put", src, f"{name}:once.bin"))[0] == 0
    code, screen = in_terminal(bucket_argv(ims, "put", src, f"{name}:once.bin"))
    assert code != 0
    assert "exist" in screen.lower(), screen  # never overwrites


def test_convert_draws_qemu_imgs_progress_as_bytes(tmp_path):
    src = tmp_path / "disk.raw"
    with open(src, "wb") as f:
        for i in range(32):
            f.write(os.urandom(MiB) if i % 2 else b"\0" * MiB)
    dst = tmp_path / "disk.qcow2"
    code, screen = in_terminal([ims_bin(), "convert", src, dst, "--from", "raw", "--to", "qcow2"])
    assert code == 0, screen
    assert "100%" in screen and "32.00 MiB/32.00 MiB" in screen, screen
    assert f"{dst} qcow2 virtual size {32 * MiB}" in screen, screen
    piped = subprocess.run([str(ims_bin()), "convert", str(src), str(tmp_path / "b.qcow2"),
                            "--from", "raw", "--to", "qcow2"], env=clean_env(),
                           capture_output=True, text=True, timeout=120)
    assert piped.returncode == 0 and piped.stderr == "", piped.stderr
