"""Entry points for the data-parallel tests, run by ``paddle.distributed.spawn`` (importable by the children)."""
from pathlib import Path


def configs(root: Path, data_dir: Path, pretrained: Path):
    from paddle_dynafast.config import (BranchConfig, DataConfig, FinetuneConfig, SelfDistillConfig, SupernetConfig,
                                        TrainConfig)

    data = DataConfig(data_dir=str(data_dir), max_seq_len=16)
    train = TrainConfig(epochs=1, batch_size=16, eval_batch_size=16, lr=2e-3, seed=5, max_steps=3, warmup_ratio=0.0)
    return (FinetuneConfig(output_dir=str(root / "teacher"), model_dir=str(pretrained), data=data, train=train),
            SupernetConfig(output_dir=str(root / "supernet"), teacher_dir=str(root / "teacher"), data=data,
                           train=train, importance_examples=32),
            SelfDistillConfig(output_dir=str(root / "dynafast"), model_dir=str(root / "supernet"), data=data,
                              train=train, branch=BranchConfig(cls_hidden_size=16, cls_num_attention_heads=2,
                                                               dropout=0.0)))


def stage(index: int, root: str, data_dir: str, pretrained: str) -> None:
    """Run stage ``index`` (0 finetune, 1 supernet, 2 distill) of :func:`configs` under ``root``.

    Under several processes the supernet's other ranks reach the importance scores only once rank 0 has
    written them to disk: a late rank must still take rank 0's broadcast rather than read the file."""
    from paddle_dynafast import distributed
    from paddle_dynafast.train import distill, finetune, supernet

    if index == 1 and not distributed.is_main():
        _arrive_after_rank_zero_scored(supernet)
    run = (finetune.finetune, supernet.train_supernet, distill.self_distill)[index]
    run(configs(Path(root), Path(data_dir), Path(pretrained))[index])


def _arrive_after_rank_zero_scored(supernet) -> None:
    import time

    score = supernet._importance

    def late(output_dir, *args):
        deadline = time.time() + 30
        while not (output_dir / "importance.json").is_file() and time.time() < deadline:
            time.sleep(0.05)
        return score(output_dir, *args)

    supernet._importance = late


def die_on_rank_one() -> None:
    import paddle.distributed as dist

    from paddle_dynafast import distributed

    distributed.setup()
    if dist.get_rank() == 1:
        raise SystemExit(3)
    distributed.barrier()
