# Sourced by the GPU-machine scripts (run.sh, run_tsne.sh): put the NVIDIA libraries of the
# machine's PyTorch environment (libcudart, libcublas, libnvrtc, ... 13) on LD_LIBRARY_PATH.
shopt -s nullglob
libdirs=""
for d in /opt/torch/.venv/lib/python3*/site-packages/nvidia/*/lib /opt/torch/.venv/lib/python3*/site-packages/nvidia/cu13/lib; do
  [ -d "$d" ] && libdirs="${libdirs:+$libdirs:}$d"
done
shopt -u nullglob
export LD_LIBRARY_PATH="${libdirs}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
