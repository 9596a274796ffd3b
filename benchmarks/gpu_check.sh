#!/usr/bin/env bash
# GPU checks on a machine with CUDA: tests/test_cuda.py (it runs only there) and the training,
# generation and evaluation tests (where "auto" now picks the GPU), then,
# given CORPUS RUN MINUTES, a training run on the GPU. Wheels in .whl/ (packages the machine
# lacks, e.g. symusic and miditok) are installed first into /tmp/site.
#   bash benchmarks/gpu_check.sh                         # tests only
#   bash benchmarks/gpu_check.sh runs/bach-corpus $OUT/bach 5
set -uo pipefail
if compgen -G ".whl/*.whl" >/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
nvidia-smi -L
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())"
python3 -m pytest -q -p no:cacheprovider tests/test_cuda.py
status=$?
if [ $# -ge 3 ]; then
    python3 -m lstm_music train "$1" --out "$2" --max-minutes "$3" --device cuda -q --overwrite \
        || status=1
fi
timeout 120 python3 -m pytest -q -p no:cacheprovider tests/test_train.py tests/test_generate.py \
    tests/test_evaluate.py || status=1
exit $status
