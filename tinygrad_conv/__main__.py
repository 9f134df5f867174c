"""Command line: ``python -m tinygrad_conv {draw,explain,lab,explore} ...``.

``draw``: draw the training graph of an example model without training it::

    python -m tinygrad_conv draw examples/train_cnn.py --out cnn.svg

The example file (or importable module) must define

* ``build_model(seed) -> nn.Module``
* ``example_batch(batch_size) -> (x, y)`` (arrays or Tensors; ``x`` is the model's input)
* optionally ``loss_fn(logits, y) -> Tensor`` (default: ``tc.cross_entropy``).

It is imported under a private name, so its ``if __name__ == "__main__":`` block does not run.
One forward pass and (unless ``--forward-only``) one ``backward(retain_graph=True)`` are made, so
the drawing shows the parameters' gradients and what each op's backward called; no optimizer step.

``explain``: the conv gradients as plain conv2d's on a small example (see ``tc.explain_conv``)::

    python -m tinygrad_conv explain --x-shape 1,5,5,1 --w-shape 3,3,1,1 --strides 2 \\
        --padding SAME --out explain.svg

prints the steps as text and writes the drawing.

``lab``: the conv lab (see ``tc.conv_lab``): one offline HTML page animating conv1d / conv2d /
conv3d (the rank of ``--x-shape``), its input gradient (scatter and gather views) and its filter
gradient, plus the shape oracle::

    python -m tinygrad_conv lab --x-shape 1,5,5,1 --w-shape 3,3,1,1 --strides 2 \\
        --padding SAME --out lab.html
    python -m tinygrad_conv lab --x-shape 1,7,1 --w-shape 3,1,1 --strides 2 --out lab1d.html
    python -m tinygrad_conv lab --x-shape 1,4,4,4,1 --w-shape 2,2,2,1,1 --out lab3d.html

prints the shape oracle and the checks; ``--gif`` / ``--svg`` also write one animation for slides.

``explore``: the backprop explorer (see ``tc.explore``): one backward pass of an example model
(loaded as for ``draw``) recorded and written as one offline HTML page to step through::

    python -m tinygrad_conv explore examples/train_cnn.py --out backprop.html [--labs]

``--labs`` also writes the conv lab page of each conv2d geometry next to it (linked from the page).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

__all__ = ["main"]


class CLIError(Exception):
    """A user error: printed as ``error: ...`` with exit status 2."""


def _ints(text: str, what: str, n: int | tuple[int, ...]) -> tuple[int, ...]:
    parts = [p for p in text.replace("x", ",").replace(" ", ",").split(",") if p]
    try:
        vals = tuple(int(p) for p in parts)
    except ValueError:
        raise CLIError(f"{what} must be integers separated by commas, got {text!r}") from None
    allowed = (n,) if isinstance(n, int) else n
    if len(vals) not in allowed:
        raise CLIError(f"{what} must have {' or '.join(map(str, allowed))} values, got {text!r}")
    return vals


def _padding(text: str) -> Any:
    if text.upper() in ("SAME", "VALID"):
        return text.upper()
    t, b, left, r = _ints(text, "--padding (SAME, VALID or top,bottom,left,right)", 4)
    return [[t, b], [left, r]]


def _load_example(target: str) -> ModuleType:
    """Import a ``.py`` file (without running its ``__main__`` block) or a dotted module."""
    if target.endswith(".py") or "/" in target or "\\" in target:
        path = Path(target)
        if not path.is_file():
            raise CLIError(f"draw: no such file: {target}")
        spec = importlib.util.spec_from_file_location(f"_tinygrad_conv_draw_{path.stem}", path)
        if spec is None or spec.loader is None:
            raise CLIError(f"draw: cannot import {target}")
        module = importlib.util.module_from_spec(spec)
        # registered like any import: dataclasses (and pickling) look their module up by name
        sys.modules[spec.name] = module
        sys.path.insert(0, str(path.resolve().parent))
        try:
            spec.loader.exec_module(module)
        finally:
            sys.path.remove(str(path.resolve().parent))
        return module
    try:
        return importlib.import_module(target)
    except ImportError as e:
        raise CLIError(f"draw: cannot import module {target!r}: {e}") from None


def build_training_graph(
    module: ModuleType, seed: int = 0, batch_size: int = 4, backward: bool = True
) -> tuple[Any, Any]:
    """Build the example's model and loss on one batch: returns ``(model, loss)``.

    With ``backward``, runs ``loss.backward(retain_graph=True)`` (gradients, no optimizer step).
    """
    import tinygrad_conv as tc

    name = getattr(module, "__file__", None) or module.__name__
    for fn in ("build_model", "example_batch"):
        if not callable(getattr(module, fn, None)):
            raise CLIError(
                f"draw: {name} must define build_model(seed) -> nn.Module and "
                f"example_batch(batch_size) -> (x, y); {fn} is missing"
            )
    model = module.build_model(seed)
    batch = module.example_batch(batch_size)
    if not isinstance(batch, (tuple, list)) or len(batch) != 2:
        raise CLIError(f"draw: example_batch() must return (x, y), got {type(batch).__name__}")
    x, y = batch
    x = x if isinstance(x, tc.Tensor) else tc.tensor(x)
    loss_fn = getattr(module, "loss_fn", None) or tc.cross_entropy
    loss = loss_fn(model(x), y)
    if not isinstance(loss, tc.Tensor):
        raise CLIError(f"draw: the loss is {type(loss).__name__}, expected a Tensor")
    if backward:
        loss.backward(retain_graph=True)
    return model, loss


def _cmd_draw(args: argparse.Namespace) -> int:
    from tinygrad_conv.viz import dot_counts, draw_graph, save_graph

    module = _load_example(args.example)
    model, loss = build_training_graph(module, args.seed, args.batch_size, not args.forward_only)
    params = model.named_parameters() if hasattr(model, "named_parameters") else None
    collapse = None if args.collapse == "none" else args.collapse
    dot = draw_graph(
        loss,
        params=params,
        collapse=collapse,
        show_backward=args.show_backward,
        show_data=args.show_data,
        rankdir=args.rankdir,
    )
    path = save_graph(dot, args.out)
    n_nodes, n_edges = dot_counts(dot.source)
    print(f"wrote {path} ({n_nodes} nodes, {n_edges} edges); loss = {float(loss.item()):.6g}")
    return 0


def _cmd_explain(args: argparse.Namespace) -> int:
    from tinygrad_conv.explain import explain_conv

    x_shape = _ints(args.x_shape, "--x-shape", 4)
    w_shape = _ints(args.w_shape, "--w-shape", 4)
    strides = _ints(args.strides, "--strides", (1, 2))
    dilations = _ints(args.dilations, "--dilations", (1, 2))
    result = explain_conv(
        x_shape,
        w_shape,
        strides if len(strides) == 2 else strides[0],
        _padding(args.padding),
        dilations if len(dilations) == 2 else dilations[0],
        seed=args.seed,
        out=args.out or None,
        file=sys.stdout,
    )
    if args.out:
        print(f"wrote {args.out}")
    return 0 if all(result.checks.values()) else 1


def _lab_padding(text: str, rank: int) -> Any:
    """SAME, VALID or 2*rank ints (before,after per spatial axis) for ``lab``."""
    if text.upper() in ("SAME", "VALID"):
        return text.upper()
    what = {1: "left,right", 2: "top,bottom,left,right", 3: "front,back,top,bottom,left,right"}
    v = _ints(text, f"--padding (SAME, VALID or {what[rank]})", 2 * rank)
    return [list(v[i : i + 2]) for i in range(0, 2 * rank, 2)]


def _cmd_lab(args: argparse.Namespace) -> int:
    from tinygrad_conv.lab import conv_lab

    x_shape = _ints(args.x_shape, "--x-shape (3, 4 or 5 values: 1-D, 2-D or 3-D)", (3, 4, 5))
    rank = len(x_shape) - 2
    w_shape = _ints(args.w_shape, f"--w-shape (for a {rank}-D --x-shape)", rank + 2)
    strides = _ints(args.strides, "--strides", tuple(sorted({1, rank})))
    dilations = _ints(args.dilations, "--dilations", tuple(sorted({1, rank})))
    lab = conv_lab(
        x_shape,
        w_shape,
        strides if len(strides) == rank else strides[0],
        _lab_padding(args.padding, rank),
        dilations if len(dilations) == rank else dilations[0],
        seed=args.seed,
        data_format=args.data_format.upper() if args.data_format else None,
    )
    print(lab.text())
    if args.out:
        print(f"wrote {lab.save_html(args.out)}")
    anim = getattr(lab, args.animation)
    if args.gif:
        print(f"wrote {anim.save_gif(args.gif)}")
    if args.svg:
        print(f"wrote {anim.save_svg(args.svg)}")
    return 0 if all(lab.checks.values()) else 1


def _cmd_explore(args: argparse.Namespace) -> int:
    from tinygrad_conv.explore import MAX_VALUES, explore

    max_values = MAX_VALUES if args.max_values is None else args.max_values
    if max_values < 0:
        raise CLIError(f"explore: --max-values must be >= 0, got {max_values}")
    module = _load_example(args.example)
    model, loss = build_training_graph(module, args.seed, args.batch_size, backward=False)
    params = model.named_parameters() if hasattr(model, "named_parameters") else None
    ex = explore(loss, params=params, path=args.out, max_values=max_values, labs=args.labs)
    labs = sorted({op["lab"]["file"] for op in ex.data["ops"] if op.get("lab")})
    print(
        f"wrote {args.out} ({ex.nsteps} steps, {len(ex.data['ops'])} ops, "
        f"{ex.data['embedded']} numbers embedded); loss = {float(loss.item()):.6g}"
    )
    for note in ex.data["notes"]:
        print(f"note: {note}")
    if args.labs:
        for op in ex.data["ops"]:
            lab = op.get("lab")
            if lab and lab.get("refused") and lab["file"] in labs:
                print(f"conv lab {lab['file']} not written: {lab['refused']}")
                labs.remove(lab["file"])
        for name in labs:
            print(f"wrote {name} (conv lab)")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tinygrad_conv",
        description="Drawings of tinygrad_conv graphs and of the conv gradients.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    d = sub.add_parser(
        "draw",
        help="draw an example model's training graph (forward + backward, no training)",
        description="Draw the training graph of a file defining build_model(seed) and "
        "example_batch(batch_size) (optionally loss_fn(logits, y)).",
    )
    d.add_argument("example", help="a .py file such as examples/train_cnn.py, or a module name")
    d.add_argument("--out", default="graph.svg", help="output file: .svg .png .pdf .dot")
    d.add_argument("--seed", type=int, default=0, help="seed given to build_model")
    d.add_argument("--batch-size", type=int, default=4, help="given to example_batch")
    d.add_argument(
        "--collapse", choices=("module", "none"), default="module", help="group ops by module"
    )
    d.add_argument(
        "--show-backward",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="add what each op's backward calls",
    )
    d.add_argument("--show-data", action="store_true", help="add value summaries")
    d.add_argument("--forward-only", action="store_true", help="do not run backward")
    d.add_argument("--rankdir", default="TB", choices=("TB", "LR", "BT", "RL"))
    d.set_defaults(func=_cmd_draw)

    e = sub.add_parser(
        "explain",
        help="show conv2d's input and filter gradients as plain conv2d's on a small example",
    )
    e.add_argument("--x-shape", default="1,5,5,1", help="NHWC input shape, e.g. 1,5,5,1")
    e.add_argument("--w-shape", default="3,3,1,1", help="HWIO filter shape, e.g. 3,3,1,1")
    e.add_argument("--strides", default="2", help="s or sh,sw")
    e.add_argument("--padding", default="SAME", help="SAME, VALID or top,bottom,left,right")
    e.add_argument("--dilations", default="1", help="d or dh,dw")
    e.add_argument("--seed", type=int, default=0, help="seed of the example values")
    e.add_argument("--out", default="explain_conv.svg", help="drawing to write ('' for none)")
    e.set_defaults(func=_cmd_explain)

    lab = sub.add_parser(
        "lab",
        help="write the conv lab page: a 1-D, 2-D or 3-D conv and its gradients animated, and "
        "the shape oracle",
    )
    lab.add_argument(
        "--x-shape",
        default="1,5,5,1",
        help="input shape in --data-format order: 3 values (1-D, N,W,C), 4 (2-D) or 5 (3-D)",
    )
    lab.add_argument(
        "--w-shape", default="3,3,1,1", help="filter [*k, in, out]: 3,1,1 / 3,3,1,1 / 2,2,2,1,1"
    )
    lab.add_argument("--strides", default="1", help="s or one per spatial axis (sh,sw)")
    lab.add_argument(
        "--padding",
        default="VALID",
        help="SAME, VALID or before,after per spatial axis (2-D: top,bottom,left,right)",
    )
    lab.add_argument("--dilations", default="1", help="d or one per spatial axis (dh,dw)")
    formats = ("NWC", "NCW", "NHWC", "NCHW", "NDHWC", "NCDHW")
    lab.add_argument(
        "--data-format",
        default="",
        choices=("", *formats, *(f.lower() for f in formats)),
        help="default: channels last for the rank of --x-shape",
    )
    lab.add_argument("--seed", type=int, default=0, help="seed of the example values")
    lab.add_argument("--out", default="conv_lab.html", help="page to write ('' for none)")
    lab.add_argument(
        "--animation",
        default="input_grad",
        choices=("forward", "input_grad", "filter_grad"),
        help="the animation --gif / --svg write",
    )
    lab.add_argument("--gif", default="", help="also write that animation as a GIF")
    lab.add_argument("--svg", default="", help="also write that animation as an animated SVG")
    lab.set_defaults(func=_cmd_lab)

    x = sub.add_parser(
        "explore",
        help="write the backprop explorer page: step through one backward pass of an example",
        description="Run one backward pass of a file defining build_model(seed) and "
        "example_batch(batch_size) (optionally loss_fn(logits, y)) under record_backward and "
        "write one offline HTML page to step through it (see tc.explore).",
    )
    x.add_argument("example", help="a .py file such as examples/train_cnn.py, or a module name")
    x.add_argument("--out", default="backprop.html", help="page to write")
    x.add_argument("--seed", type=int, default=0, help="seed given to build_model")
    x.add_argument("--batch-size", type=int, default=4, help="given to example_batch")
    x.add_argument(
        "--max-values",
        type=int,
        default=None,
        help="most numbers embedded in the page (default tc.explore's MAX_VALUES)",
    )
    x.add_argument(
        "--labs", action="store_true", help="also write the conv lab page of each conv geometry"
    )
    x.set_defaults(func=_cmd_explore)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    from tinygrad_conv.viz import GraphvizNotFoundError

    try:
        return int(args.func(args))
    except CLIError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except (GraphvizNotFoundError, OSError, ValueError, TypeError, ImportError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
