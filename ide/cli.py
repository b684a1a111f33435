"""`ide <verb>`: the command-line entry points. Each verb parses its flags and calls one package function.

Bad input raises `UserError` anywhere below; here it becomes one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ide.errors import UserError


def _add_config(p: argparse.ArgumentParser, required: bool = True) -> None:
    p.add_argument("--config", required=required, help="YAML config (configs/*.yaml)")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set data.root=PATH/CUFS (repeatable; YAML-parsed)",
    )


def _add_recognition(p: argparse.ArgumentParser) -> None:
    """The NLDA flags shared by `ide metrics` and `ide test --split`."""
    p.add_argument(
        "--recognition",
        action="store_true",
        help="also NLDA face recognition: artist's sketch (probe) vs synthesized (gallery), random id splits",
    )
    p.add_argument(
        "--nlda-train",
        type=int,
        help="ids that train the projection per split (default 300 from 944 ids, else 150)",
    )
    p.add_argument("--nlda-repeats", type=int, default=20, help="random splits (default 20)")
    p.add_argument("--nlda-seed", type=int, default=0, help="seed of the splits (default 0)")


def _recognition(args: argparse.Namespace):
    """NLDAOptions from the flags, or None without --recognition."""
    from ide.metrics.recognition import NLDAOptions

    return NLDAOptions(args.nlda_train, args.nlda_repeats, args.nlda_seed) if args.recognition else None


def _cfg(args: argparse.Namespace, training: bool = False):
    from ide.config import load_config

    return load_config(args.config, args.overrides, training=training)


def cmd_coarse(args: argparse.Namespace) -> int:
    cfg = _cfg(args)
    from ide.pgm.run import coarse_split

    coarse_split(cfg, split=args.split, out=Path(args.out))
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    cfg = _cfg(args, training=True)
    from ide.train import train

    train(cfg, resume=args.resume)
    return 0


def cmd_test(args: argparse.Namespace) -> int:
    from ide.inference import test_command

    if (args.split is None) == (args.photos is None):
        raise UserError(
            "ide test needs exactly one of --split (a dataset split) or --photos (a file or folder)"
        )
    return test_command(
        checkpoint=Path(args.checkpoint),
        out=Path(args.out),
        config=args.config,
        overrides=args.overrides,
        split=args.split,
        photos=None if args.photos is None else Path(args.photos),
        align=args.align,
        batch=args.batch,
        device=args.device,
        coarse_out=None if args.coarse_out is None else Path(args.coarse_out),
        json_path=None if args.json is None else Path(args.json),
        recognition=_recognition(args),
    )


def cmd_metrics(args: argparse.Namespace) -> int:
    from ide.metrics.folder import score_folders

    score_folders(
        pred=Path(args.pred),
        gt=Path(args.gt),
        json_path=args.json,
        csv_path=args.csv,
        allow_missing=args.allow_missing,
        device=args.device,
        recognition=_recognition(args),
    )
    return 0


def cmd_align(args: argparse.Namespace) -> int:
    from ide.data.align import LAYOUTS, align_path

    reference = None if args.reference is None else Path(args.reference)
    return align_path(Path(args.photos), Path(args.out), LAYOUTS[args.layout], reference)


def cmd_demo(args: argparse.Namespace) -> int:
    from ide.demo import run_demo

    run_demo(out=Path(args.out), config=args.config, overrides=args.overrides)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ide",
        description="Face photo-sketch synthesis via intra-domain enhancement: "
        "stage 1 (Markov weight fields) + stage 2 (MLA-GAN).",
    )
    from ide import __version__

    parser.add_argument("--version", action="version", version=f"ide {__version__}")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        metavar="N",
        help="CPU threads (default: $IDE_THREADS, else one per core not busy at start: all cores on "
        "an idle machine, fewer where other work runs, which is faster for both)",
    )
    sub = parser.add_subparsers(dest="verb", required=True, metavar="VERB")

    p = sub.add_parser("coarse", help="stage 1: coarse sketches of every photo of a split")
    _add_config(p)
    p.add_argument(
        "--split",
        required=True,
        choices=["train", "test"],
        help="which split; for train each photo's own pair is left out of the bank",
    )
    p.add_argument("--out", required=True, help="output folder for <id>.png (gray 8-bit)")
    p.set_defaults(func=cmd_coarse)

    p = sub.add_parser(
        "train", help="stage 2: train the MLA-GAN refiner (makes coarse sketches if not cached)"
    )
    _add_config(p)
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue from <log.dir>/<train.name>/checkpoints/last.pt; only the run length, logging, "
        "validation and save intervals, data/cache paths, device and precision may differ from the run",
    )
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("test", help="full pipeline photo → coarse → refined on a split or on any photos")
    _add_config(p, required=False)
    p.add_argument(
        "--checkpoint", required=True, help="a checkpoint written by ide train (best.pt or last.pt)"
    )
    p.add_argument("--split", choices=["train", "test"], help="run on this split of the config's data.root")
    p.add_argument("--photos", help="a photo file or a folder of photos (instead of --split)")
    p.add_argument("--align", action="store_true", help="detect face and eyes and align to 200x250 first")
    p.add_argument(
        "--out", required=True, help="output folder for <id>.png; OUT.grid.png and OUT.json go beside it"
    )
    p.add_argument("--coarse-out", help="also write the stage-1 coarse sketches <id>.png here")
    p.add_argument("--json", help="with --split: write the scores JSON here instead of OUT.json")
    p.add_argument("--batch", type=int, default=16, help="photos per batch (default 16)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda (default auto)")
    _add_recognition(p)
    p.set_defaults(func=cmd_test)

    p = sub.add_parser("metrics", help="FSIM / SSIM / PSNR of predicted sketches against ground truth")
    p.add_argument("--pred", required=True, help="folder of synthesized sketches <id>.<ext>")
    p.add_argument("--gt", required=True, help="folder of ground-truth sketches <id>.<ext>")
    p.add_argument("--json", help="write the summary and per-image scores as JSON here")
    p.add_argument("--csv", help="write one row per image as CSV here")
    p.add_argument(
        "--allow-missing",
        action="store_true",
        help="score the ids present in both folders instead of failing on the others",
    )
    p.add_argument("--device", default="cpu", help="cpu | cuda (default cpu)")
    _add_recognition(p)
    p.set_defaults(func=cmd_metrics)

    p = sub.add_parser("align", help="detect face and eyes, warp photos to the aligned 200x250 layout")
    p.add_argument("--photos", required=True, help="a photo file or a folder of photos")
    p.add_argument("--out", required=True, help="output folder for aligned <id>.png")
    p.add_argument(
        "--layout",
        choices=["cufs", "cufsf"],
        default="cufs",
        help="eye positions to align to: cufs (75,125)/(127,125) or cufsf (62,112)/(137,112)",
    )
    p.add_argument(
        "--reference",
        help="a folder of photos already aligned to --layout (e.g. the training photos): their mean "
        "face refines the detected eyes",
    )
    p.set_defaults(func=cmd_align)

    p = sub.add_parser("demo", help="synthetic faces end to end: stage 1, stage 2, metrics, report")
    _add_config(p, required=False)
    p.add_argument("--out", default="demo_out", help="output folder (default demo_out)")
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        from ide.threads import set_threads

        set_threads(args.threads)
        return int(args.func(args) or 0)
    except UserError as err:
        print(f"ide {args.verb}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"ide {args.verb}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
