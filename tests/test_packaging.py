"""The distribution installs as a wheel into a fresh environment and maps every folder into ``zoo``."""

from __future__ import annotations

import os
import site
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_wheel_installs_into_fresh_venv_and_registers_envs(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    build = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(dist), str(REPO_ROOT)],
        check=True,
        capture_output=True,
        text=True,
    )
    # setuptools ships a data folder that Python could import but `packages` does not list only with a
    # deprecation warning, and a later setuptools drops it: every such folder must be listed.
    assert "Package would be ignored" not in build.stdout + build.stderr
    wheels = list(dist.glob("distill_zoo-*.whl"))
    assert len(wheels) == 1, wheels
    with zipfile.ZipFile(wheels[0]) as wheel:
        names = set(wheel.namelist())
    for bundle in (
        "zoo/agents/ad/bundled/",
        "zoo/hub/teachers/zoo-DarkRoom-v0/",
        "zoo/hub/teachers/multitask/",
    ):
        assert any(name.startswith(bundle) and name.endswith(".safetensors") for name in names), bundle

    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", str(wheels[0])],
        check=True,
        capture_output=True,
    )
    # Dependencies come from this interpreter's site-packages, added through PYTHONPATH: .pth files
    # (and so the editable install of this checkout) are not processed there, so `zoo` can only
    # come from the freshly installed wheel.
    dependency_paths = [*site.getsitepackages(), sysconfig.get_paths()["purelib"]]
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(dependency_paths)}
    script = (
        "import gymnasium as gym, zoo, zoo.envs, zoo.agents, zoo.hub\n"
        "print(zoo.__file__); print(zoo.envs.__file__); print(zoo.agents.__file__); print(zoo.hub.__file__)\n"
        "env = gym.make('zoo:zoo/DarkRoom-v0'); env.reset(seed=0); env.step(0)\n"
        "import importlib.resources as r\n"
        "print(r.files('zoo').joinpath('py.typed').is_file())\n"
        "from zoo.agents.ad import available_pretrained, load_pretrained, pretrained_path\n"
        "print(all(str(pretrained_path(e)).startswith(zoo.agents.__file__.rsplit('/', 1)[0]) "
        "for e in available_pretrained()) and len(available_pretrained()) > 0)\n"
        "print(load_pretrained('zoo/DarkRoom-v0', device='cpu').env_id)\n"
    )
    result = subprocess.run(
        [str(python), "-c", script], check=True, capture_output=True, text=True, env=environment, cwd=tmp_path
    )
    lines = result.stdout.split()
    installed_root = str(env_dir)
    for path in lines[:4]:
        assert path.startswith(installed_root), f"{path} was not imported from the installed wheel"
    assert lines[4] == "True"
    assert lines[5] == "True"  # the bundled AD models are package data of the wheel
    assert lines[6] == "zoo/DarkRoom-v0"


def test_make_without_prior_import_resolves_module_prefix() -> None:
    script = "import gymnasium as gym\nenv = gym.make('zoo:zoo/DarkRoom-v0')\nprint(env.spec.id)\n"
    result = subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, text=True)
    assert result.stdout.strip() == "zoo/DarkRoom-v0"
