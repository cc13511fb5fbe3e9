"""Market-abuse surveillance over the engine event stream (MLX, with a NumPy twin).

columns.py   the hot-path observer: rows of ints in one growable array
detectors.py the five detectors, written once against ops.py (MLX or NumPy)
monitor.py   live: interval evaluation in a worker thread, alerts delivered once
batch.py     `fixgw surveil`: the same detectors over a stored engine journal
scenarios.py synthetic flow with planted patterns, for tests and the benchmark
"""
