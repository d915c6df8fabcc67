"""CLI commands of the training group: train, evaluate, runs, summary."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from engine.commands.common import cancel_on_interrupt, human_sink, json_event_sink, print_json, say

STRATEGY_CHOICES = ("scratch", "features", "features-augmented", "finetune")


# --------------------------------------------------------------------------- train
def _cmd_train(args: argparse.Namespace) -> int:
    from engine.train.config import TrainConfig  # noqa: PLC0415
    from engine.train.strategies import resume, train  # noqa: PLC0415

    sink = json_event_sink if args.json_events else human_sink
    with cancel_on_interrupt() as token:
        if args.resume and (args.cluster or args.tf_config):
            from engine.errors import InvalidSetting  # noqa: PLC0415

            raise InvalidSetting("--resume and --cluster cannot be combined",
                                 "restart the cluster's own command on every worker: it resumes by itself")
        if args.resume:
            result = resume(args.resume, sink, token)
        else:
            if not args.data:
                from engine.errors import InvalidSetting  # noqa: PLC0415

                raise InvalidSetting("no data folder given", "pass --data DATA (or --resume RUN_DIR)")
            settings: dict[str, Any] = {"data": args.data, "strategy": args.strategy}
            for name in ("base", "preset", "epochs", "batch_size", "image_size", "learning_rate", "seed",
                         "augment", "augmentation", "finetune_from", "recipe", "optimizer", "head_pooling", "patience",
                         "head_epochs", "head_from_run", "max_per_class", "runs_root", "distribute", "precision"):
                value = getattr(args, name, None)
                if value is not None:
                    settings[name] = value
            if args.out:
                settings["out"] = args.out
            if args.no_tensorboard:
                settings["tensorboard"] = False
            if args.cluster or args.tf_config:
                from engine.train.cluster import (  # noqa: PLC0415
                    ClusterTrainConfig, LostWorker, leave_after_lost_worker, train_cluster)
                from engine.train.cluster_spec import ClusterSpec  # noqa: PLC0415

                spec = (ClusterSpec.from_tf_config(args.tf_config) if args.tf_config
                        else ClusterSpec.parse(args.cluster, args.task))
                try:
                    result = train_cluster(ClusterTrainConfig(TrainConfig(**settings), spec), sink, token)
                except LostWorker as error:
                    leave_after_lost_worker(error)
            else:
                result = train(TrainConfig(**settings), sink, token)
    return 0 if result.status == "finished" else 130


def _add_train(subparsers) -> None:
    from engine.models.presets import OPTIMIZERS  # noqa: PLC0415 (no TensorFlow)

    p = subparsers.add_parser(
        "train", help="train an image classifier (one of the book's four strategies)",
        description="Train a classifier on a folder of class folders (or train/validation/test folders). "
                    "Strategies: " + "; ".join(f"{k}: {v}" for k, v in _strategy_help().items()),
    )
    p.add_argument("--data", metavar="DATA", help="dataset folder: one sub-folder per class, or train/validation/test")
    p.add_argument("--strategy", choices=STRATEGY_CHOICES, default="scratch", help="training strategy (default scratch)")
    p.add_argument("--base", metavar="NAME", help="pretrained base for features/features-augmented/finetune "
                                                  "(default efficientnet-lite0; see `convscope bases`)")
    p.add_argument("--preset", metavar="NAME", help="from-scratch model: book-scratch (default) or mini-xception")
    p.add_argument("--epochs", type=int, metavar="N", help="maximum epochs (finetune: of the fine-tuning phase)")
    p.add_argument("--head-epochs", type=int, metavar="N", help="finetune: maximum epochs of the head phase")
    p.add_argument("--batch-size", type=int, metavar="N", help="images per batch (default 32)")
    p.add_argument("--image-size", type=int, metavar="S", help="input side in pixels (default: 150 for scratch, "
                                                               "the base's own size otherwise)")
    p.add_argument("--learning-rate", type=float, metavar="LR", help="learning rate (default: see --recipe)")
    p.add_argument("--optimizer", choices=OPTIMIZERS,
                   help="'rmsprop' (default, the book's, constant rate) or 'adam-cosine' (Adam, one epoch of "
                        "warm-up, then cosine decay over the epochs; finetune: of the fine-tuning phase)")
    p.add_argument("--recipe", choices=("default", "book"),
                   help="default learning rates: 'book' uses the book's (features head 2e-5), 'default' the ones "
                        "that converge in 30 epochs (features head 1e-3)")
    p.add_argument("--head-pooling", choices=("flatten", "avg"),
                   help="how base features reach the head: flatten (the book, default) or global average")
    aug = p.add_mutually_exclusive_group()
    aug.add_argument("--augment", dest="augment", action="store_true", default=None,
                     help="augment training images (a block inside the model, active only in training)")
    aug.add_argument("--no-augment", dest="augment", action="store_false", help="do not augment")
    p.add_argument("--augmentation", metavar="PRESET", help="augmentation preset: book, mild (default) or none")
    p.add_argument("--seed", type=int, metavar="N", help="random seed (default 0)")
    p.add_argument("--patience", type=int, metavar="N", help="early stopping patience in epochs (0 = off, default 5)")
    p.add_argument("--finetune-from", metavar="LAYER", help="finetune: first base layer to unfreeze "
                                                           "(default: the base's registry setting)")
    p.add_argument("--head-from-run", metavar="RUN_DIR", help="finetune: reuse the model of a finished "
                                                               "features-augmented run instead of training the head")
    p.add_argument("--max-per-class", type=int, metavar="N", help="use at most N images per class in each subset")
    p.add_argument("--out", metavar="RUN_DIR", help="run folder to create (default: a dated folder in the runs folder)")
    p.add_argument("--runs-root", metavar="DIR", help="where new run folders go (default: the user's runs folder)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run after its last finished epoch")
    p.add_argument("--distribute", choices=("default", "mirrored"),
                   help="mirrored: tf.distribute.MirroredStrategy over all GPUs (or logical CPUs)")
    p.add_argument("--precision", choices=("auto", "float32", "mixed_bfloat16", "mixed_float16"),
                   help="numeric precision (default float32); auto: bfloat16 on CPUs with AMX/AVX512-BF16, "
                        "float16 on GPUs with tensor cores, float32 elsewhere; the manifest records the choice")
    p.add_argument("--no-tensorboard", action="store_true", help="do not write TensorBoard logs")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--cluster", metavar="HOST:PORT,...", help="train on several machines "
                       "(MultiWorkerMirroredStrategy): every worker's address, the chief first; needs --task (without --out the "
                       "run folder is runs/cluster-<strategy>-<settings digest>, the same on every restart)")
    group.add_argument("--tf-config", metavar="FILE", help="the cluster and this task as a standard TF_CONFIG file")
    p.add_argument("--task", type=int, metavar="N", help="with --cluster: this machine's position in the list (0 = chief)")
    p.add_argument("--json-events", action="store_true", help="print one JSON event per line instead of progress text")
    p.set_defaults(func=_cmd_train)


def _strategy_help() -> dict[str, str]:
    from engine.train.config import STRATEGY_HELP  # noqa: PLC0415

    return STRATEGY_HELP


# --------------------------------------------------------------------------- evaluate
def _cmd_evaluate(args: argparse.Namespace) -> int:
    from engine.train.evaluate import evaluate  # noqa: PLC0415

    sink = (lambda e: None) if args.json else human_sink
    result = evaluate(args.run_dir, data=args.data, emit=sink)
    if args.json:
        data = result.to_dict()
        data.pop("predictions", None)
        print_json(data)
        return 0
    width = max(len(c) for c in result.classes)
    say(f"{result.count} images  accuracy {result.accuracy:.4f}  loss {result.loss:.4f}")
    say(f"{'class':<{width}}  precision  recall  f1      support")
    for name, row in result.per_class.items():
        say(f"{name:<{width}}  {row['precision']:.3f}      {row['recall']:.3f}   {row['f1']:.3f}   {row['support']}")
    say("confusion matrix (rows: true class, columns: predicted):")
    for name, row in zip(result.classes, result.confusion_matrix):
        say(f"  {name:<{width}}  " + "  ".join(f"{v:5d}" for v in row))
    say(f"{len(result.misclassified)} misclassified; details in {Path(result.run_dir) / 'metrics.json'}")
    return 0


def _add_evaluate(subparsers) -> None:
    p = subparsers.add_parser("evaluate", help="evaluate a run's best model on its test split and write metrics.json",
                              description="Evaluate a run's best model (else its last) on the run's test split, "
                                          "or on another folder with --data; writes metrics.json into the run.")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run folder written by `convscope train`")
    p.add_argument("--data", metavar="DATA", help="evaluate on this folder instead (its test/ folder if pre-split)")
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")
    p.set_defaults(func=_cmd_evaluate)


# --------------------------------------------------------------------------- runs
def _cmd_runs(args: argparse.Namespace) -> int:
    from engine.train.rundir import list_runs  # noqa: PLC0415

    runs = list_runs(args.root)
    if args.json:
        print_json([r.to_dict() for r in runs])
        return 0
    if not runs:
        say("no runs yet")
        return 0
    for r in runs:
        best = f"val_acc {r.best_val_accuracy:.3f}" if r.best_val_accuracy is not None else "val_acc -"
        test = f"test_acc {r.test_accuracy:.3f}" if r.test_accuracy is not None else "test_acc -"
        say(f"{r.name}  {r.strategy:<18} {r.model:<18} {r.status:<9} {r.epochs_done:>3}/{r.epochs:<3} {best}  {test}")
    return 0


def _add_runs(subparsers) -> None:
    p = subparsers.add_parser("runs", help="list training runs", description="List the run folders under a folder.")
    p.add_argument("--root", metavar="DIR", help="folder of run folders (default: the user's runs folder)")
    p.add_argument("--json", action="store_true", help="print the list as JSON")
    p.set_defaults(func=_cmd_runs)


# --------------------------------------------------------------------------- summary
def model_summary(model) -> dict[str, Any]:
    """Layers (nested models expanded), output shapes and parameter counts of a Keras model."""
    from engine.inspect.layers import list_layers  # noqa: PLC0415

    layers = [{"path": info.path, "class": info.class_name,
               "output_shape": list(info.output_shape) if info.output_shape is not None else None,
               "params": info.params, "depth": info.depth} for info in list_layers(model)]
    trainable = sum(int(w.numpy().size) for w in model.trainable_weights)
    total = int(model.count_params())
    return {"name": model.name, "layers": layers, "total_params": total, "trainable_params": trainable,
            "non_trainable_params": total - trainable}


def _cmd_summary(args: argparse.Namespace) -> int:
    from engine.errors import InvalidSetting  # noqa: PLC0415

    if args.model and args.preset:
        raise InvalidSetting("give either MODEL or --preset, not both", "see `convscope summary --help`")
    if args.model:
        from engine.models.loading import load_model  # noqa: PLC0415

        model = load_model(args.model).model
    elif args.preset:
        from engine.models.presets import build_preset  # noqa: PLC0415

        if args.image_size is not None and args.image_size < 32:
            raise InvalidSetting(f"image size {args.image_size} is too small", "use at least 32")
        model = build_preset(args.preset, args.image_size or 150, args.classes)
    else:
        raise InvalidSetting("nothing to summarise", "give a MODEL (file, run folder, base name) or --preset NAME")
    summary = model_summary(model)
    if args.json:
        print_json(summary)
        return 0
    say(f"model {summary['name']}")
    say(f"{'layer':<44} {'class':<24} {'output shape':<22} {'params':>10}")
    for row in summary["layers"]:
        shape = "(" + ", ".join("None" if d is None else str(d) for d in row["output_shape"]) + ")" \
            if row["output_shape"] is not None else "-"
        say(f"{'  ' * row['depth'] + row['path']:<44} {row['class']:<24} {shape:<22} {row['params']:>10,}")
    say(f"total parameters {summary['total_params']:,}  trainable {summary['trainable_params']:,}  "
        f"non-trainable {summary['non_trainable_params']:,}")
    return 0


def _add_summary(subparsers) -> None:
    p = subparsers.add_parser("summary", help="layers, output shapes and parameter counts of a model",
                              description="Summarise a model: a .keras file, a run folder or a base name, "
                                          "or a preset built for an image size and a number of classes.")
    p.add_argument("model", nargs="?", metavar="MODEL", help=".keras file, run folder or registry base name")
    p.add_argument("--preset", metavar="NAME", help="book-scratch or mini-xception")
    p.add_argument("--image-size", type=int, metavar="S", help="input side for --preset (default 150)")
    p.add_argument("--classes", type=int, default=2, metavar="N", help="number of classes for --preset (default 2)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=_cmd_summary)


def register(subparsers) -> None:
    _add_train(subparsers)
    _add_evaluate(subparsers)
    _add_runs(subparsers)
    _add_summary(subparsers)
