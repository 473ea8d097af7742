#!/usr/bin/env bash
# On a machine with a real NVIDIA GPU: record what nvidia-smi answers to the commands the gpu_facts module
# runs as a new fixture, run the module against the real nvidia-smi, and run the VRAM fit check for the example
# catalog's vLLM models on the recorded GPU 0. Exits non-zero only when there is no nvidia-smi.
#
#   scripts/gpu-check.sh [fixture dir]      (default tests/fixtures/nvidia_smi/recorded-<short hostname>)
#
#   ANSIBLE_PKG_DIR    a directory holding a copied `ansible` package, used when python3 cannot import one
#   GPU_CHECK_HOLD_GIB hold that many GiB on GPU 0 (python3 with torch) while recording, so that the
#                      compute-apps query shows a process (default 0)
#   OUT                also leave the fixture as fixture.tar and this output as gpu-check.log there
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
if [ -n "${OUT:-}" ] && [ -z "${GPU_CHECK_LOGGING:-}" ]; then
  GPU_CHECK_LOGGING=1 "$0" "$@" 2>&1 | tee "$OUT/gpu-check.log"
  exit "${PIPESTATUS[0]}"
fi
dest=${1:-$top/tests/fixtures/nvidia_smi/recorded-$(hostname -s)}
utils=$top/plugins/module_utils
work=$(mktemp -d)
holder=
cleanup() {
  if [ -n "$holder" ]; then kill "$holder" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

if ! smi=$(command -v nvidia-smi); then
  echo "gpu-check: nvidia-smi not found: install the NVIDIA driver" >&2
  exit 1
fi

# Optionally hold memory on GPU 0, so that a process shows in the recording.
if [ "${GPU_CHECK_HOLD_GIB:-0}" != 0 ]; then
  python3 -c 'import sys, time, torch
held = torch.ones(int(float(sys.argv[1]) * 2**30), dtype=torch.uint8, device="cuda:0")
torch.cuda.synchronize()
print("holding", held.numel() >> 30, "GiB", flush=True)
time.sleep(300)' "$GPU_CHECK_HOLD_GIB" >"$work/hold.log" 2>&1 &
  holder=$!
  for _ in $(seq 60); do
    if grep -q holding "$work/hold.log" || ! kill -0 "$holder" 2>/dev/null; then break; fi
    sleep 1
  done
  echo "== holding memory on GPU 0 (pid $holder): $(tail -n 1 "$work/hold.log")"
fi

# (a) Record each command the module runs: stdout, stderr when there is some, the exit status when not 0.
echo "== recording $smi into $dest"
mkdir -p "$dest"
while read -r name file args; do
  read -r -a argv <<<"$args"
  rm -f "$dest/$name.rc" "$dest/$name.stderr"
  rc=0
  "$smi" "${argv[@]}" >"$dest/$file" 2>"$dest/$name.stderr" || rc=$?
  if [ "$rc" -ne 0 ]; then echo "$rc" >"$dest/$name.rc"; fi
  if [ ! -s "$dest/$name.stderr" ]; then rm -f "$dest/$name.stderr"; fi
  echo "-- nvidia-smi ${argv[*]} (exit $rc)"
  cat "$dest/$file"
done < <(python3 - "$utils" <<'EOF'
import sys

sys.path.insert(0, sys.argv[1])
import _nvidia_smi as smi

for name, args in smi.COMMANDS.items():
    print(name, smi.FIXTURE_FILES[name], *args)
EOF
)
if [ -n "$holder" ]; then
  kill "$holder" 2>/dev/null || true
  wait "$holder" 2>/dev/null || true
  holder=
fi
if [ -n "${OUT:-}" ]; then tar -C "$(dirname "$dest")" -cf "$OUT/fixture.tar" "$(basename "$dest")"; fi

# (b) The module, run as Ansible runs it on a host: python3 <module> <args file>.
echo "== labai.llm_stack.gpu_facts against $smi"
mkdir -p "$work/collections/ansible_collections/labai"
ln -s "$top" "$work/collections/ansible_collections/labai/llm_stack"
pythonpath=$work/collections
if ! python3 -c 'import ansible' 2>/dev/null; then
  pythonpath=$pythonpath:${ANSIBLE_PKG_DIR:-}
  if [ -z "${ANSIBLE_PKG_DIR:-}" ]; then echo "python3 cannot import ansible: set ANSIBLE_PKG_DIR to a copy of it"; fi
fi
printf '{"ANSIBLE_MODULE_ARGS": {"nvidia_smi": "%s"}}\n' "$smi" >"$work/args.json"
(cd "$work" && PYTHONPATH=$pythonpath python3 "$top/plugins/modules/gpu_facts.py" args.json) || true
echo

# (c) The fit check of the example catalog's vLLM models (inventories/example/group_vars/all/catalog.yml, with
# the architecture of their config.json) on the recorded GPU 0.
echo "== VRAM fit on the recorded GPU 0"
cat >"$work/models.json" <<'EOF'
[
  {
    "name": "qwen-coder",
    "model": "Qwen/Qwen2.5-Coder-7B-Instruct-AWQ",
    "quantization": "awq",
    "max_model_len": 8192,
    "gpu_memory_utilization": 0.85,
    "max_num_seqs": 16,
    "config": {
      "hidden_size": 3584,
      "intermediate_size": 18944,
      "num_attention_heads": 28,
      "num_hidden_layers": 28,
      "num_key_value_heads": 4,
      "vocab_size": 152064,
      "tie_word_embeddings": false
    }
  }
]
EOF
python3 - "$utils" "$dest" "$work/models.json" "$(hostname -s)" <<'EOF' || true
import json
import sys
from pathlib import Path

sys.path.insert(0, sys.argv[1])
import _nvidia_smi as smi
import _vram as vram

fixture, models, host = Path(sys.argv[2]), json.loads(Path(sys.argv[3]).read_text()), sys.argv[4]
if (fixture / "query-gpu.rc").exists():
    sys.exit(f"no GPU recorded: {(fixture / 'query-gpu.csv').read_text().strip()}")
gpu = smi.parse_gpus((fixture / "query-gpu.csv").read_text())[0]
if not (fixture / "query-compute-apps.rc").exists():
    smi.attach_processes([gpu], smi.parse_compute_apps((fixture / "query-compute-apps.csv").read_text()))
for model in models:
    est = vram.estimate(
        max_model_len=model["max_model_len"],
        max_num_seqs=model["max_num_seqs"],
        quantization=model["quantization"],
        arch=vram.architecture(model["config"]),
    )
    result = vram.fit(gpu, [{**model, "estimate": est}], host)
    share = model["gpu_memory_utilization"]
    total = gpu["memory_total_mib"] * vram.MIB
    verdict = "; ".join(p["msg"] for p in result["problems"]) or "fits"
    print(
        f"{model['name']}: {vram.short_name(model['model'])} needs about {vram.about_gb(est['to_start'])} GB to "
        f"start (weights {vram.gb(est['weights'])}, KV cache {vram.gb(est['kv_cache_per_sequence'])} per sequence "
        f"of {est['max_model_len']} tokens, overhead {vram.gb(est['overhead'])}), "
        f"{vram.about_gb(est['at_full_batch'])} GB with {est['max_num_seqs']} sequences; GPU {gpu['index']} "
        f"{gpu['name']} has {vram.gb(total)} GB, {vram.gb(total * share)} GB usable at gpu_memory_utilization "
        f"{share:g}, {vram.gb(result['free_bytes'])} GB free: {verdict}"
    )
    for warning in result["warnings"]:
        print(f"  warning: {warning['msg']}")
EOF
