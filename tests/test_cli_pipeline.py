"""The pipeline command: its flags become the PipelineConfig, each stage at its own learning rate; --quick is the
demo's."""
from paddle_dynafast import cli
from paddle_dynafast.config import DataConfig, PipelineConfig
from paddle_dynafast.pipeline import quick


def test_flags_reach_the_pipeline_config():
    parse = cli.build_parser().parse_args
    args = parse(["pipeline", "--model", "m", "--data-dir", "d", "--output", "o"])
    assert cli.pipeline.config_from_args(args) == PipelineConfig("o", DataConfig("d"), model_dir="m")
    args = parse(["pipeline", "--model", "m", "--data-dir", "d", "--output", "o", "--seed", "3", "--batch-size", "8",
                  "--supernet-epochs", "2", "--widths", "1.0", "0.25", "--max-accuracy-drop", "1", "--int8",
                  "--max-seq-len", "64", "--int8-float-products", "6"])
    config = cli.pipeline.config_from_args(args)
    assert config.int8_float_products == 6
    defaults = PipelineConfig("o", DataConfig("d"))
    assert [(t.epochs, t.batch_size, t.seed, t.lr) for t in (config.finetune, config.supernet, config.distill)] == [
        (defaults.finetune.epochs, 8, 3, defaults.finetune.lr), (2, 8, 3, defaults.supernet.lr),
        (defaults.distill.epochs, 8, 3, defaults.distill.lr)]
    assert (config.widths, config.max_accuracy_drop, config.int8, config.data.max_seq_len) == ((1.0, 0.25), 1.0,
                                                                                              True, 64)
    args = parse(["pipeline", "--random-init", "--data-dir", "d", "--output", "o", "--quick", "--num-layers", "2"])
    config = cli.pipeline.config_from_args(args)
    assert config == quick(PipelineConfig("o", DataConfig("d"), random_init=True, size=config.size))
    assert config.size.num_layers == 2 and config.widths == (1.0, 0.5) and config.data.max_examples == 1200
    # the demo's supernet, its slowest stage, stops after 6 steps; the other stages train one epoch
    assert (config.supernet.max_steps, config.supernet.epochs, config.importance_examples) == (6, 1, 128)
    assert config.data.max_eval_examples == 300 and config.timed_speeds == (0.0, 0.4, 0.7, 0.8, 0.85, 0.9)
    assert (config.timed_rounds, config.bench_samples, config.int8_float_products) == (1, 50, 0)  # no sweep
    assert config.finetune.max_steps is None and config.distill.max_steps is None
