# The two quick-start commands: `make demo` and `make test`. Both set up a fresh machine first.
VENV ?= .venv
PY := $(VENV)/bin/python
MODEL ?= spectrogram

.PHONY: setup demo data train models wheel test test-all bench clean

setup:
	bash scripts/setup.sh

## Synthesize the corpus, train the default model, detect "welcome" in a synthesized demo recording.
demo: setup
	$(PY) scripts/demo.py model=$(MODEL) experiment=quick

data: setup
	$(PY) scripts/make_data.py

train: setup
	$(PY) train.py model=$(MODEL)

## Reproduce the shipped weights (~60-90 min on 2 cores): the cross-engine folds (train without each engine,
## score its voices) give the threshold; the spectrogram model trains on every engine and ships at that threshold
## after one round of mined hard negatives (temperature folded in); conv1d trains on every engine and is calibrated on validation streams.
## Writes src/audioconv/weights/ (.safetensors, .onnx, .stream.onnx).
models: setup
	$(PY) scripts/cross_engine.py --out runs/cross_engine --count 6 --minutes 10 -- trainer.max_epochs=12
	$(PY) train.py model=spectrogram trainer.max_epochs=16 hydra.run.dir=outputs/spectrogram/ship
	$(PY) scripts/mine_negatives.py --out data/mined --checkpoint outputs/spectrogram/ship/checkpoints/best.ckpt --threshold 0.1 --hours 2
	$(PY) train.py model=spectrogram trainer.max_epochs=16 data.user_folder=data/mined hydra.run.dir=outputs/spectrogram/mined
	$(PY) scripts/ship_model.py --checkpoint outputs/spectrogram/mined/checkpoints/best.ckpt --name spectrogram --from-cross-engine runs/cross_engine/cross_engine.json
	$(PY) train.py model=conv1d hydra.run.dir=outputs/conv1d/ship
	$(PY) scripts/ship_model.py --checkpoint outputs/conv1d/ship/checkpoints/best.ckpt --name conv1d

## The runtime wheel (ONNX detection and the Python API, no torch; shipped weights inside): dist/audioconv-*.whl
wheel: setup
	$(PY) -m pip wheel --no-deps --no-build-isolation -w dist .

## The default test suite (what CI runs): under 10 minutes on 2 cores.
test: setup
	$(PY) -m pytest -q

## Everything, the slow trainings included.
test-all: setup
	$(PY) -m pytest -q -m "slow or not slow"

bench: setup
	$(PY) benchmarks/scan_speed.py

clean:
	rm -rf outputs multirun lightning_logs
