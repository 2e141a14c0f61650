# fifa-toolkit: `make install`, `make demo`, `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install system-deps demo test bench bench-segment bench-score bench-annotate bench-dlib68 bench-train bench-train-gpu bench-import clean

install: $(STAMP)

# torch==2.13.0 first: a plain `torch` requirement would pull a multi-GB CUDA build.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[test,train,ray,dlib]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m fifa.demo --out demo_out

# the system packages the tests drive (Debian: chromium, postgresql): installed when missing and possible,
# else the one command to run is printed and make stops
system-deps:
	scripts/install_system_deps.sh

test: $(STAMP) system-deps
	$(BIN)/python -m pytest -n 2 tests

# every benchmark on generated data, one table of figures and ratios against baselines of the same run
# (about 30 min on 2 cores; `scripts/bench_all.py --quick` for a smoke run): bench_out/all/bench.{md,json}
bench: $(STAMP)
	$(BIN)/python scripts/bench_all.py

bench-segment: $(STAMP)
	$(BIN)/python scripts/bench_segment.py

clean:
	rm -rf demo_out .pytest_cache

bench-score: $(STAMP)
	$(BIN)/python scripts/bench_score.py

# the speed targets (about 4 min); `scripts/bench_annotate.py all` adds accuracy and the 20k-row memory run
bench-annotate: $(STAMP)
	$(BIN)/python scripts/bench_annotate.py offline --rows 2000
	$(BIN)/python scripts/bench_annotate.py openai

# FF++ import speed (frames sampled + face-cropped per second, 1 vs 2 workers; about 3 min)
bench-import: $(STAMP)
	$(BIN)/python scripts/bench_import.py

# dlib68 vs MediaPipe on held-out faces (cross-validated calibration), noise ceiling, speed (about 10 min)
bench-dlib68: $(STAMP)
	$(BIN)/python scripts/bench_dlib68.py

# fifa-train: learning on forged lfw faces vs trivial baselines, speed vs a plain HF Trainer (long: run with nice)
bench-train: $(STAMP)
	nice -n 5 $(BIN)/python scripts/bench_train.py --work bench_train_out

# fifa-train on a GPU: each recipe on a full-size base made from the published files (random weights):
# speed and memory vs a plain Trainer + peft loop, eval + checkpoints + SIGKILL + resume, predict, score, DDP
bench-train-gpu: $(STAMP)
	bash scripts/bench_train_gpu.sh bench_out/train_gpu 200 qwen2-vl-2b llava-1.5-7b
