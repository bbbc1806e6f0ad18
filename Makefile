# Entry points (README): `make demo`, `make check` (everything CI runs) and `make test` (the
# contributor's loop: the same without the tests marked slow). All create .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# pytest-xdist workers for make test (the CI machine has 2 cores)
TEST_WORKERS ?= 2
# sam2 is an sdist whose optional CUDA extension we never need (we use only the Hiera trunk).
export SAM2_BUILD_CUDA := 0

.PHONY: demo lint test check test-core triton-venv venv clean gpu-wheels gpu-check

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q "setuptools>=68" wheel "torch>=2.5.1" "torchvision>=0.20.1"
	$(BIN)/pip install -q --no-build-isolation "sam2>=1.1.0"
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

demo: venv
	$(BIN)/sam2ms demo -o demo_run

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python tools/typecheck.py
	$(BIN)/python tools/lint_imports.py

test: lint triton-venv
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) -m "not slow"

check: lint test-core triton-venv
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS)

# The Triton server the tests start (tests/triton_server.py): nvidia-pytriton's bundled tritonserver,
# in a venv of its own because pytriton 0.7.0 pins numpy < 2 (the client, [triton], is in .venv).
TRITON_VENV := .venv-triton
triton-venv: $(TRITON_VENV)/.installed

$(TRITON_VENV)/.installed:
	$(PYTHON) -m venv $(TRITON_VENV)
	$(TRITON_VENV)/bin/pip install -q "nvidia-pytriton==0.7.0" onnxruntime
	touch $@

# A deployment host's install (the core and ONNX Runtime, no torch) running the tests marked `core`;
# onnx builds their tiny test models, pytest and hypothesis run them.
CORE_VENV := .venv-core
test-core:
	$(PYTHON) -m venv $(CORE_VENV)
	$(CORE_VENV)/bin/pip install -q -e '.[cpu]' pytest hypothesis onnx
	$(CORE_VENV)/bin/python -c "import importlib.util as u; assert u.find_spec('torch') is None, 'torch is installed'"
	$(CORE_VENV)/bin/python -m pytest -q -m core -p no:cacheprovider

# A session with a lent GPU: `make gpu-wheels` here (it has the package index), then on the GPU
# machine, carrying .whl: `make gpu-check` (benchmarks/gpu_check.py; results in $$OUT or gpu_check_out/;
# GPU_BUDGET_S, default 540, stops starting steps so that one 10-minute device command holds it all).
gpu-wheels: venv
	rm -rf .whl && mkdir -p .whl
	$(PYTHON) -m pip download -q --no-deps -d .whl/sdist "sam2==1.1.0" "antlr4-python3-runtime==4.9.3" "iopath>=0.1.10"
	# built here (the venv has torch, which sam2's setup imports) into pure-Python wheels: the GPU machine builds nothing
	$(BIN)/pip wheel -q --no-deps --no-build-isolation -w .whl .whl/sdist/* && rm -rf .whl/sdist
	$(PYTHON) -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 -d .whl "hydra-core>=1.3.2" \
		"omegaconf>=2.3" "onnxslim>=0.1.40" "openvino>=2025.4" openvino-telemetry  # openvino: the host CPU's BF16 rows

gpu-check:
	SAM2_BUILD_CUDA=0 python3 benchmarks/gpu_check.py --out $${OUT:-gpu_check_out} --budget-s $${GPU_BUDGET_S:-540}

clean:
	rm -rf $(VENV) $(CORE_VENV) $(TRITON_VENV) demo_run .typecheck
