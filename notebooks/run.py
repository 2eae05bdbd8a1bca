#!/usr/bin/env python3
"""Execute the seed notebooks headless with the evcxr Jupyter kernel and check them.

    python notebooks/run.py [NOTEBOOK ...] [--check] [--timeout S]

For each notebook (default: notebooks/0*.ipynb) every cell runs in order in one `rust` kernel.
The run fails when
  * a cell raises an error (a compile error is a Jupyter error), or writes anything to stderr:
    evcxr reports a `?` error only as its message on the cell's stderr, with no marker, and a
    panic (the notebooks' panic hook exits the kernel) the same way. The kernel runs with
    NEUROSCOPE_QUIET=1, so progress bars, the only other stderr writers, stay silent; or
  * a cell tagged `figure` produced no `image/svg+xml`, `image/png` or `text/html` output.
evcxr forwards the kernel's stdout/stderr on a thread of its own, tagged with the request that is
current when a line arrives, so a line written at the end of a cell can reach Jupyter after the
cell's reply, where nbclient drops it (it only listens for the running cell's messages). The
runner therefore logs every IOPub message itself and checks the stderr of each cell by the
request it is tagged with, whenever it came; a last, hidden cell that only waits (FLUSH_CELL,
never written back) gives the notebook's last cell time to deliver what it wrote late.
The executed notebook, outputs included, is written back in place (so a reader sees the figures
without running anything). With --check nothing is written: the figures of the fresh run must
be byte-identical to the committed ones (same seeds, same figures).

The kernel's build folder is shared between notebooks (EVCXR_TMPDIR, default
target/evcxr-build): the first notebook compiles neuroscope and its dependencies, the others
reuse that build. Per-cell times go to stdout.
"""
import argparse, copy, glob, os, sys, time

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from nbclient.util import ensure_async

HERE = os.path.dirname(os.path.abspath(__file__))
FIGURE_MIMES = ("image/svg+xml", "image/png", "text/html")
FLUSH_CELL = "std::thread::sleep(std::time::Duration::from_millis(1500));"


def problems(nb, stderr_of=None):
    """What went wrong in an executed notebook, as messages (empty when all is well).

    `stderr_of` maps a cell's index to all the stderr text the kernel tagged with its request,
    including what arrived after the cell's reply (see the module's doc)."""
    found = []
    stderr_of = stderr_of or {}
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        first = cell.source.strip().splitlines()[0][:60] if cell.source.strip() else ""
        where = f"cell {i} ({first!r})"
        if cell.metadata.get("flush"):
            where = "the runner's last, waiting cell"
        mimes = set()
        for out in cell.get("outputs", []):
            kind = out.get("output_type")
            if kind == "error":
                found.append(f"{where}: {out.get('ename')}: {out.get('evalue')}")
            elif kind in ("display_data", "execute_result"):
                mimes.update(out.get("data", {}).keys())
        stderr = stderr_of.get(i) or "".join(
            o.get("text", "") for o in cell.get("outputs", [])
            if o.get("output_type") == "stream" and o.get("name") == "stderr")
        if stderr.strip():
            found.append(f"{where}: stderr says:\n{stderr[-1500:]}")
        if "figure" in cell.metadata.get("tags", []) and not mimes.intersection(FIGURE_MIMES):
            found.append(f"{where}: a figure cell without an image/svg+xml, image/png or text/html output")
    return found


def log_stderr(client):
    """Log every stderr line the kernel sends, by the cell whose request it is tagged with.

    Returns the dict (cell index -> text) that fills as the notebook runs. The kernel client's
    `execute` and its IOPub `get_msg` are wrapped once the client exists (on_notebook_start)."""
    stderr_of, cell_of, current = {}, {}, [None]

    def on_cell_execute(cell, cell_index, **_):
        current[0] = cell_index

    def on_notebook_start(**_):
        kc = client.kc
        execute, get_msg = kc.execute, kc.iopub_channel.get_msg

        async def logged_execute(*args, **kwargs):
            msg_id = await ensure_async(execute(*args, **kwargs))
            cell_of[msg_id] = current[0]
            return msg_id

        async def logged_get_msg(*args, **kwargs):
            msg = await ensure_async(get_msg(*args, **kwargs))
            content = msg.get("content", {})
            if msg.get("msg_type") == "stream" and content.get("name") == "stderr":
                i = cell_of.get(msg.get("parent_header", {}).get("msg_id"))
                if i is not None:
                    stderr_of[i] = stderr_of.get(i, "") + content.get("text", "")
            return msg

        kc.execute, kc.iopub_channel.get_msg = logged_execute, logged_get_msg

    client.on_notebook_start, client.on_cell_execute = on_notebook_start, on_cell_execute
    return stderr_of


def figures(nb):
    """The figure outputs (SVG and PNG) of every cell, for --check."""
    out = {}
    for i, cell in enumerate(nb.cells):
        for o in cell.get("outputs", []):
            for mime in ("image/svg+xml", "image/png"):
                if mime in o.get("data", {}):
                    data = o["data"][mime]
                    out[(i, mime)] = "".join(data) if isinstance(data, list) else data
    return out


def run(path, timeout, check):
    original = nbformat.read(path, as_version=4)
    nb = copy.deepcopy(original)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    flush = nbformat.v4.new_code_cell(FLUSH_CELL)
    flush.metadata["flush"] = True
    nb.cells.append(flush)
    t0 = time.time()
    client = NotebookClient(nb, timeout=timeout, kernel_name="rust", allow_errors=True,
                            record_timing=True, resources={"metadata": {"path": HERE}})
    stderr_of = log_stderr(client)
    try:
        client.execute()
    except CellExecutionError as e:  # allow_errors=True keeps going; this is a kernel death
        return [f"kernel failed: {e}"], time.time() - t0
    except Exception as e:  # a dead kernel (std::process::exit from the panic hook) or a timeout
        found = problems(nb, stderr_of) or [f"{type(e).__name__}: {e}"]
        return found, time.time() - t0
    elapsed = time.time() - t0
    found = problems(nb, stderr_of)
    nb.cells = [c for c in nb.cells if not c.metadata.get("flush")]
    for i, cell in enumerate(nb.cells):
        ex = cell.metadata.get("execution", {})
        if "iopub.execute_input" in ex and "shell.execute_reply" in ex:
            from datetime import datetime
            a = datetime.fromisoformat(ex["iopub.execute_input"].replace("Z", "+00:00"))
            b = datetime.fromisoformat(ex["shell.execute_reply"].replace("Z", "+00:00"))
            print(f"  cell {i:2d}: {(b - a).total_seconds():7.1f} s", flush=True)
    if check and not found:
        want, got = figures(original), figures(nb)
        if not want:
            found.append("the committed notebook has no figures to compare: run without --check first")
        for key in sorted(set(want) | set(got)):
            if want.get(key) != got.get(key):
                found.append(f"cell {key[0]}: {key[1]} differs from the committed output")
    if not check and not found:
        nbformat.write(nb, path)
    elif found:
        # Kept for inspection, outside the repository.
        failed = os.path.join(os.environ.get("TMPDIR", "/tmp"), os.path.basename(path).replace(".ipynb", ".failed.ipynb"))
        nbformat.write(nb, failed)
        found.append(f"the executed notebook, outputs included, is in {failed}")
    return found, elapsed


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("notebooks", nargs="*")
    ap.add_argument("--check", action="store_true", help="compare figures with the committed outputs; write nothing")
    ap.add_argument("--timeout", type=int, default=1800, help="seconds per cell (default 1800)")
    args = ap.parse_args()
    paths = args.notebooks or sorted(glob.glob(os.path.join(HERE, "0*.ipynb")))
    os.environ["NEUROSCOPE_QUIET"] = "1"
    os.environ.setdefault("EVCXR_TMPDIR", os.path.join(HERE, "..", "target", "evcxr-build"))
    os.makedirs(os.environ["EVCXR_TMPDIR"], exist_ok=True)
    failed = 0
    for p in paths:
        print(f"== {os.path.basename(p)}", flush=True)
        found, secs = run(p, args.timeout, args.check)
        if found:
            failed += 1
            print(f"FAILED after {secs:.0f} s:", flush=True)
            for f in found:
                print("  - " + f.replace("\n", "\n    "), flush=True)
        else:
            print(f"ok in {secs:.0f} s" + ("" if args.check else " (outputs written back)"), flush=True)
    if failed:
        print(f"{failed} of {len(paths)} notebooks failed")
        sys.exit(1)


if __name__ == "__main__":
    main()
