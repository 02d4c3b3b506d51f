"""Tooling for a lent GPU machine that has PyTorch but no MediaPipe: ``gpu_check.sh`` (CUDA tests and
benchmarks) and ``gpu_run`` (record landmarks here, train there, bring the model back)."""
