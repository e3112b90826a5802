"""A user's mistake is one `error:` line naming the thing and the fix, exit status 2.

Never a traceback: a traceback is for bugs. Each mistake is also checked as a
library user meets it, where the library is where it is caught.
"""

from __future__ import annotations

import argparse
import errno
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest

from colmena_fx import cli
from colmena_fx.cli import main
from colmena_fx.configfiles import load_federation
from colmena_fx.configfiles import load_site
from colmena_fx.exceptions import ConfigError
from colmena_fx.exceptions import RunDirectoryError
from colmena_fx.federation import Federation
from colmena_fx.rundir import make_run_dir
from colmena_fx.rundir import new_run_dir
from testing.sites import THREAD_POOL
from testing.sites import write_federation
from testing.sites import write_site

SCRIPT = Path(sys.executable).parent / "colmena-fx"
REPO = Path(__file__).resolve().parents[1]
NOBODY = 65534


def _one_error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    """Run `colmena-fx ARGV` in this process; its single `error:` line."""
    assert main(argv) == 2
    out, err = capsys.readouterr()
    return _the_line(out, err)


def _the_line(out: str, err: str) -> str:
    assert "Traceback" not in out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: "), err
    return lines[0]


def _run_script(*argv: str, env: dict[str, str] | None = None) -> str:
    """Run the installed console script without a terminal; its `error:` line."""
    done = subprocess.run(
        [str(SCRIPT), *argv],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    return _the_line(done.stdout, done.stderr)


def _federation(tmp_path: Path, methods: dict[str, dict[str, str]] | None = None,
                **settings: object) -> Path:  # fmt: skip
    site = write_site(tmp_path, "cpu", THREAD_POOL)
    return write_federation(tmp_path, [site], methods or {}, **settings)


# -- 1. sizes ----------------------------------------------------------------------


def test_a_bad_size_names_the_option_and_how_to_write_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    federation = str(_federation(tmp_path))  # no stores: the size fails anyway
    line = _one_error(capsys, ["data", "check", federation, "--size", "10XB"])
    assert line.startswith("error: --size: ")
    assert "'10 MB'" in line and "'10XB'" in line
    line = _one_error(capsys, ["probe", federation, "--sizes", "1MB,lots"])
    assert line.startswith("error: --sizes: ") and "'lots'" in line
    assert "'10XB'" in _run_script("data", "check", federation, "--size", "10XB")


# -- 2. login without a terminal ---------------------------------------------------


@pytest.mark.parametrize("force", [[], ["--force"]])
def test_login_without_a_terminal_refuses_and_says_what_to_do(
    tmp_path: Path, force: list[str]
) -> None:
    env = {key: value for key, value in os.environ.items() if key not in {
        "COLMENA_FX_GLOBUS_ACCESS_TOKEN", "GLOBUS_COMPUTE_CLIENT_ID",
        "GLOBUS_COMPUTE_CLIENT_SECRET",
    }}  # fmt: skip
    env["GLOBUS_COMPUTE_USER_DIR"] = str(tmp_path / "no-tokens-here")
    done = subprocess.run(
        [str(SCRIPT), "login", *force],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    line = _the_line(done.stdout, done.stderr)
    assert "in a terminal" in line
    assert "GLOBUS_COMPUTE_CLIENT_ID and GLOBUS_COMPUTE_CLIENT_SECRET" in line
    assert done.stdout == ""  # no login URL printed for nobody to follow


# -- 3. a site file where a federation file belongs, and the other way round -------


def test_a_site_file_given_for_a_federation_file_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    site = write_site(tmp_path, "cpu", THREAD_POOL)
    line = _one_error(capsys, ["endpoint", "list", str(site)])
    assert f"error: {site}: a site file" in line
    assert "pass a federation file" in line and "'sites'" in line
    assert "a site file" in _one_error(capsys, ["data", "check", str(site)])
    with pytest.raises(ConfigError, match="a site file"):
        Federation.from_file(site)


def test_a_federation_file_given_for_a_site_file_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    federation = _federation(tmp_path)
    line = _one_error(capsys, ["endpoint", "status", str(federation)])
    assert f"error: {federation}: a federation file" in line
    assert "pass one of the site files it lists" in line


# -- 4. files that are not UTF-8 ---------------------------------------------------


def test_a_file_that_is_not_utf8_is_named_with_the_line_and_the_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    site = write_site(tmp_path, "cpu", THREAD_POOL)
    site.write_bytes(site.read_bytes() + "description: café\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=r"cpu\.yaml: not UTF-8 text \(byte 0xe9"):
        load_site(site)
    federation = write_federation(tmp_path, [site], {})
    line = _one_error(capsys, ["endpoint", "list", str(federation)])
    assert f"error: {site}: not UTF-8 text" in line and "save the file as UTF-8" in line

    federation.write_bytes("# Zürich\n".encode("latin-1") + federation.read_bytes())
    with pytest.raises(ConfigError, match=r"byte 0xfc on line 1\): save the file"):
        load_federation(federation)
    assert "not UTF-8" in _one_error(capsys, ["endpoint", "list", str(federation)])


# -- 5. a function module that raises as it is imported ----------------------------


def test_a_function_module_that_raises_at_import_names_method_module_and_error(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    module = tmp_path / "cfx_broken_functions.py"
    module.write_text("import math\n\nraise RuntimeError('no licence server')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    federation = _federation(
        tmp_path, {"simulate": {"site": "cpu", "function": "cfx_broken_functions:f"}}
    )
    with pytest.raises(ConfigError) as caught:
        Federation.from_file(federation)
    message = str(caught.value)
    assert "key 'methods.simulate.function'" in message
    assert "importing module 'cfx_broken_functions' raised RuntimeError" in message
    assert f"at {module}:3: no licence server" in message
    assert "fix the module" in message
    # A library user still gets the module's own traceback, chained.
    assert isinstance(caught.value.__cause__, RuntimeError)

    # The demo is where a user meets it from the command line.
    from examples.interleaved_optimizer.run import main as demo

    assert demo(["--federation", str(federation), "--quiet"]) == 2
    out, err = capsys.readouterr()
    line = _the_line(out, err)
    assert "methods.simulate.function" in line and "RuntimeError" in line


# -- 6. a NUL byte in a site's environment -----------------------------------------


def test_a_nul_byte_in_local_env_is_refused_naming_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    site = write_site(tmp_path, "cpu", THREAD_POOL, local={"env": {"OMP": "4\x00"}})
    with pytest.raises(ConfigError, match=r"key 'local\.env': .*'OMP' holds a NUL"):
        load_site(site)
    line = _one_error(capsys, ["endpoint", "status", str(site)])
    assert "key 'local.env'" in line and "'OMP'" in line and "remove it" in line
    federation = write_federation(tmp_path, [site], {})
    with pytest.raises(ConfigError, match="NUL byte"):  # before any process starts
        Federation.from_file(federation)

    bad_name = write_site(tmp_path, "eq", THREAD_POOL, local={"env": {"A=B": "1"}})
    with pytest.raises(ConfigError, match=r"key 'local\.env': .*'A=B'.*rename it"):
        load_site(bad_name)


# -- 7. run directories that cannot be made or written -----------------------------


@pytest.mark.parametrize("where", ["a file", "under a file"])
def test_a_run_dir_that_is_or_is_under_a_file_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], where: str
) -> None:
    blocker = tmp_path / "notes.txt"
    blocker.write_text("not a directory\n")
    run_dir = blocker if where == "a file" else blocker / "runs"
    federation = _federation(tmp_path, run_dir=str(run_dir))
    with pytest.raises(RunDirectoryError) as caught:
        Federation.from_file(federation).start()
    assert isinstance(caught.value, OSError)
    assert f"{blocker} is a file, not a directory" in str(caught.value)
    assert "point 'run_dir'" in str(caught.value)

    line = _one_error(capsys, ["probe", str(federation)])
    assert f"cannot make the run directory {run_dir}/" in line
    assert f"{blocker} is a file, not a directory" in line

    from examples.interleaved_optimizer.run import main as demo

    shipped = str(REPO / "endpoints" / "federation.yaml")  # the demo's methods
    assert demo(["--federation", shipped, "--run-dir", str(run_dir), "--quiet"]) == 2
    assert "is a file, not a directory" in _the_line(*capsys.readouterr())

    site = tmp_path / "cpu.yaml"
    line = _run_script("endpoint", "start", str(site), "--run-dir", str(run_dir))
    assert "is a file, not a directory; pass --run-dir" in line


def _unprivileged(check: Callable[[], object]) -> str:
    """What `check` raises, run as an ordinary user: chmod binds root in nothing.

    As root, a forked child gives up root first; the test stays meaningful there.
    """
    if os.geteuid() != 0:
        try:
            check()
        except RunDirectoryError as exc:
            return str(exc)
        return "nothing raised"
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        try:
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            try:
                check()
                message = "nothing raised"
            except RunDirectoryError as exc:
                message = str(exc)
            os.write(write, message.encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as stream:
        message = stream.read()
    os.waitpid(pid, 0)
    return message


def test_a_read_only_run_dir_is_refused_with_its_name() -> None:
    # Not under tmp_path: pytest makes its directories 0700, which an ordinary user
    # cannot even look into; this one must be seen and only not written.
    with tempfile.TemporaryDirectory() as top:
        Path(top).chmod(0o755)
        read_only = Path(top) / "read-only"
        read_only.mkdir()
        read_only.chmod(0o555)
        try:
            made = _unprivileged(lambda: new_run_dir(read_only, "demo"))
            existing = _unprivileged(lambda: make_run_dir(read_only))
        finally:
            read_only.chmod(0o755)
    assert f"cannot make the run directory {read_only}/demo-" in made
    assert "Permission denied" in made and "point 'run_dir'" in made
    assert f"cannot write in the run directory {read_only}" in existing


# -- 8. --version ------------------------------------------------------------------


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["--version"])
    assert caught.value.code == 0
    assert capsys.readouterr().out == "colmena-fx 0.1.0\n"
    done = subprocess.run([str(SCRIPT), "--version"], capture_output=True, text=True)
    assert (done.returncode, done.stdout) == (0, "colmena-fx 0.1.0\n")


# -- 9. --help of every command ----------------------------------------------------


def _commands(
    parser: argparse.ArgumentParser, name: str
) -> list[tuple[str, argparse.ArgumentParser]]:
    found = [(name, parser)]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub, child in action.choices.items():
                found += _commands(child, f"{name} {sub}")
    return found


def test_every_command_has_a_description_and_every_argument_help() -> None:
    commands = _commands(cli.build_parser(), "colmena-fx")
    names = {name for name, _ in commands}
    assert {"colmena-fx endpoint start", "colmena-fx data check"} <= names
    assert len(commands) == 13
    for name, parser in commands:
        assert parser.description, f"{name} has no description"
        for action in parser._actions:
            what = f"{name} {'/'.join(action.option_strings) or action.dest}"
            assert action.help, f"{what} has no help"
            assert action.help != argparse.SUPPRESS, what


# -- the last line of defence in main() --------------------------------------------


def test_an_os_error_about_a_path_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    site = write_site(tmp_path, "cpu", THREAD_POOL)
    taken = tmp_path / "taken"
    taken.write_text("")
    line = _one_error(capsys, ["endpoint", "render", str(site), "--out", str(taken)])
    assert line == f"error: {taken}: File exists"


def _raising(exc: BaseException) -> Callable[[argparse.Namespace], int]:
    def handler(args: argparse.Namespace) -> int:
        raise exc

    return handler


def test_an_interrupt_exits_130_without_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cli.commands, "summary", _raising(KeyboardInterrupt()))
    assert main(["summary", "runs/x"]) == 130
    assert capsys.readouterr().err == "interrupted\n"


@pytest.mark.parametrize(
    "bug",
    [
        RuntimeError("a bug"),
        KeyError("a bug"),
        ConnectionResetError(errno.ECONNRESET, "reset"),  # no path: not a user's
        OSError(errno.EIO, "I/O error", "some/file"),  # a path, but no user mistake
    ],
)
def test_a_bug_keeps_its_traceback(
    monkeypatch: pytest.MonkeyPatch, bug: Exception
) -> None:
    monkeypatch.setattr(cli.commands, "summary", _raising(bug))
    with pytest.raises(type(bug)):
        main(["summary", "runs/x"])
