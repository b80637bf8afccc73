"""Each kind of user installs only what they run: the install profiles of ``arcade-fleet``.

The project's wheel is built once per session; each profile is a fresh venv (without pip:
the outer pip installs into it with ``--python``) filled offline from a cached wheelhouse
(``$ARCADE_WHEELHOUSE/profiles`` or ``<repo>/.cache/wheelhouse/profiles``, filled with
``pip download`` on the first run only):

* base (``arcade-fleet``): embeds a ``PluginHost``, installs a real plugin wheel, collects;
* ``[agent]``: ``arcade agent --help``, and a standalone agent (no server) running the
  built-in ``cpu`` from the wheels shipped in the distribution;
* ``[cli]`` (which adds nothing now: the operator commands' client is the standard
  library's): ``arcade status --help``, and a request that fails cleanly, in every profile;

and in none of them is FastAPI or SQLAlchemy installed or imported; a command whose extra is
missing says which one in one line and exits 2.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.waiting import DEADLINE, until_sync
from tests.wheelmaker import make_wheel

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parent.parent
PIP = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input", "-q"]
HEAVY = ("fastapi", "sqlalchemy", "uvicorn", "alembic")
PROBE = f"""
import importlib.util, sys
from arcade_core.commands import main
try:
    code = main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
print("EXIT", code)
print("LOADED", *sorted(m for m in {HEAVY!r} + ("grpc", "httpx", "arcade_agent")
                         if m in sys.modules))
print("INSTALLED", *sorted(m for m in {HEAVY!r} if importlib.util.find_spec(m)))
"""


def _wheelhouse() -> Path:
    base = Path(os.environ.get("ARCADE_WHEELHOUSE") or REPO / ".cache" / "wheelhouse")
    return base / "profiles"


def _pip(*args: str) -> None:
    proc = subprocess.run([*PIP, *args], capture_output=True, text=True, timeout=600,
                          check=False)
    if proc.returncode:
        raise AssertionError(f"pip {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")


@pytest.fixture(scope="session")
def project_wheel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """(the project's wheel, the wheelhouse holding every dependency wheel it may need)."""
    wheelhouse = _wheelhouse()
    wheelhouse.mkdir(parents=True, exist_ok=True)
    base = tmp_path_factory.mktemp("profiles")
    source = base / "src"  # a copy: building in the checkout would leave build/ behind
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "setup.py", "MANIFEST.in"):
        shutil.copy2(REPO / name, source / name)
    # plugins/: setup.py builds the built-in plugins into wheels shipped in the distribution
    for package in ("arcade_core", "arcade_agent", "arcade_server", "plugins"):
        shutil.copytree(REPO / package, source / package,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    offline = ["--no-index", "--find-links", str(wheelhouse)]
    try:  # offline first: after the first run everything is there
        _pip("wheel", "--no-deps", *offline, "-w", str(base / "dist"), str(source))
    except AssertionError:
        _pip("download", "-d", str(wheelhouse), "setuptools>=77", "flit_core>=3.12,<5")
        _pip("wheel", "--no-deps", *offline, "-w", str(base / "dist"), str(source))
    (wheel,) = (base / "dist").glob("arcade_fleet-*.whl")
    wanted = f"{wheel}[agent,cli]"
    constraints = ["-c", str(REPO / "constraints.txt")]
    try:
        _pip("download", *offline, *constraints, "-d", str(wheelhouse), wanted)
    except AssertionError:
        _pip("download", *constraints, "-d", str(wheelhouse), wanted)
    yield wheel, wheelhouse


def _venv(tmp_path: Path, wheel: Path, wheelhouse: Path, extras: str) -> Path:
    venv = tmp_path / f"venv-{extras or 'base'}"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True,
                   timeout=120)
    target = f"{wheel}[{extras}]" if extras else str(wheel)
    _pip("--python", str(venv / "bin" / "python"), "install", "--no-index", "--find-links",
         str(wheelhouse), "-c", str(REPO / "constraints.txt"), target)
    return venv


def _probe(venv: Path, *args: str) -> tuple[int, list[str], list[str], str, str]:
    """Run ``arcade ARGS`` in the venv's Python: (exit, loaded, installed, stdout, stderr)."""
    proc = subprocess.run([str(venv / "bin" / "python"), "-c", PROBE, *args],
                          capture_output=True, text=True, timeout=120, check=True,
                          cwd=venv, env={k: v for k, v in os.environ.items()
                                         if k not in ("PYTHONPATH", "ARCADE_API")})
    lines = proc.stdout.strip().splitlines()
    code = int(lines[-3].split()[1])
    return code, lines[-2].split()[1:], lines[-1].split()[1:], proc.stdout, proc.stderr


def _needs(extra: str, command: str) -> str:
    return (f"error: arcade {command} needs the '{extra}' extra: pip install "
            f"'arcade-fleet[{extra}]'")


def test_base_install_embeds_a_plugin_host(tmp_path: Path,
                                           project_wheel: tuple[Path, Path]) -> None:
    venv = _venv(tmp_path, *project_wheel, "")
    plugin = make_wheel(tmp_path / "wheels", "profile-probe", "1.0.0")
    script = (
        "import sys\n"
        "from arcade_core import PluginHost\n"
        f"with PluginHost({str(tmp_path / 'home')!r}) as host:\n"
        f"    host.install([{str(plugin)!r}])\n"
        "    host.load('profile-probe')\n"
        "    metrics = [m for ms in host.hook.collect() for m in ms]\n"
        "print('METRICS', len(metrics), metrics[0].name)\n"
        f"print('LOADED', *sorted(m for m in {HEAVY!r} + ('grpc', 'httpx') "
        "if m in sys.modules))\n"
    )
    proc = subprocess.run([str(venv / "bin" / "python"), "-c", script], capture_output=True,
                          text=True, timeout=120, check=True, cwd=tmp_path)
    lines = proc.stdout.strip().splitlines()
    assert lines[0].startswith("METRICS 1 "), proc.stdout + proc.stderr
    assert lines[-1] == "LOADED"
    code, loaded, installed, _, err = _probe(venv, "server")
    assert (code, err.strip().splitlines()) == (2, [err.strip()])  # one line, no traceback
    assert err.startswith(_needs("server", "server"))
    # The operator commands need nothing beyond the base: their client is the stdlib's.
    code, loaded_cli, _, _, err = _probe(venv, "status", "--agent", "x", "--api",
                                         "http://127.0.0.1:9")
    assert code == 1 and err.startswith("error: cannot reach the Arcade API"), err
    code, _, _, _, err = _probe(venv, "agent")
    assert code == 2 and err.startswith(_needs("agent", "agent"))
    assert installed == [] and loaded == [] and loaded_cli == []


def test_agent_install_runs_arcade_agent(tmp_path: Path,
                                         project_wheel: tuple[Path, Path]) -> None:
    venv = _venv(tmp_path, *project_wheel, "agent")
    proc = subprocess.run([str(venv / "bin" / "arcade"), "agent", "--help"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0 and "usage: arcade agent" in proc.stdout, proc.stderr
    code, loaded, installed, out, _ = _probe(venv, "agent", "--help")
    assert code == 0 and "--server HOST:PORT" in out
    assert loaded == ["arcade_agent"] and installed == []
    code, loaded, _, _, err = _probe(venv, "status", "--agent", "x", "--api",
                                     "http://127.0.0.1:9")
    assert code == 1 and err.startswith("error: cannot reach the Arcade API"), err
    assert loaded == []
    _standalone_cpu(venv, tmp_path)


def _standalone_cpu(venv: Path, tmp_path: Path) -> None:
    """The ``[agent]`` profile finds the built-in wheels shipped inside arcade-fleet and runs
    ``cpu`` as a local plugin with no server (psutil packed from the venv's own copy)."""
    (site,) = (venv / "lib").glob("python3*/site-packages")
    assert {"arcade-cpu", "arcade-memory"} <= {
        w.name.split("-")[0].replace("_", "-") for w in (site / "arcade_core" /
                                                          "builtin_wheels").glob("*.whl")}
    config = tmp_path / "agent.yaml"
    config.write_text("plugins:\n  cpu: {interval: 0.3}\n")
    log_path = tmp_path / "standalone.log"
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "ARCADE_API") and not k.startswith("ARCADE_AGENT_")}
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([str(venv / "bin" / "arcade"), "agent", "--home",
                                 str(tmp_path / "agent-home"), "--id", "profile",
                                 "--config", str(config)], stdout=log,
                                stderr=subprocess.STDOUT, env=env, cwd=tmp_path)
    try:
        until_sync(lambda: "metric arcade-cpu cpu.percent" in log_path.read_text()
                   or proc.poll() is not None, what="cpu metrics from a standalone agent")
        assert proc.poll() is None, log_path.read_text()
    finally:
        proc.terminate()
        proc.wait(DEADLINE)
    assert proc.returncode == 0, log_path.read_text()


def test_cli_install_runs_the_operator_commands(tmp_path: Path,
                                                project_wheel: tuple[Path, Path]) -> None:
    venv = _venv(tmp_path, *project_wheel, "cli")
    proc = subprocess.run([str(venv / "bin" / "arcade"), "status", "--help"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0 and "usage: arcade status" in proc.stdout, proc.stderr
    code, loaded, installed, _, _ = _probe(venv, "status", "--help")
    assert code == 0 and loaded == [] and installed == []
    # A real request (nothing listens there): the stdlib client, the error is one line.
    code, loaded, _, _, err = _probe(venv, "status", "--agent", "x", "--api",
                                     "http://127.0.0.1:9")
    assert code == 1 and err.startswith("error: cannot reach the Arcade API"), err
    assert loaded == []
    code, _, _, _, err = _probe(venv, "server")
    assert (code, len(err.strip().splitlines())) == (2, 1)
    assert err.startswith(_needs("server", "server"))


def test_publish_builtin_from_an_installed_distribution(
    tmp_path: Path, project_wheel: tuple[Path, Path], dependency_wheelhouse: Path
) -> None:
    """``arcade publish --builtin`` from a ``[cli]`` install, far from any checkout: the
    built-ins ship inside the wheel, and end up published (with psutil) on a real server."""
    from arcade_core.builtin import builtin_dependency_wheels, shipped_builtin_wheels
    from arcade_server.client import ArcadeClient
    from tests.server.conftest import start_server

    venv = _venv(tmp_path, *project_wheel, "cli")
    (site,) = (venv / "lib").glob("python3*/site-packages")
    shipped = shipped_builtin_wheels(site / "arcade_core" / "builtin_wheels")
    assert {"arcade-cpu", "arcade-memory", "arcade-workspace", "arcade-loadavg"} <= set(shipped)
    assert not (site / "plugins").exists()
    # psutil into the wheelhouse with this interpreter's pip (the venv has none)
    builtin_dependency_wheels(list(shipped.values()), dependency_wheelhouse)
    server = start_server(tmp_path / "server")
    try:
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "ARCADE_API")}
        env.update(ARCADE_TOKEN=server.admin_token, ARCADE_WHEELHOUSE=str(dependency_wheelhouse),
                   XDG_CONFIG_HOME=str(tmp_path / "config"))
        argv = [str(venv / "bin" / "arcade"), "publish", "--builtin", "--api", server.http_url]
        first = subprocess.run(argv, capture_output=True, text=True, timeout=300, cwd=tmp_path,
                               env=env, check=False)
        assert first.returncode == 0, first.stdout + first.stderr
        assert "published: arcade-workspace@1.0.0" in first.stdout
        assert "published: arcade-loadavg@1.0.0" in first.stdout  # the exec plugin too
        assert "published: arcade-cpu@1.0.0  2 wheel(s)" in first.stdout  # with psutil
        again = subprocess.run([*argv, "arcade-cpu"], capture_output=True, text=True,
                               timeout=300, cwd=tmp_path, env=env, check=False)
        assert again.returncode == 0, again.stdout + again.stderr
        assert again.stdout.startswith("already published (identical): arcade-cpu@1.0.0")
        with ArcadeClient(server.http_url, token=server.admin_token) as api:
            published = {p["name"] for p in api.plugins()}
            cpu = api.version("arcade-cpu", "1.0.0")
        assert set(shipped) <= published
        assert {w["filename"].split("-")[0] for w in cpu["wheels"]} == {"arcade_cpu", "psutil"}
    finally:
        server.stop()
