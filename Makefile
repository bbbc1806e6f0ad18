# Two entry points (README): `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# sam2 is an sdist whose optional CUDA extension we never need (we use only the Hiera trunk).
export SAM2_BUILD_CUDA := 0

.PHONY: demo test venv clean gpu-wheels gpu-check

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q "setuptools>=68" wheel "torch>=2.5.1" "torchvision>=0.20.1"
	$(BIN)/pip install -q --no-build-isolation "sam2>=1.1.0"
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

demo: venv
	$(BIN)/sam2ms demo -o demo_run

test: venv
	$(BIN)/ruff check .
	$(BIN)/python tools/typecheck.py
	$(BIN)/python tools/lint_imports.py
	$(BIN)/python -m pytest -q

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
	rm -rf $(VENV) demo_run
