"""Packaging: what package.xml and setup.py declare, and what colcon installs.

* Every ROS package (and rosdep-keyed Python library) that the nodes in actjepa_ros/ or
  the launch files import is declared in package.xml, so `rosdep install` on a ROS
  machine brings everything in; adding an undeclared import fails here.
* actjepa_core never imports ROS, and every third-party module it imports is a
  requirement (or extra) in setup.py, so `pip install -e '.[sim,ros,dev]'` is complete.
* config/ holds only user configs; nothing of experiments/ is installed.
* A colcon build of a copy of the repository succeeds and installs package.xml, the
  ament index marker, launch/ config/ models/ (sub-folders kept), the node executables
  in lib/actjepa_ros and both Python packages.
"""

import ast
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = 'actjepa_ros'
OWN_MODULES = {'actjepa_core', 'actjepa_ros'}
# imported lazily by actjepa_core (policies/lerobot.py) and installed only in .venv-peers
# (`make peers`), never in .venv: each must still be a declared requirement (its own extra)
PEER_MODULES = {'lerobot': 'lerobot'}
SHARE_FOLDERS = ('launch', 'config', 'models')

# Python modules of ROS packages, where the heuristics below cannot tell (no `ros-*` wheel
# installed here, no *_msgs-style suffix). Value: the ROS package that provides the module.
KNOWN_ROS_MODULES = {
    'rclpy': 'rclpy',
    'launch': 'launch',
    'launch_ros': 'launch_ros',
    'launch_xml': 'launch_xml',
    'launch_yaml': 'launch_yaml',
    'launch_testing': 'launch_testing',
    'launch_testing_ros': 'launch_testing_ros',
    'ros2launch': 'ros2launch',
    'cv_bridge': 'cv_bridge',
    'image_geometry': 'image_geometry',
    'ament_index_python': 'ament_index_python',
    'message_filters': 'message_filters',
    'tf2_ros': 'tf2_ros_py',
    'tf2_py': 'tf2_py',
    'tf_transformations': 'tf_transformations',
    'rosbag2_py': 'rosbag2_py',
    'rosidl_runtime_py': 'rosidl_runtime_py',
    'rpyutils': 'rpyutils',
}
ROS_MODULE_SUFFIXES = ('_msgs', '_srvs', '_interfaces', '_actions')

# Using these submodules needs a further package at run time.
IMPLIED_ROS_PACKAGES = {
    'rclpy.lifecycle': {'lifecycle_msgs'},
}

# Third-party Python modules with a rosdep key (checked in ros/rosdistro rosdep/python.yaml).
ROSDEP_KEYS = {
    'numpy': 'python3-numpy',
    'cv2': 'python3-opencv',
    'yaml': 'python3-yaml',
    'h5py': 'python3-h5py',
    'tqdm': 'python3-tqdm',
    'matplotlib': 'python3-matplotlib',
    'torch': 'python3-torch',
    'scipy': 'python3-scipy',
    'PIL': 'python3-pil',
}

# Import name -> distribution name, for modules not installed in this environment.
FALLBACK_DISTRIBUTIONS = {
    'cv2': 'opencv-python-headless',
    'yaml': 'pyyaml',
    'PIL': 'pillow',
    'torch': 'torch',
}


# ---------------------------------------------------------------------------------------------
# helpers


def _normalise(dist_name):
    return re.sub(r'[-_.]+', '-', dist_name).lower()


def _imports(path):
    """Absolute imported module names (dotted) anywhere in a Python file."""
    tree = ast.parse(path.read_text(encoding='utf-8'), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
            # `from rclpy import lifecycle` imports rclpy.lifecycle
            names.update(f'{node.module}.{alias.name}' for alias in node.names)
    return names


def _python_files(*folders):
    files = []
    for folder in folders:
        root = REPO / folder
        if root.is_dir():
            files += sorted(p for p in root.rglob('*.py') if '__pycache__' not in p.parts)
    return files


_PACKAGES_DISTRIBUTIONS = importlib.metadata.packages_distributions()


def _distributions(top):
    found = _PACKAGES_DISTRIBUTIONS.get(top)
    if found:
        return {_normalise(d) for d in found}
    if top in FALLBACK_DISTRIBUTIONS:
        return {_normalise(FALLBACK_DISTRIBUTIONS[top])}
    return set()


def _ros_package(top):
    """The ROS package providing module `top`, or None when it is not a ROS module."""
    if top in KNOWN_ROS_MODULES:
        return KNOWN_ROS_MODULES[top]
    if top.endswith(ROS_MODULE_SUFFIXES):
        return top
    if any(d.startswith('ros-') for d in _distributions(top)):
        return top
    return None


def _is_stdlib(top):
    return top in sys.stdlib_module_names


def _package_xml():
    return ET.parse(REPO / 'package.xml').getroot()


def _declared_dependencies(root, tags):
    return {el.text.strip() for tag in tags for el in root.findall(tag) if el.text}


def _setup_py_literals():
    """INSTALL_REQUIRES, EXTRAS_REQUIRE and entry_points from setup.py, without running it."""
    tree = ast.parse((REPO / 'setup.py').read_text(encoding='utf-8'))
    values = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 \
                and isinstance(node.targets[0], ast.Name) \
                and node.targets[0].id in ('INSTALL_REQUIRES', 'EXTRAS_REQUIRE'):
            values[node.targets[0].id] = ast.literal_eval(node.value)
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, 'id', None) == 'setup':
            for kw in node.keywords:
                if kw.arg == 'entry_points':
                    values['entry_points'] = ast.literal_eval(kw.value)
    return values


def _pip_requirements():
    values = _setup_py_literals()
    requirements = list(values['INSTALL_REQUIRES'])
    for extra in values['EXTRAS_REQUIRE'].values():
        requirements += extra
    return {_normalise(re.match(r'[A-Za-z0-9._-]+', r).group(0)) for r in requirements}


# ---------------------------------------------------------------------------------------------
# package.xml


def test_package_xml_is_format_3_ament_python():
    root = _package_xml()
    assert root.tag == 'package'
    assert root.get('format') == '3'
    assert root.findtext('name') == PACKAGE
    assert root.findtext('version') == '0.1.0'
    assert root.findtext('license') == 'Apache-2.0'
    assert root.findtext('export/build_type') == 'ament_python'
    assert root.find('maintainer') is not None and root.find('maintainer').get('email')
    # ament_python packages have no buildtool_depend on ament_python (that is ament_cmake's way)
    assert 'ament_python' not in _declared_dependencies(root, ['buildtool_depend'])


def test_package_xml_parses_with_catkin_pkg():
    import catkin_pkg.package as catkin_pkg  # installed with colcon-common-extensions
    package = catkin_pkg.parse_package(str(REPO / 'package.xml'))
    package.validate()
    assert package.get_build_type() == 'ament_python'


def test_setup_py_version_matches_package_xml():
    text = (REPO / 'setup.py').read_text(encoding='utf-8')
    version = re.search(r"version='([^']+)'", text).group(1)
    assert version == _package_xml().findtext('version')


def test_every_ros_import_of_nodes_and_launch_files_is_declared():
    root = _package_xml()
    run_deps = _declared_dependencies(root, ['exec_depend', 'depend'])
    pip_requirements = _pip_requirements()
    files = _python_files('actjepa_ros', 'launch')
    assert files, 'no Python files found in actjepa_ros/'

    problems = []
    for path in files:
        rel = path.relative_to(REPO)
        for name in sorted(_imports(path)):
            top = name.split('.')[0]
            if top in OWN_MODULES or _is_stdlib(top):
                continue
            for dotted, implied in IMPLIED_ROS_PACKAGES.items():
                if name == dotted or name.startswith(dotted + '.'):
                    problems += [f'{rel}: {dotted} needs <exec_depend>{p}</exec_depend>'
                                 for p in sorted(implied - run_deps)]
            ros_package = _ros_package(top)
            if ros_package is not None:
                if ros_package not in run_deps:
                    problems.append(f'{rel}: imports {top}; add '
                                    f'<exec_depend>{ros_package}</exec_depend> to package.xml')
            elif top in ROSDEP_KEYS:
                if ROSDEP_KEYS[top] not in run_deps:
                    problems.append(f'{rel}: imports {top}; add '
                                    f'<exec_depend>{ROSDEP_KEYS[top]}</exec_depend> to package.xml')
            elif not (_distributions(top) & pip_requirements):
                problems.append(f'{rel}: imports {top}, which is neither a declared ROS package '
                                'nor a rosdep key in package.xml nor a requirement in setup.py '
                                '(if it is a ROS package, add it to KNOWN_ROS_MODULES here)')
    assert not problems, '\n'.join(sorted(set(problems)))


def test_core_never_imports_ros_and_declares_its_pip_requirements():
    pip_requirements = _pip_requirements()
    files = _python_files('actjepa_core')
    assert files, 'no Python files found in actjepa_core/'
    problems = []
    for path in files:
        rel = path.relative_to(REPO)
        for name in sorted(_imports(path)):
            top = name.split('.')[0]
            if top in OWN_MODULES or _is_stdlib(top):
                continue
            if _ros_package(top) is not None:
                problems.append(f'{rel}: imports ROS module {top}; actjepa_core must stay '
                                'ROS-free (move it to actjepa_ros/)')
                continue
            if top in PEER_MODULES:
                if _normalise(PEER_MODULES[top]) not in pip_requirements:
                    problems.append(f'{rel}: imports {top}; declare {PEER_MODULES[top]} as an '
                                    'extra in setup.py')
                continue
            dists = _distributions(top)
            if not dists:
                problems.append(f'{rel}: imports {top}, which is not installed here')
            elif not (dists & pip_requirements):
                problems.append(f'{rel}: imports {top} (distribution {sorted(dists)}); '
                                'add it to INSTALL_REQUIRES or an extra in setup.py')
    assert not problems, '\n'.join(sorted(set(problems)))


# ---------------------------------------------------------------------------------------------
# setup.py


EXPECTED_SCRIPTS = {
    'actjepa': 'actjepa_core.cli:main',
    'policy_node': 'actjepa_ros.policy_node:main',
    'sim_node': 'actjepa_ros.sim_node:main',
    'recorder_node': 'actjepa_ros.recorder_node:main',
}


def _console_scripts():
    return dict((s.strip() for s in spec.split('='))
                for spec in _setup_py_literals()['entry_points']['console_scripts'])


def test_setup_py_declares_the_console_scripts():
    scripts = _console_scripts()
    assert scripts['actjepa'] == EXPECTED_SCRIPTS['actjepa']
    for name, target in scripts.items():
        assert EXPECTED_SCRIPTS.get(name) == target, name
    # a node module that exists must be declared as its script
    for name, target in EXPECTED_SCRIPTS.items():
        assert (name in scripts) == _module_path(target.split(':')[0]).exists(), name


def test_console_script_targets_define_main():
    for script, spec in _console_scripts().items():
        _assert_defines_main(script, spec)


def _module_path(module):
    """The file of a dotted module name: a module's .py, or a package's __init__.py."""
    base = REPO.joinpath(*module.split('.'))
    return base / '__init__.py' if base.is_dir() else base.with_suffix('.py')


def _assert_defines_main(script, spec):
    module, func = spec.split(':')
    path = _module_path(module)
    assert path.exists(), f'{script}: {path} does not exist'
    defined = set()
    for node in ast.parse(path.read_text(encoding='utf-8')).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            defined.add(node.name)
        elif isinstance(node, ast.Assign):
            defined |= {t.id for t in node.targets if isinstance(t, ast.Name)}
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            defined |= {(a.asname or a.name).split('.')[0] for a in node.names}
    assert func in defined, f'{path.relative_to(REPO)} has no top-level {func}()'


def test_pytest_runs_with_a_per_test_timeout(pytestconfig):
    assert pytestconfig.getini('timeout') not in (None, '', [])


# ---------------------------------------------------------------------------------------------
# colcon

_COPY_IGNORED_AT_TOP = {'.git', '.venv', 'venv', 'build', 'install', 'log', 'runs', 'data',
                        'tmp', '.whl', '.gl', '.pytest_cache', '.hypothesis'}


def _ignore_for_copy(directory, names):
    ignored = {n for n in names
               if n == '__pycache__' or n.endswith('.egg-info') or n.endswith('.pyc')}
    if Path(directory).resolve() == REPO:
        ignored |= {n for n in names if n in _COPY_IGNORED_AT_TOP}
    return ignored


def _share_files(root):
    """Relative paths of the files setup.py installs from launch/, config/ and models/."""
    files = []
    for folder in SHARE_FOLDERS:
        base = root / folder
        if not base.is_dir():
            continue
        for path in base.rglob('*'):
            rel = path.relative_to(root)
            if path.is_file() and not any(part.startswith('.') or part == '__pycache__'
                                          for part in rel.parts):
                files.append(rel)
    return sorted(files)


# besides the policy node's policy*.yaml and the trainer's train*.yaml
USER_CONFIGS = {'sim.yaml', 'recorder.yaml', 'train.yaml', 'ros2_control_arm.yaml'}


def _experiment_files(share):
    """Installed files that belong to experiments/: a study's config, runner or probe."""
    studies = {p.name for p in (REPO / 'experiments').rglob('*') if p.is_file()}
    return sorted(str(rel) for rel in share if 'experiments' in rel.parts
                  or (rel.parts[0] == 'config' and rel.name in studies))


def test_only_user_configs_are_installed():
    """config/ ships what a user runs (the nodes' params files, train configs, the policy
    configs); the studies' configs live in experiments/, which is never installed."""
    share = _share_files(REPO)
    configs = {rel.name for rel in share if rel.parts[0] == 'config'}
    others = sorted(name for name in configs - USER_CONFIGS
                    if not re.fullmatch(r'(policy|train)(_\w+)?\.yaml', name))
    assert not others, f'config/ holds {others}: a study config belongs in experiments/'
    assert USER_CONFIGS <= configs and 'policy.yaml' in configs
    assert not _experiment_files(share)
    setup_py = (REPO / 'setup.py').read_text()
    assert "'experiments'" not in setup_py and 'experiments.*' not in setup_py


def _colcon():
    candidate = Path(sys.executable).parent / 'colcon'
    if candidate.exists():
        return str(candidate)
    found = shutil.which('colcon')
    assert found, 'colcon is not installed (the [dev] extra brings colcon-common-extensions)'
    return found


def test_colcon_build_installs_the_package(tmp_path):
    colcon = _colcon()
    workspace = tmp_path / 'ws'
    source = workspace / 'src' / PACKAGE
    shutil.copytree(REPO, source, ignore=_ignore_for_copy, symlinks=True)

    # Probe files (only in the copy): every share folder gets a file even while the real one
    # is empty, and a nested one checks that sub-folders keep their layout.
    for folder in SHARE_FOLDERS:
        (source / folder).mkdir(exist_ok=True)
        (source / folder / 'packaging_probe.txt').write_text('probe\n')
    (source / 'models' / 'probe_sub').mkdir()
    (source / 'models' / 'probe_sub' / 'probe.pt').write_bytes(b'\0probe')

    env = dict(os.environ)
    env['COLCON_HOME'] = str(tmp_path / 'colcon_home')
    for var in ('COLCON_DEFAULTS_FILE', 'COLCON_EXTENSION_BLOCKLIST'):
        env.pop(var, None)
    result = subprocess.run(
        [colcon, '--log-base', str(workspace / 'log'), 'build',
         '--base-paths', str(workspace / 'src'),
         '--build-base', str(workspace / 'build'),
         '--install-base', str(workspace / 'install'),
         '--event-handlers', 'console_direct+'],
        cwd=workspace, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
        timeout=180)
    assert result.returncode == 0, f'colcon build failed:\n{result.stdout}\n{result.stderr}'
    assert '1 package finished' in result.stdout, result.stdout

    prefix = workspace / 'install' / PACKAGE
    share = prefix / 'share' / PACKAGE
    assert (share / 'package.xml').read_bytes() == (REPO / 'package.xml').read_bytes()
    assert (prefix / 'share' / 'ament_index' / 'resource_index' / 'packages' / PACKAGE).is_file()

    expected = _share_files(source)
    assert Path('models/probe_sub/probe.pt') in expected
    installed = [path.relative_to(share) for path in share.rglob('*') if path.is_file()]
    assert not _experiment_files(installed), 'an experiment file is installed'
    missing = [str(rel) for rel in expected if not (share / rel).is_file()]
    assert not missing, f'not installed under share/{PACKAGE}: {missing}'

    # `ros2 run actjepa_ros <node>` looks in lib/<package>
    for script in _console_scripts():
        exe = prefix / 'lib' / PACKAGE / script
        assert exe.is_file() and os.access(exe, os.X_OK), f'missing executable {exe}'

    site_packages = sorted(prefix.glob('lib/python3*/site-packages'))
    assert len(site_packages) == 1, site_packages
    site_packages = site_packages[0]
    for package in sorted(OWN_MODULES):
        src_modules = {p.relative_to(source) for p in (source / package).rglob('*.py')
                       if '__pycache__' not in p.parts}
        installed = {p.relative_to(site_packages) for p in (site_packages / package).rglob('*.py')}
        assert src_modules, package
        assert src_modules <= installed, \
            f'{package}: not installed: {sorted(map(str, src_modules - installed))}'
    assert not (site_packages / 'test').exists(), 'the test folder must not be installed'
    assert not (site_packages / 'experiments').exists(), 'experiments/ must not be installed'
