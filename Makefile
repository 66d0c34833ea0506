# actjepa: the README's commands.
#
#   make setup    system library + .venv with torch (CPU wheel first) and actjepa_ros[sim,ros,dev,data]
#   make test     the pytest suite but the `slow` tests (runs setup first when needed), lint included
#   make test-long   the `slow` tests: long fault/soak runs, closed-loop MPC on push-v3
#   make test-kernels  the core tests (training, policies, closed loop) again under torch's
#                 portable kernels (ATEN_CPU_CAPABILITY=default), AVX2, and one torch thread:
#                 a verdict that changes with the CPU fails here before it fails on another machine
#   make peers    .venv-peers: lerobot (LEROBOT_VERSION) + this package, apart from .venv
#   make test-peers  the `peers` tests in .venv-peers: LeRobot reads what `actjepa export` writes,
#                 policy_node serves a LeRobot policy to sim_node over DDS
#   make lint     ruff check with ruff.toml's rules (what test/test_lint.py runs)
#   make demo     the shipped camera policy drives the simulated arm over ROS 2 (two node processes):
#                 N episodes -> video (MP4), PNG summary, success rate, latency (DEMO_* below);
#                 DEMO_INTERFACE=twist commands it as a real cell: TwistStamped hand velocity
#                 (MoveIt Servo's input) + a Float64 gripper topic, instead of the 4-d array;
#                 DEMO_KIND=wrist runs the policy on a scene and a wrist camera
#   make demo-train  collect sim demos -> train ACT-JEPA -> report           (TRAIN_DEMO_* below)
#   make bench    benchmarks -> docs/BENCHMARKS.md
#   make colcon   colcon build of this package in a throwaway workspace (build/colcon_ws)
#   make clean    remove build outputs (keeps .venv and runs/); `make distclean` also removes .venv
#
# Every variable can be overridden: `make demo DEMO_TASK=push-v3 DEMO_EPISODES=20`,
# `make setup PYTHON=python3.11`, `make test PYTEST_ARGS='-k bags -x'`.

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV   ?= .venv
PIP    ?= $(VENV)/bin/pip
PY     ?= $(VENV)/bin/python
COLCON ?= $(VENV)/bin/colcon

# torch goes in FIRST and on its own: installing anything that depends on torch without it
# pulls the default CUDA wheel (GBs). Point TORCH_PIP_ARGS at the wheel index you want, e.g.
#     make setup TORCH_PIP_ARGS='--index-url https://download.pytorch.org/whl/cpu'
TORCH_VERSION  ?= 2.13.0
TORCH_PIP_ARGS ?=
EXTRAS         ?= sim,ros,dev,data

STAMP := $(VENV)/.setup-stamp

# Headless MuJoCo rendering by default; override with MUJOCO_GL=egl (GPU) or glfw (desktop).
# PYOPENGL_PLATFORM follows MUJOCO_GL (empty, i.e. PyOpenGL's default, for glfw).
export MUJOCO_GL ?= osmesa
export PYOPENGL_PLATFORM ?= $(filter egl osmesa,$(MUJOCO_GL))

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_INSTALL := $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends

PYTEST_ARGS ?=
# the peers environment: other robot-learning stacks, never installed into .venv
PEERS_VENV      ?= .venv-peers
LEROBOT_VERSION ?= 0.4.4
PEERS_STAMP     := $(PEERS_VENV)/.setup-stamp
# what `make test-kernels` reruns, and under which settings (env assignments, one run each)
KERNEL_TESTS    ?= test/core
KERNEL_SETTINGS ?= ATEN_CPU_CAPABILITY=default ATEN_CPU_CAPABILITY=avx2 OMP_NUM_THREADS=1

DEMO_TASK     ?= push-v3
# camera: the camera + joint-state policy (what a real arm gives); wrist: a scene and a wrist
# camera + joint states; bc: the policy on the simulator's 39-d task state
DEMO_KIND     ?= camera
DEMO_POLICY   ?= models/$(subst -v3,,$(DEMO_TASK))_$(DEMO_KIND).pt
DEMO_EPISODES ?= 10
DEMO_SEED     ?= 1
DEMO_OUT      ?= runs/demo-video
# array: 4-d Float64MultiArray on sim_node/action | twist: TwistStamped + Float64 gripper
DEMO_INTERFACE ?= array

TRAIN_DEMO_TASK     ?= push-v3
TRAIN_DEMO_EPISODES ?= 30
TRAIN_DEMO_STEPS    ?= 1500
TRAIN_DEMO_DIR      ?= runs/demo

BENCH_OUT ?= docs/BENCHMARKS.md

COLCON_WS ?= build/colcon_ws
# a path (.venv/bin/colcon) is made absolute for use inside the workspace; a bare name
# (COLCON=colcon, from a ROS install) is looked up on PATH
COLCON_BIN = $(if $(findstring /,$(COLCON)),$(abspath $(COLCON)),$(COLCON))
COLCON_SHARE = $(COLCON_WS)/install/actjepa_ros/share/actjepa_ros

.PHONY: help setup osmesa test test-long test-kernels peers test-peers lint demo demo-train bench colcon clean distclean

help:
	@sed -n 's/^#   make /  make /p' $(firstword $(MAKEFILE_LIST))

# ---------------------------------------------------------------------------------------------
# set-up: idempotent; re-runs only when the packaging files change (or the stamp is removed).

setup: $(STAMP)

$(STAMP): setup.py setup.cfg package.xml
	@$(MAKE) --no-print-directory osmesa
	@if [ ! -x "$(PIP)" ]; then \
	  echo "+ $(PYTHON) -m venv $(VENV)"; \
	  $(PYTHON) -m venv $(VENV) || { \
	    echo "venv failed; installing python3-venv"; \
	    { $(APT_INSTALL) python3-venv || { $(SUDO) apt-get update && $(APT_INSTALL) python3-venv; }; } \
	    && $(PYTHON) -m venv $(VENV); }; \
	fi
	$(PIP) install $(TORCH_PIP_ARGS) 'torch==$(TORCH_VERSION)'
	$(PIP) install -e '.[$(EXTRAS)]'
	@touch $@

# libOSMesa: software OpenGL for MuJoCo rendering on machines without a display or GPU.
osmesa:
	@if PATH="$$PATH:/sbin:/usr/sbin" ldconfig -p 2>/dev/null | grep -q 'libOSMesa\.so'; then \
	  :; \
	elif command -v apt-get >/dev/null 2>&1; then \
	  echo "+ apt-get install libosmesa6"; \
	  $(APT_INSTALL) libosmesa6 \
	  || { $(SUDO) apt-get update && $(APT_INSTALL) libosmesa6; }; \
	else \
	  echo "warning: libOSMesa not found and no apt-get here: install OSMesa," \
	       "or run with MUJOCO_GL=egl (GPU) or MUJOCO_GL=glfw (desktop)" >&2; \
	fi

# ---------------------------------------------------------------------------------------------

test: $(STAMP)
	$(PY) -m pytest -q -m "not slow and not peers" $(PYTEST_ARGS)

test-long: $(STAMP)
	$(PY) -m pytest -q -m slow $(PYTEST_ARGS)

test-kernels: $(STAMP)
	@for setting in $(KERNEL_SETTINGS); do \
	  echo "+ $$setting pytest $(KERNEL_TESTS)"; \
	  env $$setting $(PY) -m pytest -q -p no:cacheprovider -m "not slow and not peers" $(KERNEL_TESTS) \
	    $(PYTEST_ARGS) || exit 1; \
	done

# lerobot pins its own torch (a CUDA build, ~5.5 GB); this package goes in with --no-deps so
# nothing of .venv's torch pin reaches it, plus what the importer/exporter, the simulator, the
# ROS 2 wheels (policy_node serving a LeRobot policy over DDS), training and the tests need.
PEERS_EXTRA ?= h5py pyarrow av pillow opencv-python-headless pyyaml tqdm tensorboard pytest \
  pytest-timeout metaworld mujoco ros-rclpy ros-sensor-msgs ros-geometry-msgs ros-std-msgs \
  ros-trajectory-msgs ros-std-srvs ros-lifecycle-msgs ros-diagnostic-msgs ros-rmw-fastrtps-cpp \
  ros-fastdds
peers: $(PEERS_STAMP)

$(PEERS_STAMP): setup.py setup.cfg Makefile
	@$(MAKE) --no-print-directory osmesa
	@test -x $(PEERS_VENV)/bin/pip || $(PYTHON) -m venv $(PEERS_VENV)
	$(PEERS_VENV)/bin/pip install 'lerobot==$(LEROBOT_VERSION)'
	$(PEERS_VENV)/bin/pip install -e . --no-deps
	$(PEERS_VENV)/bin/pip install $(PEERS_EXTRA)
	@touch $@

test-peers: $(PEERS_STAMP)
	HF_HUB_OFFLINE=1 $(PEERS_VENV)/bin/python -m pytest -q -m peers test/peers $(PYTEST_ARGS)

lint: $(STAMP)
	$(PY) -m ruff check --config ruff.toml .

demo: $(STAMP)
	$(PY) -m actjepa_ros.tools.demo --checkpoint $(DEMO_POLICY) --task $(DEMO_TASK) \
	  --episodes $(DEMO_EPISODES) --seed $(DEMO_SEED) --out $(DEMO_OUT) --interface $(DEMO_INTERFACE)

demo-train: $(STAMP)
	rm -rf $(TRAIN_DEMO_DIR)
	$(PY) -m actjepa_core.cli collect --task $(TRAIN_DEMO_TASK) --episodes $(TRAIN_DEMO_EPISODES) \
	  --out $(TRAIN_DEMO_DIR)/demos.hdf5 --seed 0
	$(PY) -m actjepa_core.cli train --data $(TRAIN_DEMO_DIR)/demos.hdf5 --config config/train.yaml \
	  --out $(TRAIN_DEMO_DIR)/model --steps $(TRAIN_DEMO_STEPS)
	$(PY) -m actjepa_core.cli report $(TRAIN_DEMO_DIR)/model --data $(TRAIN_DEMO_DIR)/demos.hdf5

bench: $(STAMP)
	$(PY) -m actjepa_core.cli bench train --out $(BENCH_OUT)

# colcon build of a copy of the package (the files git would commit: tracked + untracked, not
# ignored) in $(COLCON_WS); then check that package.xml, the node executables, the python
# packages and every file of launch/ config/ models/ were installed.
colcon: $(STAMP)
	rm -rf $(COLCON_WS)
	mkdir -p $(COLCON_WS)/src/actjepa_ros
	@if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then \
	  git ls-files -z --cached --others --exclude-standard \
	    | tar --null --ignore-failed-read -T - -cf - 2>/dev/null; \
	else \
	  tar --exclude=./.git --exclude=./$(VENV) --exclude=./build --exclude=./install \
	      --exclude=./log --exclude=./runs --exclude='*.egg-info' --exclude=__pycache__ -cf - .; \
	fi | tar -C $(COLCON_WS)/src/actjepa_ros -xf -
	cd $(COLCON_WS) && COLCON_HOME="$$PWD/.colcon" $(COLCON_BIN) --log-base log \
	  build --base-paths src --build-base build --install-base install
	@test -f $(COLCON_SHARE)/package.xml || { echo "missing: share/actjepa_ros/package.xml"; exit 1; }
	@test -f $(COLCON_WS)/install/actjepa_ros/share/ament_index/resource_index/packages/actjepa_ros \
	  || { echo "missing: ament index marker"; exit 1; }
	@for exe in actjepa policy_node sim_node recorder_node; do \
	  test -x $(COLCON_WS)/install/actjepa_ros/lib/actjepa_ros/$$exe \
	    || { echo "missing: lib/actjepa_ros/$$exe"; exit 1; }; \
	done
	@for pkg in actjepa_core actjepa_ros; do \
	  ls -d $(COLCON_WS)/install/actjepa_ros/lib/python3*/site-packages/$$pkg >/dev/null 2>&1 \
	    || { echo "missing: site-packages/$$pkg"; exit 1; }; \
	done
	@cd $(COLCON_WS)/src/actjepa_ros && for f in $$(find launch config models -type f ! -name '.*' 2>/dev/null); do \
	  test -f "$(abspath $(COLCON_SHARE))/$$f" || { echo "missing: share/actjepa_ros/$$f"; exit 1; }; \
	done
	@echo "colcon build OK: $(COLCON_WS)/install (source $(COLCON_WS)/install/setup.bash)"

# ---------------------------------------------------------------------------------------------

clean:
	rm -rf build install log .pytest_cache .hypothesis *.egg-info
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
