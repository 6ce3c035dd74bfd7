"""The project as a user installs it: a wheel in a fresh virtual environment, outside the checkout.

The wheel is built from this checkout and installed without its dependencies, which the fresh
environment borrows from this one through a `.pth` line (so the test needs no network). The
checkout's own source is not on that path: only the installed wheel provides `streamer`.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.processes import child_env
from tests.e2e.test_demo import ROW

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 120


def _run(*args: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        [str(arg) for arg in args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, f"{args}: {result.stdout}\n{result.stderr}"
    return result.stdout


def has_shared_data_beside(folder: Path) -> bool:
    return any((parent / "shared" / "data").is_dir() for parent in (folder, *folder.parents))


def outside_any_checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh folder with no `shared/data` beside it or any of its parents, as on a user's
    machine (a machine's temporary folder may hold one), so only the packaged sample can serve."""
    for base in (
        tmp_path_factory.getbasetemp(),
        Path("/var/tmp"),
        Path.home() / ".cache",
    ):
        if not has_shared_data_beside(base):
            base.mkdir(parents=True, exist_ok=True)
            return Path(tempfile.mkdtemp(prefix="streamer-installed-", dir=base))
    pytest.fail("every candidate folder has a shared/data beside it")


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh venv with the wheel of this checkout installed; its `bin` folder."""
    base = outside_any_checkout(tmp_path_factory)
    _run(
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--quiet",
        "--no-deps",
        "--no-build-isolation",
        "--wheel-dir",
        base / "wheels",
        ROOT,
        cwd=base,
    )
    (wheel,) = (base / "wheels").glob("streamer-*.whl")
    venv = base / "venv"
    _run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=base)
    python = venv / "bin" / "python"
    _run(
        sys.executable,
        "-m",
        "pip",
        "--python",
        python,
        "install",
        "--quiet",
        "--no-deps",
        wheel,
        cwd=base,
    )
    site = _run(python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))", cwd=base)
    Path(site.strip(), "dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    yield venv / "bin"
    shutil.rmtree(base, ignore_errors=True)


def _user_env(home: Path) -> dict[str, str]:
    """A user's environment: no data folder configured, their own home directory."""
    env = {k: v for k, v in child_env().items() if k != "STREAMER_MOCK_DATA"}
    env["HOME"] = str(home)
    env["XDG_DATA_HOME"] = str(home / ".local" / "share")
    return env


def test_the_installed_package_comes_from_the_wheel(installed: Path, tmp_path: Path) -> None:
    """`python -m streamer --version` works, and `streamer` is imported from the installed wheel."""
    out = _run(installed / "python", "-m", "streamer", "--version", cwd=tmp_path)
    assert re.fullmatch(r"streamer \d+\.\d+\.\d+.*\n", out)
    where = _run(
        installed / "python", "-c", "import streamer; print(streamer.__file__)", cwd=tmp_path
    )
    assert Path(where.strip()).is_relative_to(installed.parent)


def test_the_installed_demo_replays_the_packaged_sample(installed: Path) -> None:
    """From a folder outside the checkout, `streamer demo --duration 5` streams the packaged
    sample's recorded trades, says that it does, and exits 0."""
    home = installed.parents[1] / "home"
    home.mkdir(exist_ok=True)
    out = _run(installed / "streamer", "demo", "--duration", "5", cwd=home, env=_user_env(home))
    assert "the sample packaged with streamer" in out
    rows = {symbol: (state, int(trades)) for symbol, state, trades in ROW.findall(out)}
    assert rows["FETUSDT"][0] == "streaming", out
    assert rows["FETUSDT"][1] > 0, out
    assert out.rstrip().endswith("demo stopped")
