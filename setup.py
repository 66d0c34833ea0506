"""actjepa: ACT-JEPA pretraining and policies, packaged as the ROS 2 package actjepa_ros.

One setup.py serves two installers:

* colcon (ament_python build type) on a ROS 2 install: ``colcon build``; the node
  executables land in ``lib/actjepa_ros`` (see setup.cfg) so ``ros2 run`` finds them.
* pip in a virtual environment without ROS: ``pip install -e '.[sim,ros,dev]'``; the ROS 2
  Python wheels come from the ``ros`` extra and the scripts land in the venv's ``bin/``.

torch is deliberately NOT in install_requires: install it first, on its own
(``pip install torch==2.13.0``, or the CUDA/CPU wheel you want), because anything that
depends on torch pulls the default (multi-GB CUDA) wheel when torch is missing. It is
declared in the ``torch`` extra for completeness. On a ROS install its rosdep key is
python3-torch (package.xml).
"""

import os

from setuptools import find_packages, setup

PACKAGE_NAME = 'actjepa_ros'
HERE = os.path.dirname(os.path.abspath(__file__))

# Python distributions needed at run time (besides torch, see above).
INSTALL_REQUIRES = [
    'numpy',
    'h5py',
    'pyyaml',
    'tqdm',
    'tensorboard',
    'matplotlib',
    'opencv-python-headless',
    'rosbags',
]

EXTRAS_REQUIRE = {
    # Install torch yourself first; this extra only records the dependency.
    'torch': ['torch'],
    # The embedded default robot: Meta-World's Sawyer arm in MuJoCo.
    'sim': ['metaworld', 'mujoco'],
    # ROS 2 Python wheels for machines WITHOUT a ROS install. Never install these over a
    # sourced ROS 2 (they would shadow the system rclpy). No wheel exists for cv_bridge,
    # launch, launch_ros or rosbag2: those come from a ROS install only.
    'ros': [
        'ros-rclpy',
        'ros-sensor-msgs',
        'ros-geometry-msgs',
        'ros-std-msgs',
        'ros-trajectory-msgs',
        'ros-std-srvs',
        'ros-lifecycle-msgs',
        'ros-diagnostic-msgs',
        'ros-rmw-fastrtps-cpp',
        'ros-fastdds',
    ],
    # `actjepa import`: LeRobot datasets (parquet via pyarrow, mp4 decoded with PyAV; PyAV also
    # writes `make demo`'s MP4, Pillow its GIF)
    'data': ['pyarrow', 'av', 'pillow'],
    # policy_type lerobot (actjepa_core/policies/lerobot.py, imported lazily): LeRobot pins its own
    # torch and torchvision, so it goes into a venv of its own (`make peers`), never into .venv
    'lerobot': ['lerobot==0.4.4'],
    # colcon: `make colcon` and test/test_package.py build the package as a ROS install would
    # ruff: test/test_lint.py (`make lint`)
    'dev': ['pytest', 'hypothesis', 'pytest-timeout', 'ruff', 'colcon-common-extensions',
            'colcon-ros'],
}


def share_data_files(folder):
    """(install dir, [files]) pairs for every non-hidden file under ``folder``.

    Globbed when setup.py runs, so files added later are installed without editing this
    file; sub-folders keep their layout under share/actjepa_ros/<folder>.
    """
    entries = []
    root = os.path.join(HERE, folder)
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames
                             if not d.startswith('.') and d != '__pycache__')
        files = sorted(
            os.path.relpath(os.path.join(dirpath, name), HERE)
            for name in filenames
            if not name.startswith('.') and not name.endswith(('.pyc', '.pyo')))
        if files:
            rel_dir = os.path.relpath(dirpath, HERE)
            entries.append((os.path.join('share', PACKAGE_NAME, rel_dir), files))
    return entries


DATA_FILES = [
    ('share/ament_index/resource_index/packages', ['resource/' + PACKAGE_NAME]),
    ('share/' + PACKAGE_NAME, ['package.xml']),
]
for _folder in ('launch', 'config', 'models'):
    DATA_FILES += share_data_files(_folder)

setup(
    name=PACKAGE_NAME,
    version='0.1.0',
    description='ACT-JEPA: joint-embedding predictive pretraining for robot policies, '
                'with ROS 2 nodes for recording, training data and deployment',
    license='Apache-2.0',
    python_requires='>=3.10',
    packages=find_packages(
        include=['actjepa_core', 'actjepa_core.*', 'actjepa_ros', 'actjepa_ros.*'],
        exclude=['test', 'test.*']),
    data_files=DATA_FILES,
    include_package_data=False,
    zip_safe=False,
    install_requires=INSTALL_REQUIRES,
    extras_require=EXTRAS_REQUIRE,
    entry_points={
        'console_scripts': [
            'actjepa = actjepa_core.cli:main',
            'policy_node = actjepa_ros.policy_node:main',
            'sim_node = actjepa_ros.sim_node:main',
            'recorder_node = actjepa_ros.recorder_node:main',
        ],
    },
)
